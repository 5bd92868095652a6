// Who may talk to this node, and whether this node is still who its peers think it is.
//
// Raft's safety rests on each server keeping what it promised: a vote (§5.2) and the
// entries it acknowledged (§5.3). A member whose data directory was wiped and that came
// back under the same id with its old flags would promise again, with nothing to hold
// it to the first promise: it could vote twice in a term and help undo committed
// entries. So every data directory gets a random *incarnation* when it becomes a
// member's, and peers check it in every hello:
//
//   - a peer is admitted only if its id is in this node's configuration (the Raft
//     configuration it holds, or the replicated member records; before it has either:
//     the seed list, or the members the join answer listed, or — since that list may
//     predate a change — any peer that says it is of the cluster joined) — a removed
//     member, or an id never added, is refused;
//   - its cluster id, when both sides know theirs, must be this cluster's;
//   - its incarnation must be the one this node knows for that id: from the member's
//     replicated record, or else the one this node saw first (recorded durably, synced,
//     before any message of the peer is delivered — so whoever counted a vote or an
//     acknowledgement of the peer will know the incarnation that gave it);
//   - a hello also says what the sender knows of *this* node's incarnation. If that is
//     another one, recorded at an index at or after the one this node became a member
//     at, this node has lost its state: it stops at once (onLostState), before it can
//     vote, with a message that says how to rejoin;
//   - its start (a counter raised at every start of its data directory, and a random id)
//     must not be older than the latest this node has seen under the same incarnation,
//     nor the same count under another id (recorded durably, synced, before its messages
//     count): a copy of a member's data directory put back after the member ran on from
//     it — a restored backup, a reverted VM or volume snapshot — has lost the entries it
//     acknowledged and the votes it cast since, yet keeps its incarnation. Refused
//     ('rolled-back'), or told by a peer's hello, it stops and marks the directory so
//     that it never serves again (onRolledBack).
//
// Refusals are sent to the refused peer ({"refused": code}) with this node's applied
// index and cluster id, so a removed member that is still running learns of it from a
// peer that applied the removal (and not from one that merely lags behind).
import type { ConfState, NodeId } from '@weldr/raft';
import {
  writePeerIncarnation,
  deletePeerIncarnation,
  readPeerIncarnations,
  readPeerStarts,
  writePeerStart,
  type NodeIdentity,
  type NodeStart,
  type PeerIncarnation,
  type PeerStart,
  type PoolDb,
  type PoolState,
} from '@weldr/store';
import { NOT_READY, type ExpectedIdentity, type HelloIdentity, type IdentityRefusal, type PeerHello } from './transport.js';
import type { ClusterLogger } from './types.js';

export interface IdentityGuardOptions {
  readonly self: NodeId;
  readonly identity: () => NodeIdentity;
  readonly db: PoolDb;
  readonly log: ClusterLogger;
  /** The replicated state as applied here. */
  readonly state: () => PoolState;
  /** The Raft configuration this node holds (appended entries included). */
  readonly config: () => ConfState;
  /** Members named before this node holds any configuration: the seed list, or the join answer. */
  readonly seeds: () => ReadonlySet<NodeId>;
  /**
   * The cluster id the join answer gave, until this node holds a configuration: a peer
   * that says it is of that cluster is admitted even if the answer did not list it (a
   * member added, or a leader elected, between the listing and the join).
   */
  readonly joinedCluster?: () => string | null;
  /** This node's Raft address as it advertises it, when it knows one (sent in its hellos). */
  readonly ownRaftAddress?: () => string | undefined;
  /** This node lost its state: stop, never vote. */
  readonly onLostState: (message: string) => void;
  /** This node's data directory is an older copy of itself (a peer saw a later start): mark it, stop, never vote. */
  readonly onRolledBack: (message: string) => void;
  /** A peer that applied this node's removal refused it. */
  readonly onRemoved: (message: string) => void;
}

export interface KnownIncarnation {
  readonly incarnation: string;
  /** Index of the state this knowledge comes from. */
  readonly index: number;
}

/** The refusal of a peer whose data directory is an older copy of itself. */
export const ROLLED_BACK = 'rolled-back';

