// The cluster as seen by the admin API while weldr runs as a single node: this node is
// the only member, the leader, and active from the moment its listeners are up until
// shutdown begins. The Raft-backed implementation replaces it in the clustering issue.

export type NodeRole = 'active' | 'passive' | 'starting' | 'stopping';

export class SingleNodeCluster {
  private role: NodeRole = 'starting';

  constructor(readonly nodeId: string) {}

  /** /ready answers 200 only while this is true. */
  isActive(): boolean {
    return this.role === 'active';
  }

  activate(): void {
    this.role = 'active';
  }

  /** Shutdown has begun: stop claiming readiness so load balancers in front move away. */
  deactivate(): void {
    this.role = 'stopping';
  }

  status(): { nodeId: string; role: NodeRole; leaderId: string; members: { id: string; role: NodeRole }[] } {
    return { nodeId: this.nodeId, role: this.role, leaderId: this.nodeId, members: [{ id: this.nodeId, role: this.role }] };
  }
}
