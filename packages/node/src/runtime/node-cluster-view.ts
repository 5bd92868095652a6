// The cluster view the admin API gets: the cluster's own (RaftCluster or the single-node
// view; members' proxy addresses come from their records) plus what only the node knows —
// the VIP's state —
// and the fault injector for drills, with the cluster's refusals turned into answers.
import type { FaultInjector, FaultRefusal } from '@weldr/admin';
import { FaultRefusedError, type ClusterView, type LeadershipTransfer, type RaftCluster, type ServingStatus } from '@weldr/cluster';

export interface NodeDetails {
  readonly vip?: unknown;
}

export class NodeClusterView implements ClusterView {
  constructor(
    private readonly cluster: ClusterView,
    private readonly raft: RaftCluster | null,
    private readonly details: () => NodeDetails,
  ) {}

  isActive(): boolean {
    return this.cluster.isActive();
  }

  activate(): void {
    this.cluster.activate();
  }

  deactivate(): void {
    this.cluster.deactivate();
  }

  serving(): ServingStatus {
    if (this.cluster.serving !== undefined) return this.cluster.serving();
    const active = this.cluster.isActive();
    return { mode: 'active-passive', serving: active, active, reason: active ? 'active' : 'not active', stalenessMs: active ? 0 : null, quorumLoss: 'stop' };
  }

  /** GET /ready's term without building the whole status (info()). */
  term(): number {
    return this.raft?.driver.node.term ?? this.cluster.info().term;
  }

  info(): ReturnType<ClusterView['info']> {
    return { ...this.cluster.info(), ...this.details() };
  }

  get transferLeadership(): ((to: string | undefined) => Promise<LeadershipTransfer>) | undefined {
    const raft = this.raft;
    return raft === null ? undefined : (to) => raft.transferLeadership(to);
  }
}

/** RaftCluster's fault injection as the admin API takes it. */
export function faultInjector(raft: RaftCluster): FaultInjector {
  const refusal = (err: unknown): FaultRefusal => {
    if (err instanceof FaultRefusedError) return { ok: false, reason: err.reason, message: err.message, leaderId: raft.driver.node.leader };
    throw err;
  };
  return {
    status: () => raft.faultStatus(),
    stepDown: async () => {
      try {
        return { ok: true, ...(await raft.stepDown()) };
      } catch (err) {
        return refusal(err);
      }
    },
    isolate: (ms) => {
      try {
        raft.isolate(ms);
        return { ok: true };
      } catch (err) {
        return refusal(err);
      }
    },
    heal: () => {
      try {
        return { ok: true, healed: raft.heal() };
      } catch (err) {
        return refusal(err);
      }
    },
  };
}