export class IdentityGuard {
  /** Incarnations seen in hellos (trust on first use), for members whose record has none. */
  private readonly seen: Map<NodeId, PeerIncarnation>;
  /** Durable writes of `seen` entries in flight: a second hello waits for the first's. */
  private readonly recording = new Map<NodeId, Promise<void>>();
  /** The latest start each peer showed (with the incarnation it had), recorded before its messages count. */
  private readonly starts: Map<NodeId, PeerStart>;
  /** Durable writes of `starts` entries in flight. */
  private readonly recordingStart = new Map<NodeId, Promise<void>>();
  private stopped = false;

  private constructor(
    private readonly opts: IdentityGuardOptions,
    seen: Map<NodeId, PeerIncarnation>,
    starts: Map<NodeId, PeerStart>,
  ) {
    this.seen = seen;
    this.starts = starts;
  }

  static async open(opts: IdentityGuardOptions): Promise<IdentityGuard> {
    return new IdentityGuard(opts, await readPeerIncarnations(opts.db), await readPeerStarts(opts.db));
  }

  /** What this node puts in its hello to `to`. */
  helloFor(to: NodeId): HelloIdentity {
    const clusterId = this.opts.state().cluster.clusterId;
    const expect = this.expected(to);
    const me = this.opts.identity();
    const raft = this.opts.ownRaftAddress?.();
    return {
      ...(clusterId === null ? {} : { cluster: clusterId }),
      ...(raft === undefined ? {} : { raft }),
      incarnation: me.incarnation,
      ...(me.start === undefined ? {} : { start: me.start }),
      ...(expect === undefined ? {} : { expect }),
      ...(me.bootstrap === undefined ? {} : { bootstrap: me.bootstrap }),
    };
  }

  /** What this node knows of `id`: its incarnation and, under it, the latest start it saw. */
  private expected(id: NodeId): ExpectedIdentity | undefined {
    const known = this.known(id);
    if (known === undefined) return undefined;
    const start = this.starts.get(id);
    return start !== undefined && start.incarnation === known.incarnation ? { ...known, start: { n: start.n, id: start.id } } : known;
  }

  /** The incarnation this node knows for `id`: its record's, else the one first seen. */
  known(id: NodeId): KnownIncarnation | undefined {
    const record = this.opts.state().cluster.members.get(id);
    if (record?.incarnation !== undefined) return { incarnation: record.incarnation, index: record.updatedIndex };
    return this.seen.get(id);
  }

  isMember(id: NodeId): boolean {
    const conf = this.opts.config();
    if (conf.voters.includes(id) || conf.learners.includes(id)) return true;
    if (this.opts.state().cluster.members.has(id)) return true;
    return this.holdsNoConfiguration() && this.opts.seeds().has(id);
  }

  /** Neither a Raft configuration nor member records yet: only seeds (or the join answer) say who is a member. */
  private holdsNoConfiguration(): boolean {
    const conf = this.opts.config();
    return conf.voters.length + conf.learners.length === 0 && this.opts.state().cluster.members.size === 0;
  }

  /** Before it holds any configuration, a joining node admits whoever says it is of the cluster it joined. */
  private joiningFrom(hello: PeerHello): boolean {
    const joined = this.opts.joinedCluster?.() ?? null;
    return joined !== null && hello.cluster === joined && this.holdsNoConfiguration();
  }

