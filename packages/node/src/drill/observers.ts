// What the drill watches while it injects faults, each as a background loop that only
// records: every member's GET /ready every 10 ms, every member's GET /cluster every
// 100 ms, steady proxied requests, and steady admin writes through the members.
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { adminCall, errorCode, failureName, sleep, type AdminAccess } from './http.js';
import { OverlapDetector } from './overlaps.js';
import type { ClusterObservation, Overlap, ReadySample, RequestRecord, WriteRecord } from './report.js';

export interface DrillMember {
  readonly id: string;
  readonly adminUrl: string;
  /** http://host:port/ of its proxy, when known. */
  readonly proxyUrl: string | undefined;
}

/** The drill's clock: milliseconds since it started (monotonic). */
export type Clock = () => number;

abstract class Loop {
  protected running = false;
  private loops: Promise<void>[] = [];
  protected readonly stopSignal = new AbortController();

  protected startLoops(n: number, body: (i: number) => Promise<void>): void {
    this.running = true;
    for (let i = 0; i < n; i++) {
      this.loops.push(
        (async () => {
          while (this.running) await body(i);
        })(),
      );
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopSignal.abort();
    await Promise.all(this.loops);
  }
}

/**
 * GET /ready of every member every `intervalMs`, open loop: a request starts on schedule
 * even when earlier ones have not answered (a paused member, a loaded machine), at most
 * MAX_IN_FLIGHT per member. Two active nodes at once are judged by the terms the 200
 * answers name (overlaps.ts), not by request intervals that merely overlap in transit.
 */
export class ReadySampler extends Loop {
  static readonly MAX_IN_FLIGHT = 8;
  readonly samples: ReadySample[] = [];
  readonly overlaps: Overlap[] = [];
  private readonly detector = new OverlapDetector();
  private readonly latest = new Map<string, ReadySample>();
  /** The latest sample that got an answer (200 or 503), per member. */
  private readonly latestAnswer = new Map<string, ReadySample>();
  private readonly inFlight = new Map<string, number>();
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly members: readonly DrillMember[],
    private readonly access: AdminAccess,
    private readonly now: Clock,
    private readonly intervalMs = 10,
    private readonly timeoutMs = 500,
  ) {
    super();
  }

  start(): void {
    this.startLoops(1, async () => {
      const tick = this.now();
      for (const m of this.members) {
        if ((this.inFlight.get(m.id) ?? 0) >= ReadySampler.MAX_IN_FLIGHT) continue;
        const p = this.sample(m).finally(() => this.pending.delete(p));
        this.pending.add(p);
      }
      await sleep(Math.max(1, this.intervalMs - (this.now() - tick)), this.stopSignal.signal);
    });
  }

  override async stop(): Promise<void> {
    await super.stop();
    await Promise.all(this.pending);
  }

  /**
   * The members whose latest answer (by when it was asked) was 200. A sample that timed
   * out on a loaded machine says nothing either way, so a member whose latest *answer*
   * was 200 counts as active unless it stopped answering for longer than a second.
   */
  activeNow(): string[] {
    const now = this.now();
    return [...this.latestAnswer.values()].filter((s) => s.active === true && (this.latest.get(s.member)?.active !== null || now - s.at < 1000)).map((s) => s.member);
  }

  /** Of the members that look active, the one whose latest 200 was asked last (the newest). */
  newestActive(): string | undefined {
    let best: ReadySample | undefined;
    for (const id of this.activeNow()) {
      const s = this.latestAnswer.get(id)!;
      if (best === undefined || s.sentAt > best.sentAt) best = s;
    }
    return best?.member;
  }

  private async sample(m: DrillMember): Promise<void> {
    this.inFlight.set(m.id, (this.inFlight.get(m.id) ?? 0) + 1);
    const sentAt = this.now();
    let active: boolean | null;
    let term: number | undefined;
    try {
      const res = await request(`${m.adminUrl}/ready`, { dispatcher: this.access.dispatcher, signal: AbortSignal.timeout(this.timeoutMs) });
      if (res.statusCode === 200) {
        active = true;
        term = readyBodyTerm(await res.body.text());
      } else {
        await res.body.dump();
        active = res.statusCode === 503 ? false : null;
      }
    } catch {
      active = null;
    }
    this.inFlight.set(m.id, (this.inFlight.get(m.id) ?? 1) - 1);
    const s: ReadySample = { member: m.id, sentAt, at: this.now(), active, ...(term === undefined ? {} : { term }) };
    this.samples.push(s);
    const before = this.latest.get(m.id);
    if (before === undefined || before.sentAt <= sentAt) this.latest.set(m.id, s);
    const answered = this.latestAnswer.get(m.id);
    if (active !== null && (answered === undefined || answered.sentAt <= sentAt)) this.latestAnswer.set(m.id, s);
    this.overlaps.push(...this.detector.add(s));
  }
}

