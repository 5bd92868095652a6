// Seeded randomized simulation: one seed fixes the cluster shape, the
// configuration, every clock rate, every fault and every client request, so a
// failing seed replays exactly. Time is in abstract units (read them as ms).
// Each server has its own timers — election timeout in ticks and tick length —
// as members restarted with different --raft-election-timeout/--raft-heartbeat
// flags have, and its clock runs within -9%..+10% of its own tick length.

import type { Message, RaftConfig } from '../../src/index.js';
import type { RaftOptions } from './cluster.js';
import { Checker, InvariantViolation } from './checker.js';
import { Cluster, text, type SimNode } from './cluster.js';
import { Prng } from './prng.js';

export interface SimOptions {
  readonly seed: number;
  readonly steps: number;
  /** Record a readable event trace (slower; used to replay a failing seed). */
  readonly trace?: boolean;
}

export interface SimStats {
  steps: number;
  time: number;
  terms: number;
  acked: number;
  reads: number;
  crashes: number;
  /** Followers that waived their promise to a crashed leader (leaderGone). */
  leaderGone: number;
  confChanges: number;
  transfers: number;
  snapshotsSent: number;
  messages: number;
  /** Time from healing to a write committed on every member, in the longest election timeout any member had. */
  settleTimeouts: number;
  /** Restarts that came back with other timer settings (a rolling change of flags). */
  retimed: number;
}

export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly trace?: readonly string[];
  readonly stats: SimStats;
}

/** The uniform setting: E = 10 ticks of 100 units. */
const ELECTION_TICK = 10;
const TICK = 100;
/**
 * How members' timers are drawn: 'uniform' — every member E = 10 ticks of 100
 * units (the old assumption); 'mixed' — each member its own election timeout
 * and tick length, redrawn on some restarts; 'rolling' — every member starts
 * alike and restarts switch between two settings, as a rolling change of the
 * election timeout (1 s → 500 ms and back) does.
 */
type TimerMode = 'uniform' | 'mixed' | 'rolling';
const TRACE_LIMIT = 1500;
/** Far above what 8 servers exchange normally (a few hundred at most). */
const MAX_IN_FLIGHT = 20_000;

export function describeMessage(m: Message): string {
  let s = `${m.type} ${m.from}->${m.to} t${m.term}`;
  switch (m.type) {
    case 'MsgApp': {
      const n = m.entries?.length ?? 0;
      s += ` prev=${m.index}/${m.logTerm} commit=${m.commit}`;
      if (n > 0) s += ` ents=[${m.entries![0]!.index}..${m.entries![n - 1]!.index}]`;
      break;
    }
    case 'MsgAppResp':
      s += m.reject ? ` reject ${m.index} hint=${m.rejectHint}/${m.logTerm}` : ` index=${m.index}`;
      break;
    case 'MsgVote':
    case 'MsgPreVote':
      s += ` last=${m.index}/${m.logTerm}${m.context === undefined ? '' : ' ' + m.context}`;
      break;
    case 'MsgVoteResp':
    case 'MsgPreVoteResp':
      s += m.reject ? ' reject' : ' grant';
      break;
    case 'MsgHeartbeat':
      s += ` commit=${m.commit}${m.context === undefined ? '' : ' ctx=' + m.context}`;
      break;
    case 'MsgSnap':
      s += ` snap=${m.snapshot!.metadata.index}/${m.snapshot!.metadata.term} chunk ${m.snapshot!.chunk + 1}/${m.snapshot!.chunks}`;
      break;
    case 'MsgSnapResp':
      s += ` snap=${m.index} got=${m.rejectHint}`;
      break;
    case 'MsgReadIndex':
    case 'MsgReadIndexResp':
      s += ` ctx=${m.context} index=${m.index}`;
      break;
    default:
      break;
  }
  return s;
}

