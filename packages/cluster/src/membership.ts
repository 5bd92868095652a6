// Membership at run time: the operations of the admin API (add a learner, promote it,
// remove a member) and the leader's upkeep of the member records.
//
// Changes are single-server configuration changes (thesis §4.1), one at a time: the
// leader refuses a second one while the first — or one a previous leader proposed —
// is not applied (CHANGE_IN_PROGRESS), and refuses a change after which the voters
// could not form a quorum of *live* members (QUORUM_AT_RISK) unless forced: a removal
// commits under the new configuration, so such a change would wait for a dead member.
// Each change is a Raft configuration-change entry whose context carries the member's
// record and the request id, so the records move at the same index as the
// configuration and a retried request is answered, not applied twice.
//
// The leader also keeps the records complete (thesis §4: the configuration lives in
// the log, so addresses should too):
//   - a new cluster gets its random cluster id from its first leader (InitCluster);
//   - a seed member's Raft address comes from the leader's --peers list;
//   - each member's admin and proxy addresses (and, for seeds, its incarnation) are
//     published by the member itself: the leader proposes its own, a follower sends a
//     {"ctl":"publish"} frame to the leader over its authenticated peer connection and
//     the leader proposes it. Nothing a hello claims ends up in a record;
//   - learners with autoPromote are promoted once caught up and live.
import { randomBytes } from 'node:crypto';
import type { ConfChange, NodeId } from '@weldr/raft';
import type { MemberWriteOptions, MemberWriteResult } from '@weldr/store';
import {
  StoreError,
  auditMetaOf,
  awaitWithDeadline,
  fingerprintOf,
  lookupRequest,
  memberConfChange,
  validateAdminAddress,
  validateHostPort,
  validateMemberChange,
  type AddMemberCommand,
  type ApplyResult,
  type CommandOutcome,
  type MemberChange,
  type MemberChangeCommand,
  type MemberRecord,
  type PoolState,
  type UpdateMemberCommand,
} from '@weldr/store';
import { ConfChangePendingError, InvalidConfChangeError, NotLeaderError, type RaftDriver } from './driver.js';
import { toStoreError as driverError, type PoolReplica, type RaftPoolStore } from './raft-pool-store.js';
import type { ControlFrame, PeerHello } from './transport.js';
import type { ClusterLogger } from './types.js';

/** A member record plus what the leader knows of it right now. */
export interface MemberView extends MemberRecord {
  /** On the leader: how far its log is known to match. */
  readonly matchIndex?: number;
  /** On the leader: heard from within two election timeouts. */
  readonly live?: boolean;
}

export interface MemberList {
  readonly clusterId: string | null;
  readonly leaderId: NodeId | null;
  /** Applied index the list reflects. */
  readonly index: number;
  readonly members: readonly MemberView[];
}

export type { MemberWriteOptions, MemberWriteResult } from '@weldr/store';

/** What this node publishes about itself into its record. */
export interface OwnAttributes {
  readonly raftAddress?: string;
  readonly adminAddress?: string;
  readonly proxyAddress?: string;
}

export interface MembershipOptions {
  readonly self: NodeId;
  readonly driver: RaftDriver<ApplyResult | null>;
  readonly replica: PoolReplica;
  readonly store: RaftPoolStore;
  readonly log: ClusterLogger;
  readonly electionTimeoutMs: number;
  readonly incarnation: string;
  /** Raft addresses from --peers (seed members of a new cluster). */
  readonly seedAddress: (id: NodeId) => string | undefined;
  /** This node's own addresses, once its listeners are bound. */
  readonly own: () => OwnAttributes;
  /** Sends a control frame to a peer (false: not connected). */
  readonly sendControl: (to: NodeId, frame: ControlFrame) => boolean;
  /** Default deadline of a change. Default 5000 ms. */
  readonly timeoutMs?: number;
  /** Upkeep cadence. Default 100 ms. */
  readonly upkeepMs?: number;
  /** Injected clock (performance.now). */
  readonly now?: () => number;
}

/** How far behind the commit index a learner may be and still count as caught up. */
const CATCH_UP_SLACK = 32;

interface InFlight {
  readonly requestId: string;
  readonly fingerprint: string;
  readonly what: string;
  readonly done: Promise<{ index: number; result: ApplyResult | null }>;
}

