// The drill report: what was observed, turned into per-round figures and a summary, and
// checked against the thresholds given on the command line. Pure functions over the
// recorded observations (all times are ms on the drill's monotonic clock), so the
// report can be tested without a cluster.
import type { DrillKind, Thresholds } from './options.js';
import { table } from '../ctl/render.js';

/** One answer (or non-answer) of a member's GET /ready. */
export interface ReadySample {
  readonly member: string;
  readonly sentAt: number;
  readonly at: number;
  /** true 200, false 503, null no answer (refused, timed out). */
  readonly active: boolean | null;
  /** The term a 200 answer named (absent from nodes that do not say it). */
  readonly term?: number;
}

/** One proxied request of the steady traffic. */
export interface RequestRecord {
  readonly sentAt: number;
  readonly at: number;
  readonly ok: boolean;
  readonly status?: number;
  readonly error?: string;
  /** The weldr node that proxied it (from its Via entry), when known. */
  readonly via: string | null;
}

/** One admin write of the steady writes. */
export interface WriteRecord {
  readonly sentAt: number;
  readonly at: number;
  readonly ok: boolean;
  readonly status?: number;
  /** The admin API's error code, or the connection error. */
  readonly error?: string;
  readonly endpoint: string;
}

/** What one member said in GET /cluster. */
export interface ClusterObservation {
  readonly at: number;
  readonly member: string;
  readonly term: number;
  readonly leaderId: string | null;
}

/** Two members active at once, as overlaps.ts judges /ready samples. */
export interface Overlap {
  readonly at: number;
  readonly members: readonly string[];
  /** The older and the newer term of the two answers (absent for term-less answers). */
  readonly terms?: readonly [number, number];
  readonly rule: 'same-term' | 'older-term-after-newer' | 'intervals';
}

export interface RoundRecord {
  readonly round: number;
  /** The active node the fault was injected into. */
  readonly target: string;
  readonly faultAt: number;
  /** The fault was lifted (pause: SIGCONT; isolate: healed; kill: the member is back). */
  readonly healedAt?: number;
  readonly endAt: number;
  /** What went wrong in this round (no failover, heal failed, interrupted). */
  readonly error?: string;
  /** transfer: the member asked to take over. */
  readonly transferTo?: string;
}

export interface Observations {
  readonly samples: readonly ReadySample[];
  readonly requests: readonly RequestRecord[];
  readonly writes: readonly WriteRecord[];
  readonly cluster: readonly ClusterObservation[];
  readonly overlaps: readonly Overlap[];
  readonly rounds: readonly RoundRecord[];
}

export interface Counts {
  readonly total: number;
  readonly failed: number;
  readonly slow: number;
  /** failed ones by status code or error. */
  readonly failures: Readonly<Record<string, number>>;
}

export interface RoundReport {
  readonly round: number;
  readonly fault: string;
  readonly target: string;
  readonly newActive: string | null;
  /** Fault → the old active node seen not active. */
  readonly lostMs: number | null;
  /** Fault → a new active node seen (GET /ready 200). */
  readonly failoverMs: number | null;
  /**
   * Fault → the first proxied request served through the new active node — or through a
   * later one, when the leadership moved on again in the same round (a loaded machine):
   * a request counts once its node had been seen active after the fault.
   */
  readonly servedMs: number | null;
  /** Fault → the first acknowledged write among those sent after the fault. */
  readonly writeMs: number | null;
  /** Fault → the fault lifted and the cluster healthy again. */
  readonly healedMs: number | null;
  readonly requests: Counts;
  readonly writes: Counts;
  readonly twoActive: number;
  readonly terms: readonly number[];
  readonly leaders: readonly string[];
  readonly error?: string;
}

export interface Stat {
  readonly p50: number | null;
  readonly max: number | null;
}

export interface ThresholdResult {
  readonly name: string;
  readonly limit: number;
  readonly actual: number | null;
  readonly ok: boolean;
}

export interface DrillReport {
  readonly kind: DrillKind;
  readonly seed: number;
  readonly members: readonly string[];
  readonly targets: readonly string[];
  readonly rounds: readonly RoundReport[];
  readonly summary: {
    readonly rounds: number;
    readonly failedRounds: number;
    readonly lostMs: Stat;
    readonly failoverMs: Stat;
    readonly servedMs: Stat;
    readonly writeMs: Stat;
    readonly requests: Counts;
    readonly writes: Counts;
    readonly samples: number;
    readonly twoActive: number;
    readonly terms: { readonly first: number | null; readonly last: number | null };
    readonly leaders: readonly string[];
  };
  readonly thresholds: readonly ThresholdResult[];
  readonly interrupted: boolean;
  /** Every threshold met, no round failed, never two active nodes, not interrupted. */
  readonly ok: boolean;
}

function counts<T extends { readonly sentAt: number; readonly at: number; readonly ok: boolean; readonly status?: number; readonly error?: string }>(records: readonly T[], slowMs: number): Counts {
  const failures: Record<string, number> = {};
  let failed = 0;
  let slow = 0;
  for (const r of records) {
    if (!r.ok) {
      failed++;
      const key = r.error ?? String(r.status ?? 'error');
      failures[key] = (failures[key] ?? 0) + 1;
    } else if (r.at - r.sentAt > slowMs) slow++;
  }
  return { total: records.length, failed, slow, failures };
}