/** The term of a /ready 200 body ({"status":"ready","term":N}); undefined if absent. */
export function readyBodyTerm(body: string): number | undefined {
  try {
    const term = (JSON.parse(body) as { term?: unknown }).term;
    return typeof term === 'number' && Number.isSafeInteger(term) && term >= 0 ? term : undefined;
  } catch {
    return undefined;
  }
}

export interface MemberView {
  readonly at: number;
  readonly nodeId: string;
  readonly role: string;
  readonly leaderId: string | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
}

/** GET /cluster of every member every 100 ms: the terms and leaders seen, and health. */
export class ClusterPoller extends Loop {
  readonly observations: ClusterObservation[] = [];
  private readonly views = new Map<string, MemberView | null>();

  constructor(
    private readonly members: readonly DrillMember[],
    private readonly access: AdminAccess,
    private readonly now: Clock,
    private readonly intervalMs = 100,
  ) {
    super();
  }

  start(): void {
    this.startLoops(this.members.length, (i) => this.poll(this.members[i]!));
  }

  /** The latest view of each member (null: it did not answer last time). */
  view(member: string): MemberView | null | undefined {
    return this.views.get(member);
  }

  private async poll(m: DrillMember): Promise<void> {
    const started = this.now();
    try {
      const r = await adminCall<MemberView>(this.access, m.adminUrl, 'GET', '/cluster', { timeoutMs: 500 });
      const b = r.body;
      if (r.status === 200 && b !== undefined && typeof b.term === 'number') {
        const at = this.now();
        this.views.set(m.id, { ...b, at });
        this.observations.push({ at, member: m.id, term: b.term, leaderId: b.leaderId ?? null });
      } else this.views.set(m.id, null);
    } catch {
      this.views.set(m.id, null);
    }
    await sleep(Math.max(0, this.intervalMs - (this.now() - started)), this.stopSignal.signal);
  }
}