class Simulation {
  readonly rng: Prng;
  readonly cluster: Cluster;
  readonly checker: Checker;
  readonly trace: string[] | undefined;
  readonly stats: SimStats = {
    steps: 0,
    time: 0,
    terms: 0,
    acked: 0,
    reads: 0,
    crashes: 0,
    leaderGone: 0,
    confChanges: 0,
    transfers: 0,
    snapshotsSent: 0,
    messages: 0,
    settleTimeouts: 0,
    retimed: 0,
  };
  private readonly timerMode: TimerMode;
  /** The two settings a 'rolling' run switches between. */
  private readonly rollingSettings: readonly RaftOptions[];
  /** The longest election timeout (time units) any member has had: bounds for held messages and recovery. */
  private maxTimeout = ELECTION_TICK * TICK;
  private readonly spare: string[] = [];
  private seq = 0;
  private readonly flushProbability: number;
  private readonly actionProbability: number;

  constructor(opts: SimOptions) {
    this.rng = new Prng(opts.seed);
    const rng = this.rng;
    this.trace = opts.trace === true ? [] : undefined;
    const size = rng.chance(0.5) ? 3 : 5;
    const voters = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    for (let i = size + 1; i <= size + 3; i++) this.spare.push(`n${i}`);
    this.timerMode = rng.pick<TimerMode>(['uniform', 'mixed', 'mixed', 'rolling']);
    const heartbeatTick = rng.pick([1, 2, 3]);
    this.rollingSettings = [
      { electionTick: 20, tickMs: 50, heartbeatTick: 1 },
      { electionTick: 10, tickMs: 50, heartbeatTick: 1 },
    ];
    const raft: Partial<RaftConfig> = {
      electionTick: ELECTION_TICK,
      tickMs: TICK,
      heartbeatTick,
      // Mostly weldr's configuration; sometimes without pre-vote or
      // check-quorum (then no lease: reads rely on heartbeat rounds).
      preVote: rng.chance(0.8),
      checkQuorum: rng.chance(0.8),
      readOnlyOption: rng.chance(0.5) ? 'safe' : 'leaseBased',
      maxClockDrift: 0.1,
      maxSizePerMsg: rng.pick([1, 64, 256, 1 << 20]),
      maxInflightMsgs: rng.pick([1, 2, 4, 256]),
      maxInflightBytes: rng.pick([0, 200, 1 << 20]),
      snapshotChunkSize: rng.pick([16, 64, 256, 1 << 20]),
      snapshotChunksInFlight: rng.pick([1, 2, 4]),
      // Small bounds hand committed entries out over several Readies.
      maxCommittedSizePerReady: rng.pick([1, 100, 64 << 20]),
      // Small bounds make partitioned leaders refuse proposals ('uncommittedLimit').
      maxUncommittedBytes: rng.pick([0, 40, 200, 32 << 20]),
    };
    this.cluster = new Cluster({
      voters,
      seed: rng.u32(),
      raft,
      snapshotEvery: rng.pick([0, 4, 10, 30]),
      compactKeep: rng.pick([0, 1, 5]),
      snapshotPad: rng.pick([0, 50, 300]),
      persistentStateMachine: rng.chance(0.5),
    });
    this.checker = new Checker(this.cluster);
    const first = this.rollingSettings[rng.int(2)]!;
    for (const n of this.cluster.nodes.values()) {
      if (this.timerMode === 'mixed') this.drawTimers(n);
      else if (this.timerMode === 'rolling') this.setTimers(n, first);
      this.cluster.start(n.id); // again, with its own timers
      this.setClock(n);
    }
    this.flushProbability = rng.pick([0.5, 0.9, 1]);
    this.actionProbability = rng.pick([0.02, 0.05, 0.1]);
    this.setFaults(rng.pick([0, 1, 2]));
    // Most seeds send the leader's appends before its own write (thesis §10.2.1), and
    // often leave that write in flight until the node's next event, so crashes land
    // between sending and persisting; the rest keep the plain persist-then-send order.
    this.cluster.eager = rng.chance(0.75);
    this.cluster.holdProbability = this.cluster.eager ? rng.pick([0, 0.3, 0.7]) : 0;
    this.cluster.inputDuringWrite = this.cluster.holdProbability > 0 ? rng.pick([0, 0.5]) : 0;
    this.log(`cluster ${voters.join(',')} ${JSON.stringify(raft)}${this.cluster.opts.persistentStateMachine ? ' persistent state machine' : ''}; timers ${this.timerMode}; ${this.cluster.eager ? `eager sends, writes held ${this.cluster.holdProbability}, input during writes ${this.cluster.inputDuringWrite}` : 'send after persist'}`);
    for (const n of this.cluster.nodes.values()) this.logTimers(n);
  }