function stat(values: readonly (number | null)[]): Stat {
  const v = values.filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (v.length === 0) return { p50: null, max: null };
  return { p50: v[Math.floor((v.length - 1) / 2)]!, max: v[v.length - 1]! };
}

const round1 = (ms: number): number => Math.round(ms);

/** The figures of one round from everything observed in its window [fault, end). */
export function roundReport(kind: DrillKind, r: RoundRecord, o: Observations, slowMs: number): RoundReport {
  // Everything in flight during the round: a request sent just before the fault that the
  // fault made fail is one of its casualties.
  const inWindow = <T extends { readonly sentAt: number; readonly at: number }>(xs: readonly T[]): T[] => xs.filter((x) => x.at >= r.faultAt && x.sentAt < r.endAt);
  // Lost: the target's first sample without a 200 after its last 200 (a sample that got
  // no answer on a loaded machine is taken back by a later 200).
  let lostAt: number | null = null;
  let answered503 = false;
  let activeAt: number | null = null;
  let newActive: string | null = null;
  // The term the target was active in before the fault (from its 200 answers).
  let targetTerm: number | undefined;
  for (const s of o.samples) if (s.member === r.target && s.active === true && s.at < r.faultAt && s.term !== undefined) targetTerm = Math.max(targetTerm ?? 0, s.term);
  // The new active node: another member, or the same one in a newer term (a 503 on a
  // loaded machine followed by a 200 in the same term is the same active period). Without
  // terms (older nodes): the same one once it answered 503.
  const newlyActive = (s: ReadySample): boolean =>
    s.active === true && (s.member !== r.target || (targetTerm !== undefined && s.term !== undefined ? s.term > targetTerm : answered503));
  for (const s of o.samples) {
    if (s.at < r.faultAt || s.at >= r.endAt) continue;
    if (s.member === r.target) {
      if (s.active === true && !answered503) lostAt = null;
      else if (s.active !== true && lostAt === null) lostAt = s.at;
      if (s.active === false) answered503 = true;
    }
    if (newlyActive(s)) {
      newActive = s.member;
      activeAt = s.at;
      break;
    }
  }
  // Every member seen active after the fault, from when (the same rule): the first new
  // active node may lose the role again before it serves (an election under load), and
  // the one after it is then the node the VIP answers from.
  const activeSince = new Map<string, number>();
  if (activeAt !== null) {
    for (const s of o.samples) {
      if (s.at >= activeAt && s.at < r.endAt && !activeSince.has(s.member) && newlyActive(s)) activeSince.set(s.member, s.at);
    }
  }
  let servedAt: number | null = null;
  for (const q of o.requests) {
    if (!q.ok || q.via === null || q.at >= r.endAt) continue;
    const since = activeSince.get(q.via);
    if (since !== undefined && q.at >= since && (servedAt === null || q.at < servedAt)) servedAt = q.at;
  }
  let writeAt: number | null = null;
  for (const w of o.writes) {
    if (w.ok && w.sentAt >= r.faultAt && w.at < r.endAt && (writeAt === null || w.at < writeAt)) writeAt = w.at;
  }
  const views = o.cluster.filter((c) => c.at >= r.faultAt && c.at < r.endAt);
  const since = (t: number | null): number | null => (t === null ? null : round1(t - r.faultAt));
  return {
    round: r.round,
    fault: `${kind} ${r.target}${r.transferTo === undefined ? '' : ` → ${r.transferTo}`}`,
    target: r.target,
    newActive,
    lostMs: since(lostAt),
    failoverMs: since(activeAt),
    servedMs: since(servedAt),
    writeMs: since(writeAt),
    healedMs: since(r.healedAt ?? null),
    requests: counts(inWindow(o.requests), slowMs),
    writes: counts(inWindow(o.writes), slowMs),
    twoActive: o.overlaps.filter((x) => x.at >= r.faultAt && x.at < r.endAt).length,
    terms: [...new Set(views.map((v) => v.term))].sort((a, b) => a - b),
    leaders: [...new Set(views.map((v) => v.leaderId).filter((l): l is string => l !== null))].sort(),
    ...(r.error === undefined ? {} : { error: r.error }),
  };
}

export function checkThresholds(t: Thresholds, rounds: readonly RoundReport[], requests: Counts, writes: Counts): ThresholdResult[] {
  const out: ThresholdResult[] = [];
  // A round that never got there counts as missing the bound.
  const worst = (pick: (r: RoundReport) => number | null): number | null => (rounds.some((r) => pick(r) === null) ? null : Math.max(...rounds.map((r) => pick(r)!)));
  const time = (name: string, limit: number | undefined, pick: (r: RoundReport) => number | null): void => {
    if (limit === undefined) return;
    const actual = rounds.length === 0 ? null : worst(pick);
    out.push({ name, limit, actual, ok: actual !== null && actual <= limit });
  };
  time('max-failover', t.maxFailoverMs, (r) => r.failoverMs);
  time('max-served', t.maxServedMs, (r) => r.servedMs);
  time('max-write', t.maxWriteMs, (r) => r.writeMs);
  if (t.maxFailedRequests !== undefined) out.push({ name: 'max-failed-requests', limit: t.maxFailedRequests, actual: requests.failed, ok: requests.failed <= t.maxFailedRequests });
  if (t.maxFailedWrites !== undefined) out.push({ name: 'max-failed-writes', limit: t.maxFailedWrites, actual: writes.failed, ok: writes.failed <= t.maxFailedWrites });
  return out;
}