  /** The transport's admit hook. */
  admit(hello: PeerHello): IdentityRefusal | undefined | Promise<IdentityRefusal | undefined> {
    if (this.stopped) return { code: 'stopping', message: 'this node is stopping' };
    const state = this.opts.state();
    const base = { index: state.appliedIndex, ...(state.cluster.clusterId === null ? {} : { cluster: state.cluster.clusterId }) };
    const id = hello.from;
    if (this.holdsNoConfiguration() && this.opts.seeds().size === 0) {
      // Knows no configuration at all yet (a joining node before its answer): say so
      // without claiming anything a peer could act on.
      return { code: NOT_READY, message: 'this node does not know the cluster configuration yet' };
    }
    if (!this.isMember(id) && !this.joiningFrom(hello)) {
      return { ...base, code: 'not-member', message: `${id} is not a member of this cluster (removed, or not added yet): start a new node with an empty data directory and --join <admin URL of a member>, not with --peers` };
    }
    const ours = state.cluster.clusterId;
    if (hello.cluster !== undefined && ours !== null && hello.cluster !== ours) {
      return { ...base, code: 'cluster', message: `${id} belongs to cluster ${hello.cluster}; this node is in cluster ${ours}: check --peers / --join, or empty ${id}'s data directory and --join this cluster` };
    }
    const mine = this.opts.identity().bootstrap;
    if (hello.bootstrap !== undefined && mine !== undefined && hello.bootstrap !== mine) {
      // Two seeds whose bootstrap logs differ hold different entries at the same
      // indexes, all "committed": they must never exchange a message.
      return {
        ...base,
        code: 'bootstrap',
        message:
          `${id} bootstrapped a new cluster from another --peers list than this node did: it is not a seed of this cluster. ` +
          'A node joins a running cluster with --join on an empty data directory, never with --peers',
      };
    }
    if (hello.expect !== undefined) this.checkExpectation(id, hello.expect);
    if (this.stopped) return { code: 'stopping', message: 'this node is stopping' };
    const known = this.known(id);
    if (hello.incarnation === undefined) {
      // A peer that predates incarnations may join in a rolling upgrade, but never once
      // one is known for its id: then a hello without one is a peer that lost it.
      if (known === undefined) return undefined;
      return { ...base, code: 'incarnation', message: `${id} sent no incarnation, but this cluster knows it as incarnation ${known.incarnation}`, expect: known };
    }
    if (known !== undefined) {
      if (known.incarnation === hello.incarnation) {
        const start = this.checkStart(id, hello.incarnation, hello.start, base);
        if (start !== undefined && !(start instanceof Promise)) return start;
        const pending = [this.recording.get(id), start].filter((p): p is Promise<void> => p !== undefined);
        return pending.length === 0 ? undefined : Promise.all(pending).then(() => undefined);
      }
      return {
        ...base,
        code: 'incarnation',
        message:
          `${id} is incarnation ${hello.incarnation}, but this cluster knows it as incarnation ${known.incarnation} (index ${known.index}): ` +
          `its data directory was lost or replaced. Remove the member (DELETE /cluster/members/${id}) and start it on an empty data directory with --join, or give it a new id`,
        expect: known,
      };
    }
    // First sight: record it, synced, before any of its messages is delivered.
    const record: PeerIncarnation = { incarnation: hello.incarnation, index: state.appliedIndex };
    this.seen.set(id, record);
    const write = writePeerIncarnation(this.opts.db, id, record);
    this.recording.set(id, write);
    this.opts.log.info({ event: 'peer_incarnation_recorded', peer: id, incarnation: hello.incarnation }, `recorded incarnation ${hello.incarnation} of ${id}`);
    const start = this.checkStart(id, hello.incarnation, hello.start, base);
    if (start !== undefined && !(start instanceof Promise)) return start;
    return Promise.all([write, start]).then(
      () => {
        if (this.recording.get(id) === write) this.recording.delete(id);
        return undefined;
      },
      (err: unknown) => {
        this.seen.delete(id);
        this.recording.delete(id);
        throw err;
      },
    );
  }

  /**
   * A peer's start under `incarnation`: refused if older than the latest seen (or the
   * same count under another id), else recorded (synced) before its messages count.
   */
  private checkStart(id: NodeId, incarnation: string, start: NodeStart | undefined, base: { index: number; cluster?: string }): IdentityRefusal | Promise<void> | undefined {
    if (start === undefined) return undefined; // a peer that predates starts
    const latest = this.starts.get(id);
    if (latest !== undefined && latest.incarnation === incarnation) {
      if (latest.n === start.n && latest.id === start.id) return this.recordingStart.get(id);
      if (start.n <= latest.n) {
        const known = this.known(id);
        return {
          ...base,
          code: ROLLED_BACK,
          message:
            `${id} started from an older copy of its data directory: this node saw its start ${latest.n} (${latest.id}), it shows start ${start.n} (${start.id}). ` +
            `It has lost entries it acknowledged and votes it cast. Remove the member (DELETE /cluster/members/${id}) and start it on an empty data directory with --join`,
          expect: { incarnation, index: known?.index ?? base.index, start: { n: latest.n, id: latest.id } },
        };
      }
    }
    const record: PeerStart = { incarnation, n: start.n, id: start.id };
    this.starts.set(id, record);
    this.opts.log.debug({ event: 'peer_start_recorded', peer: id, start: start.n, startId: start.id }, `recorded start ${start.n} of ${id}`);
    const write = writePeerStart(this.opts.db, id, record);
    this.recordingStart.set(id, write);
    return write.then(
      () => {
        if (this.recordingStart.get(id) === write) this.recordingStart.delete(id);
      },
      (err: unknown) => {
        if (this.starts.get(id) === record) this.starts.delete(id);
        this.recordingStart.delete(id);
        throw err;
      },
    );
  }