  /** A member's own election timeout (4–24 ticks, lease of at least two ticks) and tick length (40–200 units). */
  private drawTimers(n: SimNode): void {
    const electionTick = this.rng.range(4, 24);
    this.setTimers(n, {
      electionTick,
      tickMs: this.rng.range(40, 200),
      heartbeatTick: Math.min(electionTick - 1, this.rng.pick([1, 1, 2, 3])),
    });
  }

  private setTimers(n: SimNode, t: RaftOptions): void {
    n.raft = t;
    this.maxTimeout = Math.max(this.maxTimeout, Math.ceil((t.electionTick ?? ELECTION_TICK) * (t.tickMs ?? TICK) * 1.1));
    // Held messages arrive up to 3 election timeouts late: after elections, restarts, compactions.
    this.cluster.network.faults.longDelayMax = 3 * this.maxTimeout;
  }

  private logTimers(n: SimNode): void {
    if (this.trace === undefined) return;
    const t = { electionTick: ELECTION_TICK, tickMs: TICK, ...this.cluster.opts.raft, ...n.raft };
    this.log(`timers ${n.id}: E=${t.electionTick} tick=${t.tickMs} heartbeat=${t.heartbeatTick} period=${n.period.toFixed(1)}`);
  }

  /** A restart with other flags: a rolling change of --raft-election-timeout / --raft-heartbeat. */
  private maybeRetime(n: SimNode): void {
    if (this.timerMode === 'mixed' && this.rng.chance(0.3)) this.drawTimers(n);
    else if (this.timerMode === 'rolling' && this.rng.chance(0.5)) this.setTimers(n, this.rollingSettings[this.rng.int(2)]!);
    else return;
    this.stats.retimed++;
  }

  private log(s: string): void {
    if (this.trace === undefined) return;
    this.trace.push(`${String(this.cluster.now).padStart(7)} ${s}`);
    if (this.trace.length > TRACE_LIMIT * 2) this.trace.splice(0, this.trace.length - TRACE_LIMIT);
  }

  private setClock(n: SimNode): void {
    // Clock-rate skew: each server's period within -9%..+10% of its own tick
    // length, inside the ±ρ = 10% the lease assumes.
    const tickMs = n.raft.tickMs ?? this.cluster.opts.raft?.tickMs ?? TICK;
    n.period = (tickMs * this.rng.range(910, 1100)) / 1000;
    n.nextTick = this.cluster.now + 1 + this.rng.next() * (n.period - 1);
  }

  private setFaults(level: number): void {
    const f = this.cluster.network.faults;
    const r = this.rng;
    if (level === 0) {
      f.drop = 0;
      f.duplicate = 0;
      f.minDelay = 1;
      f.maxDelay = r.pick([5, 30]);
      f.longDelay = 0;
    } else if (level === 1) {
      f.drop = r.pick([0.01, 0.05]);
      f.duplicate = r.pick([0, 0.02]);
      f.minDelay = 1;
      f.maxDelay = r.pick([30, 80]);
      f.longDelay = r.pick([0, 0, 0.002, 0.01]);
    } else {
      f.drop = r.pick([0.1, 0.25]);
      f.duplicate = r.pick([0.05, 0.1]);
      f.minDelay = r.pick([1, 20]);
      f.maxDelay = r.pick([150, 400]);
      f.longDelay = r.pick([0, 0.005, 0.02]);
    }
    f.longDelayMax = 3 * this.maxTimeout;
    this.log(`faults drop=${f.drop} dup=${f.duplicate} delay=${f.minDelay}..${f.maxDelay} long=${f.longDelay}`);
  }

