// The admin API's view of membership and backups: RaftCluster in cluster mode; on a
// single node, a list of one and a backup of the local pool (which `weldr start
// --restore` turns into the first member of a new cluster).
import type { MembershipAdmin } from '@weldr/admin';
import { snapshotDocument, type RaftCluster } from '@weldr/cluster';
import { StoreError, type PoolState, type PoolStore } from '@weldr/store';

export function clusterMembers(raft: RaftCluster): MembershipAdmin {
  return {
    list: (o) => raft.listMembers({ stale: o.stale, timeoutMs: o.timeoutMs }),
    add: (command, o) => raft.addMember(command, o),
    promote: (id, o) => raft.promoteMember(id, o),
    remove: (id, o) => raft.removeMember(id, o),
    snapshot: async (o) => {
      const document = await raft.snapshot({ stale: o.stale, timeoutMs: o.timeoutMs });
      return { index: document.index, document };
    },
  };
}

export function singleNodeMembers(nodeId: string, store: PoolStore): MembershipAdmin {
  const refuse = (): never => {
    throw new StoreError('CONFLICT', 'a single node has no membership to change: start members with --peers to form a new cluster, or --join an existing one');
  };
  return {
    list: async () => {
      const index = store.snapshot().index;
      return { clusterId: null, leaderId: nodeId, index, members: [{ id: nodeId, role: 'voter', autoPromote: false, addedIndex: 0, updatedIndex: 0 }] };
    },
    add: async () => refuse(),
    promote: async () => refuse(),
    remove: async () => refuse(),
    snapshot: async () => {
      const state = (store as PoolStore & { state?: PoolState }).state;
      if (state === undefined) throw new StoreError('CONFLICT', 'this store keeps no state to back up');
      const document = snapshotDocument(state, nodeId);
      return { index: document.index, document };
    },
  };
}