export class MembershipManager {
  private readonly lastHeard = new Map<NodeId, number>();
  private readonly published = new Map<NodeId, { attrs: OwnAttributes; incarnation: string | undefined }>();
  private inFlight: InFlight | null = null;
  private timer: NodeJS.Timeout | null = null;
  private upkeepRunning = false;
  private lastPublishAt = -Infinity;
  private readonly now: () => number;
  private stopped = false;

  constructor(private readonly opts: MembershipOptions) {
    this.now = opts.now ?? (() => performance.now());
  }

  start(): void {
    this.timer = setInterval(() => void this.upkeep(), this.opts.upkeepMs ?? 100);
    this.timer.unref();
    // A new leader fills in its own record at once (after its no-op: see leaderDuties).
    this.opts.driver.onRoleChange((role) => {
      if (role === 'leader') void this.upkeep();
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** A message arrived from `id` (liveness, as the leader sees it). */
  heard(id: NodeId): void {
    this.lastHeard.set(id, this.now());
  }

  isLive(id: NodeId): boolean {
    if (id === this.opts.self) return true;
    const at = this.lastHeard.get(id);
    return at !== undefined && this.now() - at <= 2 * this.opts.electionTimeoutMs;
  }

  // ---- reads --------------------------------------------------------------------------

  /** The member records at `state`, with match index and liveness on the leader. */
  list(state: PoolState = this.opts.replica.current): MemberList {
    const node = this.opts.driver.node;
    const progress = node.role === 'leader' ? node.status().progress : undefined;
    return {
      clusterId: state.cluster.clusterId,
      leaderId: node.leader,
      index: state.appliedIndex,
      members: [...state.cluster.members.values()].map((m) => {
        const p = progress?.[m.id];
        return progress === undefined ? m : { ...m, ...(p === undefined ? {} : { matchIndex: p.match }), live: this.isLive(m.id) };
      }),
    };
  }

  // ---- changes (leader) ------------------------------------------------------------------

  /** Add a learner. 'added' (201) or 'unchanged' (200: the same member exists). */
  add(command: AddMemberCommand, options: MemberWriteOptions = {}): Promise<MemberWriteResult> {
    return this.change(command, options, (state) => {
      const existing = state.cluster.members.get(command.id);
      if (existing === undefined) {
        if (this.inConfig(command.id)) throw inProgress(`${command.id} is being added or removed`);
        return undefined;
      }
      const same =
        existing.raftAddress === command.raftAddress &&
        existing.adminAddress === command.adminAddress &&
        (command.proxyAddress === undefined || existing.proxyAddress === command.proxyAddress) &&
        (command.incarnation === undefined || existing.incarnation === undefined || existing.incarnation === command.incarnation);
      if (same) return unchanged(state, existing);
      const diff =
        command.incarnation !== undefined && existing.incarnation !== undefined && existing.incarnation !== command.incarnation
          ? `another incarnation (${existing.incarnation}): the member's data directory was replaced`
          : `other addresses (raft ${existing.raftAddress ?? '-'}, admin ${existing.adminAddress ?? '-'}, proxy ${existing.proxyAddress ?? '-'})`;
      throw new StoreError('MEMBER_EXISTS', `${command.id} is already a member with ${diff}; remove it first (DELETE /cluster/members/${command.id})`, { field: 'id' });
    });
  }

  /** Make a learner a voter. 'promoted', or 'unchanged' for a voter. */
  promote(id: NodeId, options: MemberWriteOptions = {}): Promise<MemberWriteResult> {
    return this.change({ type: 'PromoteMember', id }, options, (state) => {
      const existing = this.existing(state, id);
      if (existing.role === 'voter') return unchanged(state, existing);
      if (options.force !== true) {
        const lag = this.lag(id);
        if (lag !== undefined) throw new StoreError('NOT_CAUGHT_UP', `${id} cannot be promoted yet: ${lag}; retry once it has caught up, or add ?force=true`);
        this.checkQuorum([...this.voters(state), id], `promoting ${id}`);
      }
      return undefined;
    });
  }

  /** Remove a member (also the leader itself: it hands off once the removal commits). */
  remove(id: NodeId, options: MemberWriteOptions = {}): Promise<MemberWriteResult> {
    return this.change({ type: 'RemoveMember', id }, options, (state) => {
      const existing = this.existing(state, id);
      const voters = this.voters(state);
      if (existing.role === 'voter' && voters.length === 1) {
        throw new StoreError('CONFLICT', `${id} is the last voter; a cluster cannot remove its last voter (add another member first)`);
      }
      if (existing.role === 'voter' && options.force !== true) {
        this.checkQuorum(
          voters.filter((v) => v !== id),
          `removing ${id}`,
        );
      }
      return undefined;
    });
  }

  private existing(state: PoolState, id: NodeId): MemberRecord {
    const existing = state.cluster.members.get(id);
    if (existing !== undefined) return existing;
    if (this.inConfig(id)) throw inProgress(`${id} is being added`);
    throw new StoreError('NOT_FOUND', `${id} is not a member of the cluster`);
  }

  private inConfig(id: NodeId): boolean {
    const conf = this.opts.driver.node.config;
    return conf.voters.includes(id) || conf.learners.includes(id);
  }

  private voters(state: PoolState): NodeId[] {
    return [...state.cluster.members.values()].filter((m) => m.role === 'voter').map((m) => m.id);
  }

  /** Why `id` is not caught up, or undefined when it is (leader's view). */
  private lag(id: NodeId): string | undefined {
    const node = this.opts.driver.node;
    const p = node.status().progress?.[id];
    if (!this.isLive(id)) return `the leader has not heard from it in the last ${(2 * this.opts.electionTimeoutMs) / 1000} s`;
    if (p === undefined) return 'the leader has no replication progress for it';
    if (p.state === 'snapshot') return 'it is still receiving a snapshot';
    if (p.match + CATCH_UP_SLACK < node.commitIndex) return `its log matches up to index ${p.match}, the commit index is ${node.commitIndex}`;
    return undefined;
  }

  /** Refuses a change after which the voters `after` could not form a quorum of live members. */
  private checkQuorum(after: readonly NodeId[], what: string): void {
    const quorum = Math.floor(after.length / 2) + 1;
    const live = after.filter((id) => this.isLive(id));
    if (live.length >= quorum) return;
    const dead = after
      .filter((id) => !this.isLive(id))
      .map((id) => {
        const at = this.lastHeard.get(id);
        return at === undefined ? `${id} (never heard from)` : `${id} (silent for ${((this.now() - at) / 1000).toFixed(1)} s)`;
      });
    throw new StoreError(
      'QUORUM_AT_RISK',
      `${what} would leave ${after.length} voter${after.length === 1 ? '' : 's'} of which ${live.length} ${live.length === 1 ? 'is' : 'are'} live ` +
        `(${live.join(', ') || 'none'}; not live: ${dead.join(', ') || 'none'}); a quorum needs ${quorum}. ` +
        'Bring the silent members back first, or repeat the request with ?force=true',
    );
  }

  /**
   * The common path of a change: replay a remembered request, join an identical one in
   * flight, refuse a different one in flight, run the change's own checks (which may
   * answer "unchanged" at once), then propose and wait for the entry to apply.
   */
  private async change(
    command: MemberChangeCommand,
    options: MemberWriteOptions,
    check: (state: PoolState) => MemberWriteResult | undefined,
  ): Promise<MemberWriteResult> {
    const timeoutMs = options.timeoutMs ?? this.opts.timeoutMs ?? 5000;
    const node = this.opts.driver.node;
    if (node.role !== 'leader') throw notLeader(node.leader);
    await this.untilLeaderReady(timeoutMs);
    const requestId = options.requestId ?? `member-${randomBytes(9).toString('base64url')}`;
    // As the entry will carry it (validated, in its fields' order): the order of the
    // caller's keys must not make the same request look like another one.
    const fingerprint = fingerprintOf(validateMemberChange(command));
    const what = `${command.type} ${command.id}`;
    let state = this.opts.replica.current;
    if (options.requestId !== undefined) {
      const seen = lookupRequest(state.requests, requestId);
      if (seen !== undefined) return replay(state, seen, fingerprint, requestId);
      const flight = this.inFlight;
      if (flight !== null && flight.requestId === requestId) {
        if (flight.fingerprint !== fingerprint) throw new StoreError('CONFLICT', `request id "${requestId}" is in use by ${flight.what}`);
        return this.finish(awaitWithDeadline(flight.done, { timeoutMs }, 'the membership change'), requestId);
      }
    }
    if (this.inFlight !== null) throw inProgress(`${this.inFlight.what} is in flight`);
    state = this.opts.replica.current;
    const early = check(state);
    if (early !== undefined) return early;
    // The leader's clock dates the change, as for pool writes (prepareEnvelope); a change
    // the leader makes by itself (auto-promotion) was received on the leader.
    const meta = auditMetaOf({ at: Date.now(), ...(options.origin ?? { nodeId: this.opts.self }) });
    const envelope = { requestId, command, ...(meta === undefined ? {} : { meta }) };
    const done = this.proposeChange(memberConfChange(envelope), requestId, fingerprint, options.requestId !== undefined, timeoutMs);
    const flight: InFlight = { requestId, fingerprint, what, done };
    this.inFlight = flight;
    const clear = (): void => {
      if (this.inFlight === flight) this.inFlight = null;
    };
    done.then(clear, clear);
    this.opts.log.info({ event: 'member_change_proposed', change: command.type, member: command.id, requestId }, `proposed ${what}`);
    return this.finish(awaitWithDeadline(done, { timeoutMs }, 'the membership change'), requestId);
  }

  /**
   * Proposes the change. With an Idempotency-Key, a change a previous leader proposed and
   * this one has not applied yet (the core's confChangePending) may be this very request,
   * retried after a failover: wait for it to apply, then answer from the idempotency
   * table — or propose, if it was another change.
   */
  private async proposeChange(cc: ConfChange, requestId: string, fingerprint: string, keyed: boolean, timeoutMs: number): Promise<{ index: number; result: ApplyResult | null }> {
    const end = this.now() + timeoutMs;
    for (;;) {
      try {
        return await this.opts.driver.proposeConfChange(cc);
      } catch (err) {
        if (!(err instanceof ConfChangePendingError) || !keyed || this.now() > end) throw err;
      }
      await new Promise((r) => setTimeout(r, 50));
      const seen = lookupRequest(this.opts.replica.current.requests, requestId);
      if (seen === undefined) continue;
      if (seen.fingerprint !== fingerprint) throw new StoreError('CONFLICT', `request id "${requestId}" was already used at index ${seen.index} for a different request`);
      return { index: seen.index, result: { index: seen.index, outcome: seen.outcome, duplicate: true } };
    }
  }

  /**
   * A new leader knows every earlier change only once it applied an entry of its own
   * term (its no-op, §8); the core refuses changes until then anyway.
   */
  private async untilLeaderReady(timeoutMs: number): Promise<void> {
    const { driver } = this.opts;
    const end = this.now() + timeoutMs;
    while (driver.node.termAt(driver.status().appliedIndex) !== driver.node.term) {
      if (driver.node.role !== 'leader') throw notLeader(driver.node.leader);
      if (this.now() > end) throw new StoreError('TIMEOUT', 'the new leader did not apply its first entry in time; retry');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private async finish(work: Promise<{ index: number; result: ApplyResult | null }>, requestId: string): Promise<MemberWriteResult> {
    let applied: { index: number; result: ApplyResult | null };
    try {
      applied = await work;
    } catch (err) {
      throw toStoreError(err);
    }
    const state = this.opts.replica.current;
    const result = applied.result ?? (() => {
      // Applied before a restart: the outcome is in the idempotency table.
      const seen = lookupRequest(state.requests, requestId);
      return seen === undefined ? null : { index: seen.index, outcome: seen.outcome, duplicate: true };
    })();
    if (result === null) throw new StoreError('TIMEOUT', 'the membership change was applied, but its outcome is not known here');
    return resultOf(state, result.outcome, result.index, result.duplicate);
  }

  // ---- upkeep -----------------------------------------------------------------------------

  /** A control frame from an admitted peer. */
  onControl(from: NodeId, frame: ControlFrame, hello: PeerHello): void {
    if (frame.ctl !== 'publish') return;
    try {
      const attrs: OwnAttributes = {
        ...(frame['raftAddress'] === undefined ? {} : { raftAddress: validateHostPort(frame['raftAddress'], 'raftAddress') }),
        ...(frame['adminAddress'] === undefined ? {} : { adminAddress: validateAdminAddress(frame['adminAddress'], 'adminAddress') }),
        ...(frame['proxyAddress'] === undefined ? {} : { proxyAddress: validateHostPort(frame['proxyAddress'], 'proxyAddress') }),
      };
      // The incarnation is the one the connection was admitted with, not a claim of the frame.
      this.published.set(from, { attrs, incarnation: hello.incarnation });
    } catch (err) {
      this.opts.log.warn({ peer: from, err: (err as Error).message }, 'ignored a malformed publish frame');
    }
  }

  /** Runs the leader's duties or a follower's publishing; one proposal at a time. */
  async upkeep(): Promise<void> {
    if (this.upkeepRunning || this.stopped) return;
    this.upkeepRunning = true;
    try {
      const node = this.opts.driver.node;
      if (node.role === 'leader') await this.leaderDuties();
      else this.publishToLeader();
    } catch (err) {
      this.opts.log.debug({ err: (err as Error).message }, 'membership upkeep deferred');
    } finally {
      this.upkeepRunning = false;
    }
  }

  private async leaderDuties(): Promise<void> {
    const { driver, replica } = this.opts;
    const node = driver.node;
    // Not before this leader applied an entry of its own term: its view of the records
    // must include every change earlier leaders committed.
    if (node.termAt(driver.status().appliedIndex) !== node.term) return;
    const state = replica.current;
    // Its own record first: followers relay writes to the admin address it holds.
    const me = state.cluster.members.get(this.opts.self);
    const mine = me === undefined ? undefined : this.updateFor(me);
    if (mine !== undefined) {
      await this.propose(mine);
      return;
    }
    if (state.cluster.clusterId === null) {
      const clusterId = randomBytes(8).toString('hex');
      await this.propose({ type: 'InitCluster', clusterId });
      this.opts.log.info({ event: 'cluster_id', clusterId: replica.current.cluster.clusterId }, `cluster id ${replica.current.cluster.clusterId}`);
      return;
    }
    for (const m of state.cluster.members.values()) {
      const update = this.updateFor(m);
      if (update !== undefined) {
        await this.propose(update);
        return;
      }
    }
    if (this.inFlight === null) {
      for (const m of state.cluster.members.values()) {
        if (m.role !== 'learner' || !m.autoPromote || this.lag(m.id) !== undefined) continue;
        try {
          await this.promote(m.id, { requestId: `auto-promote-${m.id}-${m.addedIndex}` });
          this.opts.log.info({ event: 'member_promoted', member: m.id }, `learner ${m.id} caught up and was promoted to voter`);
        } catch (err) {
          this.opts.log.debug({ member: m.id, err: (err as Error).message }, 'automatic promotion deferred');
        }
        return;
      }
    }
  }

  /** The UpdateMember the leader should propose for `m`, if its record is incomplete or stale. */
  private updateFor(m: MemberRecord): UpdateMemberCommand | undefined {
    const want: { raftAddress?: string; adminAddress?: string; proxyAddress?: string; incarnation?: string } = {};
    if (m.id === this.opts.self) {
      Object.assign(want, this.opts.own(), { incarnation: this.opts.incarnation });
    } else {
      const published = this.published.get(m.id);
      if (published !== undefined) Object.assign(want, published.attrs, published.incarnation === undefined ? {} : { incarnation: published.incarnation });
    }
    if (m.raftAddress === undefined && want.raftAddress === undefined) {
      const seed = this.opts.seedAddress(m.id);
      if (seed !== undefined) want.raftAddress = seed;
    }
    const cmd: { -readonly [K in keyof UpdateMemberCommand]?: UpdateMemberCommand[K] } = {};
    if (want.raftAddress !== undefined && want.raftAddress !== m.raftAddress) cmd.raftAddress = want.raftAddress;
    if (want.adminAddress !== undefined && want.adminAddress !== m.adminAddress) cmd.adminAddress = want.adminAddress;
    if (want.proxyAddress !== undefined && want.proxyAddress !== m.proxyAddress) cmd.proxyAddress = want.proxyAddress;
    // Set once; a different one was refused at the hello already.
    if (want.incarnation !== undefined && m.incarnation === undefined) cmd.incarnation = want.incarnation;
    if (Object.keys(cmd).length === 0) {
      if (m.id !== this.opts.self) this.published.delete(m.id);
      return undefined;
    }
    return { type: 'UpdateMember', id: m.id, ...cmd } as UpdateMemberCommand;
  }

  private async propose(command: UpdateMemberCommand | { type: 'InitCluster'; clusterId: string }): Promise<void> {
    const result = await this.opts.store.propose(command, { timeoutMs: this.opts.timeoutMs ?? 5000, origin: { nodeId: this.opts.self } });
    if (!result.outcome.ok) {
      this.opts.log.warn({ command: command.type, outcome: result.outcome }, `${command.type} refused by the state machine`);
      if (command.type === 'UpdateMember') this.published.delete(command.id);
    } else {
      this.opts.log.info({ event: 'member_record_updated', command }, `${command.type}${'id' in command ? ` ${command.id}` : ''} applied`);
    }
  }

  /**
   * A follower tells the leader its own addresses while its record does not show them.
   * Not knowing the leader, it tells every member it can reach: a member restarted on
   * another Raft address hears from no leader (the leader sends to the recorded address)
   * until its record changes, so it must not wait to know the leader first.
   */
  private publishToLeader(): void {
    const { driver, self, replica } = this.opts;
    const leader = driver.node.leader;
    if (leader === self) return;
    const record = replica.current.cluster.members.get(self);
    if (record === undefined) return;
    const own = this.opts.own();
    const stale =
      (own.raftAddress !== undefined && own.raftAddress !== record.raftAddress) ||
      (own.adminAddress !== undefined && own.adminAddress !== record.adminAddress) ||
      (own.proxyAddress !== undefined && own.proxyAddress !== record.proxyAddress) ||
      record.incarnation === undefined;
    if (!stale || this.now() - this.lastPublishAt < 1000) return;
    const frame = { ctl: 'publish', ...own };
    const to = leader !== null ? [leader] : [...replica.current.cluster.members.keys()].filter((id) => id !== self);
    let sent = false;
    for (const id of to) sent = this.opts.sendControl(id, frame) || sent;
    if (sent) this.lastPublishAt = this.now();
  }
}

function unchanged(state: PoolState, member: MemberRecord): MemberWriteResult {
  return { index: state.appliedIndex, duplicate: false, change: 'unchanged', member, clusterId: state.cluster.clusterId };
}

function inProgress(what: string): StoreError {
  return new StoreError('CHANGE_IN_PROGRESS', `another membership change is in flight (${what}); retry once it is applied`);
}

function notLeader(leader: NodeId | null): StoreError {
  return new StoreError('NOT_LEADER', leader === null ? 'no leader is known; retry' : `not the leader; the leader is ${leader}`, leader === null ? {} : { leaderId: leader });
}

function replay(state: PoolState, seen: { index: number; fingerprint: string; outcome: CommandOutcome }, fingerprint: string, requestId: string): MemberWriteResult {
  if (seen.fingerprint !== fingerprint) {
    throw new StoreError('CONFLICT', `request id "${requestId}" was already used at index ${seen.index} for a different request`);
  }
  return resultOf(state, seen.outcome, seen.index, true);
}

function resultOf(state: PoolState, outcome: CommandOutcome, index: number, duplicate: boolean): MemberWriteResult {
  if (outcome.ok && outcome.status === 'member') {
    return { index, duplicate, change: outcome.change, member: outcome.member, clusterId: state.cluster.clusterId };
  }
  if (!outcome.ok) {
    throw new StoreError(outcome.code === 'INVALID' ? 'INVALID_COMMAND' : outcome.code, outcome.message, outcome.field === undefined ? {} : { field: outcome.field });
  }
  throw new StoreError('CONFLICT', `the request id was used for a ${outcome.status} write`);
}

function toStoreError(err: unknown): Error {
  if (err instanceof StoreError) return err;
  if (err instanceof ConfChangePendingError) return inProgress('a change proposed earlier, possibly by a previous leader, is not yet applied');
  if (err instanceof InvalidConfChangeError) return new StoreError('CONFLICT', err.message);
  if (err instanceof NotLeaderError) return notLeader(err.leader);
  return driverError(err);
}