  /** The transport's onRefused hook: what a peer said about this node. */
  onRefused(peer: NodeId, refusal: IdentityRefusal): void {
    const ours = this.opts.state().cluster.clusterId;
    if ((refusal.code === 'incarnation' || refusal.code === ROLLED_BACK) && refusal.expect !== undefined) {
      this.checkExpectation(peer, refusal.expect);
      return;
    }
    if (refusal.code === 'bootstrap') {
      // Only a peer of an established cluster (it has an id, this node has none) can
      // tell a stray seed apart from a cluster whose seeds disagree on their list.
      if (this.stopped || refusal.cluster === undefined || ours !== null) return;
      this.stopped = true;
      this.opts.onLostState(`${peer} refused this node: ${refusal.message}. Empty this data directory and start the node with --join <admin URL of a member>`);
      return;
    }
    if (refusal.code !== 'not-member') return;
    const since = this.opts.identity().since;
    // Only a peer of this cluster that has applied at least as far as this node's
    // membership began can know that this node is no member any more.
    if (ours === null || refusal.cluster !== ours || since === null || refusal.index === undefined || refusal.index < since) return;
    if (this.stopped) return;
    this.stopped = true;
    this.opts.onRemoved(`${peer} (at index ${refusal.index}) says this node (${this.opts.self}) is not a member of cluster ${ours}: it was removed`);
  }

  /** Member records changed: forget what was first-seen of removed members and of those whose record now has an incarnation. */
  async membersChanged(prev: PoolState, next: PoolState): Promise<void> {
    for (const [id, seen] of [...this.seen]) {
      const removed = prev.cluster.members.has(id) && !next.cluster.members.has(id);
      const superseded = next.cluster.members.get(id)?.incarnation !== undefined && next.cluster.members.get(id)?.incarnation !== seen.incarnation;
      if (!removed && !superseded) continue;
      this.seen.delete(id);
      await deletePeerIncarnation(this.opts.db, id);
    }
  }

  private checkExpectation(from: NodeId, expect: ExpectedIdentity): void {
    const me = this.opts.identity();
    if (this.stopped) return;
    if (expect.incarnation === me.incarnation) {
      const seen = expect.start;
      const mine = me.start;
      if (seen === undefined || mine === undefined || seen.n < mine.n || (seen.n === mine.n && seen.id === mine.id)) return;
      this.stopped = true;
      this.opts.onRolledBack(
        `member ${from} saw start ${seen.n} (${seen.id}) of this node (${this.opts.self}), but this data directory is at start ${mine.n} (${mine.id}): ` +
          'it is an older copy of the directory (a restored backup, a reverted snapshot), which has lost entries this node acknowledged and votes it cast, ' +
          'and it must not vote or acknowledge as if it had kept them. It is marked and will not start again. To rejoin: remove the member ' +
          `(weldr member remove ${this.opts.self}, or DELETE /cluster/members/${this.opts.self} on any member), then start this node on an empty data directory with --join <admin URL of a member>`,
      );
      return;
    }
    // The peer's knowledge predates this node's membership (it lags behind a removal
    // and re-add of this id): not evidence of anything.
    if (me.since === null || expect.index < me.since) return;
    this.stopped = true;
    this.opts.onLostState(
      `member ${from} knows this node (${this.opts.self}) as incarnation ${expect.incarnation} (recorded at index ${expect.index}), ` +
        `but this data directory is incarnation ${me.incarnation}, created ${me.createdAt}: this node's state was lost or replaced, ` +
        'and it must not vote as if it had kept it. To rejoin: remove the old member ' +
        `(weldr member remove ${this.opts.self}, or DELETE /cluster/members/${this.opts.self} on any member), then start this node ` +
        'on an empty data directory with --join <admin URL of a member>; or start it under a new --id with --join',
    );
  }
}