export interface ReportInput {
  readonly kind: DrillKind;
  readonly seed: number;
  readonly members: readonly string[];
  readonly targets: readonly string[];
  readonly slowMs: number;
  readonly thresholds: Thresholds;
  readonly interrupted: boolean;
}

export function buildReport(input: ReportInput, o: Observations): DrillReport {
  const rounds = o.rounds.map((r) => roundReport(input.kind, r, o, input.slowMs));
  const requests = counts(o.requests, input.slowMs);
  const writes = counts(o.writes, input.slowMs);
  const terms = o.cluster.map((c) => c.term);
  const thresholds = checkThresholds(input.thresholds, rounds, requests, writes);
  const failedRounds = rounds.filter((r) => r.error !== undefined || r.newActive === null).length;
  return {
    kind: input.kind,
    seed: input.seed,
    members: input.members,
    targets: input.targets,
    rounds,
    summary: {
      rounds: rounds.length,
      failedRounds,
      lostMs: stat(rounds.map((r) => r.lostMs)),
      failoverMs: stat(rounds.map((r) => r.failoverMs)),
      servedMs: stat(rounds.map((r) => r.servedMs)),
      writeMs: stat(rounds.map((r) => r.writeMs)),
      requests,
      writes,
      samples: o.samples.length,
      twoActive: o.overlaps.length,
      terms: { first: terms.length === 0 ? null : Math.min(...terms), last: terms.length === 0 ? null : Math.max(...terms) },
      leaders: [...new Set(o.cluster.map((c) => c.leaderId).filter((l): l is string => l !== null))].sort(),
    },
    thresholds,
    interrupted: input.interrupted,
    ok: !input.interrupted && failedRounds === 0 && o.overlaps.length === 0 && thresholds.every((x) => x.ok),
  };
}

const ms = (v: number | null): string => (v === null ? '—' : v >= 10_000 ? `${(v / 1000).toFixed(1)}s` : `${v}ms`);
const countText = (c: Counts): string => `${c.failed}/${c.slow} of ${c.total}`;

/** The report for people: a row per round, then the summary and the thresholds. */
export function renderReport(report: DrillReport): string {
  const rows = report.rounds.map((r) => [
    String(r.round),
    r.fault,
    r.newActive ?? 'none',
    ms(r.lostMs),
    ms(r.failoverMs),
    ms(r.servedMs),
    ms(r.writeMs),
    countText(r.requests),
    countText(r.writes),
    String(r.twoActive),
    r.terms.length === 0 ? '—' : r.terms.length === 1 ? String(r.terms[0]) : `${r.terms[0]}→${r.terms[r.terms.length - 1]}`,
    r.error ?? '',
  ]);
  const s = report.summary;
  const figure = (name: string, v: Stat): string => `${name} p50 ${ms(v.p50)}, max ${ms(v.max)}`;
  let text = table(['round', 'fault', 'new active', 'lost', 'failover', 'served', 'write', 'requests failed/slow', 'writes failed/slow', 'two active', 'terms', 'problem'], rows);
  text += `\n${report.kind} drill, ${s.rounds} round${s.rounds === 1 ? '' : 's'} (seed ${report.seed})${s.failedRounds > 0 ? `, ${s.failedRounds} failed` : ''}${report.interrupted ? ', INTERRUPTED' : ''}\n`;
  text += `  ${figure('failover', s.failoverMs)}; ${figure('served', s.servedMs)}; ${figure('write', s.writeMs)}\n`;
  text += `  proxied requests: ${s.requests.total}, failed ${s.requests.failed}, slow ${s.requests.slow}; writes: ${s.writes.total}, failed ${s.writes.failed}, slow ${s.writes.slow}\n`;
  text += `  /ready samples: ${s.samples}, with two active nodes: ${s.twoActive}; terms ${s.terms.first ?? '—'}…${s.terms.last ?? '—'}; leaders seen: ${s.leaders.join(', ') || 'none'}\n`;
  for (const th of report.thresholds) {
    const unit = th.name.startsWith('max-failed') ? (v: number | null) => String(v ?? '—') : ms;
    text += `  --${th.name} ${unit(th.limit)}: ${th.ok ? 'met' : 'MISSED'} (${th.name.startsWith('max-failed') ? 'actual' : 'worst round'} ${unit(th.actual)})\n`;
  }
  text += report.ok ? 'result: ok\n' : `result: FAILED${s.twoActive > 0 ? ' — two active nodes were seen at once' : ''}\n`;
  return text;
}