  private upNodes(): SimNode[] {
    const out: SimNode[] = [];
    for (const n of this.cluster.nodes.values()) if (n.raw !== null) out.push(n);
    return out;
  }

  private leaders(): SimNode[] {
    return this.upNodes().filter((n) => n.raw!.role === 'leader');
  }

  /** Process the next event in time: a message delivery or a clock tick. */
  advance(): void {
    const c = this.cluster;
    let next: SimNode | undefined;
    for (const n of c.nodes.values()) {
      if (n.raw !== null && (next === undefined || n.nextTick < next.nextTick)) next = n;
    }
    const mt = c.network.nextTime();
    if (mt !== undefined && (next === undefined || mt <= next.nextTick)) {
      c.now = Math.max(c.now, mt);
      const m = c.network.popDue(c.now);
      if (m === undefined) return;
      this.stats.messages++;
      if (m.type === 'MsgSnap') this.stats.snapshotsSent++;
      const accepted = c.deliver(m);
      if (this.trace !== undefined) this.log(`${accepted ? '' : '(dropped) '}${describeMessage(m)}`);
      const to = c.nodes.get(m.to);
      if (to !== undefined && to.raw !== null && this.rng.chance(this.flushProbability)) c.flush(m.to);
      return;
    }
    if (next === undefined) return;
    c.now = Math.max(c.now, next.nextTick);
    next.nextTick += next.period;
    c.flush(next.id);
    c.settle(next.id); // the tick is input: it waits for the write in flight
    const raw = next.raw!;
    const before = raw.role;
    raw.tick();
    if (this.trace !== undefined && raw.role !== before) this.log(`${next.id} tick: ${before} -> ${raw.role} term ${raw.term}`);
    if (this.rng.chance(this.flushProbability)) c.flush(next.id);
  }

  action(): void {
    const r = this.rng.next();
    if (r < 0.3) this.propose(1);
    else if (r < 0.38) this.propose(this.rng.range(2, 6));
    else if (r < 0.48) this.read();
    else if (r < 0.53) this.crash();
    else if (r < 0.555) this.bounce();
    else if (r < 0.56) this.restartFollowers();
    else if (r < 0.62) this.restart();
    else if (r < 0.68) this.partition();
    else if (r < 0.72) this.cutLink();
    else if (r < 0.8) this.heal();
    else if (r < 0.84) this.setFaults(this.rng.pick([0, 1, 1, 2]));
    else if (r < 0.89) this.transfer();
    else if (r < 0.97) this.confChange();
    else if (r < 0.985) this.campaign();
    else this.unreachable();
  }

  private propose(count: number): void {
    const up = this.upNodes();
    if (up.length === 0) return;
    const leaders = this.leaders();
    const n = leaders.length > 0 && this.rng.chance(0.9) ? this.rng.pick(leaders) : this.rng.pick(up);
    const data = Array.from({ length: count }, () => text(`c${++this.seq}`));
    this.cluster.settle(n.id);
    const res = count === 1 ? n.raw!.propose(data[0]!) : n.raw!.proposeBatch(data);
    if (!res.ok) {
      this.log(`propose on ${n.id}: refused (${res.reason})`);
      return;
    }
    for (let i = 0; i < count; i++) this.checker.proposed(n.id, res.index - count + 1 + i, res.term, data[i]!);
    this.log(`propose on ${n.id}: ${count} at ${res.index - count + 1}..${res.index} term ${res.term}`);
  }

  private read(): void {
    const up = this.upNodes();
    if (up.length === 0) return;
    const n = this.rng.pick(up);
    const ctx = `r${++this.seq}`;
    this.cluster.settle(n.id);
    const res = n.raw!.readIndex(ctx);
    if (!res.ok) return;
    this.checker.pendingReads.set(ctx, { node: n.id, minIndex: this.checker.maxAckedIndex });
    this.log(`readIndex ${ctx} on ${n.id} (must see >= ${this.checker.maxAckedIndex})`);
  }