/** The weldr node named in a Via header ("1.1 n2 (weldr/ab12cd34)"), if any. */
export function viaNode(via: string | string[] | undefined): string | null {
  const text = Array.isArray(via) ? via.join(',') : via;
  if (text === undefined) return null;
  const m = /(?:^|,)\s*[^\s,]+\s+([^\s,]+)\s+\(weldr\//.exec(text);
  return m?.[1] ?? null;
}

/**
 * Steady proxied GET requests to `pick()`'s URL at `rate` per second, open loop: a new
 * request starts on schedule whether or not earlier ones answered (at most MAX_IN_FLIGHT),
 * so a target that hangs (a paused node) does not stop the traffic from finding the new one.
 */
export class ProxyTraffic extends Loop {
  static readonly MAX_IN_FLIGHT = 256;
  readonly records: RequestRecord[] = [];
  private readonly agent: Agent;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly pick: () => string,
    private readonly rate: number,
    private readonly now: Clock,
    /** A new connection per request (the VIP moves between hosts: no stale keep-alive). */
    private readonly fresh: boolean,
    private readonly timeoutMs = 2_000,
  ) {
    super();
    // No connection limit (MAX_IN_FLIGHT bounds the requests): with a limit, requests
    // hanging on a dead target would queue the next ones behind them and delay the
    // moment the new active node is seen serving by their own timeout.
    this.agent = new Agent({ connect: { timeout: timeoutMs }, keepAliveTimeout: 2_000, connections: null });
  }

  start(): void {
    // Ticks of 10 ms, each starting the requests due by then.
    const started = this.now();
    let sent = 0;
    this.startLoops(1, async () => {
      const due = Math.floor(((this.now() - started) * this.rate) / 1000);
      for (; sent < due; sent++) {
        if (this.pending.size >= ProxyTraffic.MAX_IN_FLIGHT) continue;
        const p = this.one().finally(() => this.pending.delete(p));
        this.pending.add(p);
      }
      await sleep(10, this.stopSignal.signal);
    });
  }

  override async stop(): Promise<void> {
    await super.stop();
    await Promise.all(this.pending);
    await this.agent.close();
  }

  /** One request outside the recorded traffic (pre-flight): null when it was served, else why not. */
  async probe(url: string): Promise<string | null> {
    try {
      const res = await request(url, { dispatcher: this.agent, reset: this.fresh, signal: AbortSignal.timeout(this.timeoutMs), headers: { 'user-agent': 'weldr-drill' } });
      await res.body.dump();
      return res.statusCode < 500 ? null : `answered ${res.statusCode}${typeof res.headers['x-weldr-error'] === 'string' ? ` ${res.headers['x-weldr-error']}` : ''}`;
    } catch (err) {
      return failureName(err);
    }
  }

  private async one(): Promise<void> {
    const url = this.pick();
    const sentAt = this.now();
    let record: RequestRecord;
    try {
      const res = await request(url, { dispatcher: this.agent, reset: this.fresh, signal: AbortSignal.timeout(this.timeoutMs), headers: { 'user-agent': 'weldr-drill' } });
      await res.body.dump();
      const ok = res.statusCode < 500;
      const code = res.headers['x-weldr-error'];
      record = { sentAt, at: this.now(), ok, status: res.statusCode, via: viaNode(res.headers['via']), ...(ok ? {} : { error: typeof code === 'string' ? `${res.statusCode} ${code}` : String(res.statusCode) }) };
    } catch (err) {
      record = { sentAt, at: this.now(), ok: false, error: failureName(err), via: null };
    }
    this.records.push(record);
  }
}

/**
 * Steady admin writes through the members, in turn: each one an atomic batch that adds
 * and removes the same TEST-NET-1 address (RFC 5737), so it goes through Raft and is
 * acknowledged after commit and apply, yet leaves the pool exactly as it was. A member
 * that cannot be reached is skipped for the next one (the same Idempotency-Key); an
 * answer — 503 during an election included — is the outcome.
 */
export class AdminWrites extends Loop {
  readonly records: WriteRecord[] = [];
  private next = 0;
  private inFlight = 0;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly members: readonly DrillMember[],
    private readonly access: AdminAccess,
    private readonly now: Clock,
    private readonly random: () => number,
    private readonly everyMs = 50,
    private readonly maxInFlight = 32,
    private readonly attemptMs = 1_000,
  ) {
    super();
  }

  start(): void {
    this.startLoops(1, async () => {
      if (this.inFlight < this.maxInFlight) {
        const p = this.write().finally(() => this.pending.delete(p));
        this.pending.add(p);
      }
      await sleep(this.everyMs, this.stopSignal.signal);
    });
  }

  override async stop(): Promise<void> {
    await super.stop();
    await Promise.all(this.pending);
  }

  private async write(): Promise<void> {
    this.inFlight++;
    const port = 1024 + Math.floor(this.random() * 64_000);
    const body = { commands: [{ type: 'AddServer', ip: '192.0.2.1', port }, { type: 'RemoveServer', ip: '192.0.2.1', port }] };
    const key = `weldr-drill-${randomUUID()}`;
    const sentAt = this.now();
    let record: WriteRecord | undefined;
    const first = this.next++;
    for (let i = 0; i < this.members.length && record === undefined; i++) {
      const m = this.members[(first + i) % this.members.length]!;
      try {
        const r = await adminCall(this.access, m.adminUrl, 'POST', '/servers/batch', { body, timeoutMs: this.attemptMs, idempotencyKey: key });
        const ok = r.status >= 200 && r.status < 300;
        record = { sentAt, at: this.now(), ok, status: r.status, endpoint: m.adminUrl, ...(ok ? {} : { error: `${r.status} ${errorCode(r.body) ?? ''}`.trim() }) };
      } catch (err) {
        if (i === this.members.length - 1) record = { sentAt, at: this.now(), ok: false, error: failureName(err), endpoint: m.adminUrl };
      }
    }
    if (record !== undefined) this.records.push(record);
    this.inFlight--;
  }
}
