// The cluster as seen by the admin API while weldr runs as a single node: this node is
// the only member and the leader, and active from the moment its listeners are up until
// shutdown begins. In cluster mode RaftCluster (raft-cluster.ts) is the view instead.
import type { ClusterInfo } from '@weldr/admin';
import type { PoolStore } from '@weldr/store';

export class SingleNodeCluster {
  private active = false;

  constructor(
    private readonly nodeId: string,
    private readonly store: PoolStore,
  ) {}

  /** /ready answers 200 only while this is true. */
  isActive(): boolean {
    return this.active;
  }

  activate(): void {
    this.active = true;
  }

  /** Shutdown has begun: stop claiming readiness so load balancers in front move away. */
  deactivate(): void {
    this.active = false;
  }

  info(): ClusterInfo {
    // Without Raft there are no terms; every applied command is committed by this node alone.
    const index = this.store.snapshot().index;
    return {
      nodeId: this.nodeId,
      role: this.active ? 'active' : 'passive',
      leaderId: this.nodeId,
      term: 0,
      commitIndex: index,
      appliedIndex: index,
      // No Raft address: a single node runs no peer transport, so nothing listens on --raft.
      members: [{ id: this.nodeId, role: 'voter', raftRole: 'leader', reachable: true }],
    };
  }
}