  private crash(): void {
    const up = this.upNodes();
    if (up.length === 0) return;
    // Leaders half the time: failures right after an election are where logs diverge (Figure 8).
    const leaders = this.leaders();
    const n = leaders.length > 0 && this.rng.chance(0.5) ? this.rng.pick(leaders) : this.rng.pick(up);
    // Half the crashes also lose what the driver saved without fsync (mustSync false).
    const lose = this.rng.chance(0.5);
    const led = n.raw!.role === 'leader' ? n.raw!.term : null;
    this.cluster.crash(n.id, lose);
    this.stats.crashes++;
    this.log(`CRASH ${n.id}${lose ? ' (unsynced writes lost)' : ''}`);
    if (led !== null) this.leaderGone(n.id, led);
  }

  /**
   * The fast failover path (README, "Fast failover"): the followers of a leader whose
   * process died see its connections close and its port refuse, and tell their core —
   * most of them, each on its own. A dead process holds no lease anyone acts on (the
   * checker only counts running servers), so the lease must still never overlap.
   */
  private leaderGone(id: string, term: number): void {
    for (const n of this.upNodes()) {
      if (n.id === id || !this.rng.chance(0.7)) continue;
      this.cluster.settle(n.id);
      if (n.raw!.leaderGone(term, id)) {
        this.stats.leaderGone++;
        this.log(`LEADER GONE ${id} (term ${term}) seen by ${n.id}`);
      }
    }
  }

  /**
   * A supervisor's restart: crash a server and start it again at once, often
   * with other timers (a rolling change of flags). It comes back inside the
   * lease it may just have promised: its restart window must cover it.
   */
  private bounce(): void {
    const up = this.upNodes();
    if (up.length === 0) return;
    const n = this.rng.pick(up);
    const lose = this.rng.chance(0.5);
    const led = n.raw!.role === 'leader' ? n.raw!.term : null;
    this.cluster.crash(n.id, lose);
    this.stats.crashes++;
    this.log(`CRASH ${n.id}${lose ? ' (unsynced writes lost)' : ''}`);
    // Probes may land in the gap before the new process listens.
    if (led !== null) this.leaderGone(n.id, led);
    this.restartNode(n);
  }

  /**
   * Every server but the leader restarts at once (a hasty rolling change of
   * flags), and half the time the leader is cut off right then: the lease it
   * holds now rests on the restarted servers' restart windows alone.
   */
  private restartFollowers(): void {
    const leaders = this.leaders();
    if (leaders.length === 0) return;
    const l = this.rng.pick(leaders);
    for (const n of this.upNodes()) {
      if (n === l) continue;
      this.cluster.crash(n.id, false);
      this.stats.crashes++;
      this.log(`CRASH ${n.id}`);
      this.restartNode(n);
    }
    if (this.rng.chance(0.5)) {
      const others = this.cluster.ids().filter((id) => id !== l.id);
      this.cluster.network.partition([l.id], others);
      this.log(`PARTITION [${l.id}] | [${others.join(',')}]`);
    }
  }

  private restart(): void {
    const down = [...this.cluster.nodes.values()].filter((n) => n.raw === null);
    if (down.length === 0) return;
    const n = this.rng.pick(down);
    this.restartNode(n);
  }

  private restartNode(n: SimNode): void {
    this.maybeRetime(n);
    this.cluster.start(n.id);
    this.setClock(n);
    this.log(`RESTART ${n.id} term=${n.raw!.term} commit=${n.raw!.commitIndex} last=${n.raw!.lastIndex}`);
    this.logTimers(n);
  }

  private partition(): void {
    const ids = this.cluster.ids();
    const a: string[] = [];
    const b: string[] = [];
    const leaders = this.leaders();
    if (leaders.length > 0 && this.rng.chance(0.3)) {
      const l = this.rng.pick(leaders).id;
      for (const id of ids) (id === l ? a : b).push(id); // isolate a leader
    } else {
      for (const id of ids) (this.rng.chance(0.5) ? a : b).push(id);
    }
    if (a.length === 0 || b.length === 0) return;
    this.cluster.network.partition(a, b);
    this.log(`PARTITION [${a.join(',')}] | [${b.join(',')}]`);
  }

  private cutLink(): void {
    const ids = this.cluster.ids();
    const from = this.rng.pick(ids);
    const to = this.rng.pick(ids);
    if (from === to) return;
    this.cluster.network.cutLink(from, to);
    this.log(`CUT ${from} -> ${to}`);
  }

  private heal(): void {
    this.cluster.network.heal();
    this.log('HEAL');
  }

  private transfer(): void {
    const leaders = this.leaders();
    if (leaders.length === 0) return;
    const l = this.rng.pick(leaders);
    const voters = l.raw!.config.voters.filter((v) => v !== l.id);
    if (voters.length === 0) return;
    const to = this.rng.pick(voters);
    this.cluster.settle(l.id);
    const res = l.raw!.transferLeadership(to);
    if (res.ok) this.stats.transfers++;
    this.log(`transfer ${l.id} -> ${to}: ${res.ok ? 'started' : res.reason}`);
  }

  private campaign(): void {
    const up = this.upNodes();
    if (up.length === 0) return;
    const n = this.rng.pick(up);
    this.cluster.settle(n.id);
    const res = n.raw!.campaign();
    this.log(`campaign ${n.id}: ${res.ok ? 'ok' : res.reason}`);
  }

  /** A transport error on a leader's link (what a real driver reports on a failed send). */
  private unreachable(): void {
    const leaders = this.leaders();
    if (leaders.length === 0) return;
    const l = this.rng.pick(leaders);
    const to = this.rng.pick(this.cluster.ids());
    if (to === l.id) return;
    this.cluster.settle(l.id);
    l.raw!.reportUnreachable(to);
    this.log(`unreachable ${l.id} -> ${to}`);
  }

  private confChange(): void {
    const leaders = this.leaders();
    if (leaders.length === 0) return;
    const l = this.rng.pick(leaders);
    const conf = l.raw!.config;
    const r = this.rng.next();
    let cc: { type: 'addVoter' | 'addLearner' | 'removeNode'; nodeId: string } | undefined;
    let fresh = false;
    if (r < 0.3 && this.spare.length > 0) {
      cc = { type: 'addLearner', nodeId: this.spare[0]! };
      fresh = true;
    } else if (r < 0.55 && conf.learners.length > 0) {
      cc = { type: 'addVoter', nodeId: this.rng.pick(conf.learners) };
    } else if (r < 0.65 && this.spare.length > 0 && conf.voters.length < 5) {
      cc = { type: 'addVoter', nodeId: this.spare[0]! };
      fresh = true;
    } else if (conf.voters.length > 3 || (conf.learners.length > 0 && r > 0.9)) {
      const pool = conf.voters.length > 3 ? [...conf.voters, ...conf.learners] : [...conf.learners];
      cc = { type: 'removeNode', nodeId: this.rng.pick(pool) };
    }
    if (cc === undefined) return;
    this.cluster.settle(l.id);
    const res = l.raw!.proposeConfChange(cc);
    this.log(`conf change on ${l.id}: ${cc.type} ${cc.nodeId}: ${res.ok ? `at ${res.index}` : res.reason}`);
    if (!res.ok) return;
    this.stats.confChanges++;
    if (fresh) {
      this.spare.shift();
      const n = this.cluster.add(cc.nodeId);
      if (this.timerMode === 'mixed') this.drawTimers(n);
      else if (this.timerMode === 'rolling') this.setTimers(n, this.rollingSettings[this.rng.int(2)]!);
      this.cluster.start(n.id);
      this.setClock(n);
      this.logTimers(n);
    }
  }

  step(): void {
    if (this.rng.chance(this.actionProbability)) this.action();
    else this.advance();
    this.checkTraffic();
    this.checker.afterStep();
  }

  /** Messages must not multiply: a storm stops simulated time, so catch it here rather than hang. */
  private checkTraffic(): void {
    const n = this.cluster.network.inFlight;
    if (n > MAX_IN_FLIGHT) throw new InvariantViolation(`message storm: ${n} messages in flight`);
  }

  /**
   * Liveness (§5.2, Figure 2 timing): with the network healed and every server
   * up, a leader must emerge and a new write must commit and reach every
   * member within a bounded time.
   */
  settle(): void {
    const c = this.cluster;
    c.network.heal();
    this.setFaults(0);
    for (const n of c.nodes.values()) if (n.raw === null) this.restartNode(n);
    this.log('SETTLE: healed, all servers up');
    const healedAt = c.now;
    const deadline = c.now + 60 * this.maxTimeout;
    let final: { node: string; index: number; term: number } | undefined;
    const data = text('final');
    let refusal = '';
    while (c.now < deadline) {
      this.advance();
      this.checkTraffic();
      this.checker.afterStep();
      const leaders = this.leaders();
      if (final === undefined) {
        // The leader of the highest term: a deposed one may not know yet.
        let l: SimNode | undefined;
        for (const n of leaders) if (l === undefined || n.raw!.term > l.raw!.term) l = n;
        if (l !== undefined) {
          this.cluster.settle(l.id);
          const res = l.raw!.propose(data);
          if (res.ok) {
            final = { node: l.id, index: res.index, term: res.term };
            this.checker.proposed(l.id, res.index, res.term, data);
            this.log(`SETTLE: final write on ${l.id} at ${res.index}`);
          } else if (res.reason !== refusal) {
            refusal = res.reason;
            this.log(`SETTLE: final write refused by ${l.id}: ${res.reason}`);
          }
        }
        continue;
      }
      const e = this.checker.appliedAt(final.index);
      if (e === undefined) {
        // The write may have been lost with its leader's term (never acknowledged): propose anew.
        if (leaders.length > 0 && leaders.every((l) => l.raw!.term !== final!.term)) final = undefined;
        continue;
      }
      if (e.term !== final.term) {
        final = undefined; // lost to a leader change; try again
        continue;
      }
      let l: SimNode | undefined;
      for (const n of leaders) if (l === undefined || n.raw!.term > l.raw!.term) l = n;
      if (l === undefined) continue;
      const members = [...l.raw!.config.voters, ...l.raw!.config.learners].map((id) => c.get(id));
      if (members.every((m) => m.appliedIndex >= final!.index)) {
        this.checker.checkAckedAppliedEverywhere(members);
        // In the longest election timeouts any member had (the bound is 60).
        this.stats.settleTimeouts = Math.ceil((10 * (c.now - healedAt)) / this.maxTimeout) / 10;
        return;
      }
    }
    const state = [...c.nodes.values()]
      .map((n) => {
        const s = n.raw!.status();
        return `${n.id}:${s.role} t${s.term} lead=${s.leader} commit=${s.commit} applied=${n.appliedIndex} last=${s.lastIndex} conf=${s.config.voters.join(',')}/${s.config.learners.join(',')}`;
      })
      .join('; ');
    throw new InvariantViolation(`liveness: no committed write within 60 election timeouts (${60 * this.maxTimeout} units) after healing (${state})`);
  }
}

export function runSimulation(opts: SimOptions): SimResult {
  const sim = new Simulation(opts);
  let error: string | undefined;
  try {
    for (let i = 0; i < opts.steps; i++) sim.step();
    sim.settle();
  } catch (e) {
    error = e instanceof Error ? `${e.name}: ${e.message}${e instanceof InvariantViolation ? '' : `\n${e.stack}`}` : String(e);
  }
  const s = sim.stats;
  s.steps = opts.steps;
  s.time = sim.cluster.now;
  s.acked = sim.checker.acked.length;
  s.terms = Math.max(0, ...[...sim.cluster.nodes.values()].map((n) => n.raw?.term ?? 0));
  s.reads = sim.checker.readsServed;
  const res: SimResult = { seed: opts.seed, ok: error === undefined, stats: s };
  const trace = sim.trace === undefined ? {} : { trace: sim.trace.slice(-TRACE_LIMIT) };
  return error === undefined ? { ...res, ...trace } : { ...res, error, ...trace };
}
