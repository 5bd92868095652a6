// The drill report from recorded observations: per-round figures, summary, thresholds.
import test from 'ava';
import { buildReport, renderReport, roundReport, type Observations, type ReadySample, type RequestRecord, type WriteRecord } from '../src/drill/report.js';

const sample = (member: string, at: number, active: boolean | null): ReadySample => ({ member, sentAt: at - 2, at, active });
const req = (sentAt: number, at: number, ok: boolean, via: string | null, error?: string): RequestRecord => ({ sentAt, at, ok, via, ...(error === undefined ? {} : { error }), ...(ok ? { status: 200 } : {}) });
const write = (sentAt: number, at: number, ok: boolean, error?: string): WriteRecord => ({ sentAt, at, ok, endpoint: 'http://n', ...(error === undefined ? {} : { error }) });

/** A kill of n1 at t=1000; n2 active at 1600; served through n2 at 1650; a write acked at 1700. */
function killRound(): Observations {
  return {
    samples: [sample('n1', 990, true), sample('n2', 995, false), sample('n1', 1010, null), sample('n2', 1300, false), sample('n2', 1600, true), sample('n3', 1605, false)],
    requests: [
      req(900, 905, true, 'n1'),
      req(995, 1200, false, null, 'ECONNRESET'), // in flight at the fault: a casualty
      req(1500, 1510, true, 'n2'), // n2's proxy served before it was active: not the failover
      req(1640, 1650, true, 'n2'),
      req(1660, 2400, true, 'n2'), // slow
    ],
    writes: [write(950, 960, true), write(1100, 1150, false, '503 NOT_LEADER'), write(1620, 1700, true), write(1650, 1690, true)],
    cluster: [
      { at: 990, member: 'n2', term: 3, leaderId: 'n1' },
      { at: 1610, member: 'n2', term: 4, leaderId: 'n2' },
    ],
    overlaps: [],
    rounds: [{ round: 1, target: 'n1', faultAt: 1000, healedAt: 4000, endAt: 4000 }],
  };
}

test('a round: lost, failover, served through the new node, first write sent after the fault, casualties counted', (t) => {
  const o = killRound();
  const r = roundReport('kill', o.rounds[0]!, o, 500);
  t.like(r, { round: 1, fault: 'kill n1', target: 'n1', newActive: 'n2', lostMs: 10, failoverMs: 600, servedMs: 650, writeMs: 690, healedMs: 3000, twoActive: 0 });
  t.deepEqual(r.requests, { total: 4, failed: 1, slow: 1, failures: { ECONNRESET: 1 } });
  t.deepEqual(r.writes, { total: 3, failed: 1, slow: 0, failures: { '503 NOT_LEADER': 1 } });
  t.deepEqual(r.terms, [4]);
  t.deepEqual(r.leaders, ['n2']);
});

test('the first new active node loses the role before it serves: a request through the next one counts from when it was seen active', (t) => {
  const base = killRound();
  const o: Observations = {
    ...base,
    samples: [sample('n1', 990, true), sample('n2', 1600, true), sample('n2', 1800, false), sample('n3', 1700, false), sample('n3', 2000, true)],
    requests: [
      req(900, 905, true, 'n1'),
      req(1850, 1900, true, 'n3'), // n3's proxy before it was active: not the failover
      req(2040, 2050, true, 'n3'),
    ],
  };
  const r = roundReport('kill', o.rounds[0]!, o, 500);
  t.like(r, { newActive: 'n2', failoverMs: 600, servedMs: 1050 });
  // The killed target serving again later (restarted, same term) is not the failover.
  const stale: Observations = { ...o, requests: [req(900, 905, true, 'n1'), req(2040, 2050, true, 'n1')] };
  t.is(roundReport('kill', stale.rounds[0]!, stale, 500).servedMs, null);
});

test('step-down re-electing the same node counts once it was seen without the role', (t) => {
  const o: Observations = { ...killRound(), samples: [sample('n1', 1005, true), sample('n1', 1100, false), sample('n1', 1700, true)] };
  const r = roundReport('step-down', o.rounds[0]!, o, 500);
  t.like(r, { newActive: 'n1', lostMs: 100, failoverMs: 700 });
});

test('a sample that got no answer from the still-active target is neither its loss nor a re-election', (t) => {
  const o: Observations = { ...killRound(), samples: [sample('n1', 1005, null), sample('n1', 1100, true), sample('n1', 1300, false), sample('n2', 1600, true)] };
  const r = roundReport('isolate', o.rounds[0]!, o, 500);
  t.like(r, { newActive: 'n2', lostMs: 300, failoverMs: 600 });
});

test('with terms: the target answering 503 then 200 in its own term is the same active period, not a new active node; a newer term is', (t) => {
  const termed = (member: string, at: number, active: boolean, term?: number): ReadySample => ({ ...sample(member, at, active), ...(term === undefined ? {} : { term }) });
  const base = killRound();
  // A loaded machine: the isolated target's lease dipped (503) and came back in term 3.
  const o: Observations = { ...base, samples: [termed('n1', 990, true, 3), termed('n1', 1050, false), termed('n1', 1092, true, 3), termed('n1', 1400, false), termed('n2', 1600, true, 4)] };
  t.like(roundReport('isolate', o.rounds[0]!, o, 500), { newActive: 'n2', failoverMs: 600 });
  // step-down: the same node re-elected in a newer term counts.
  const again: Observations = { ...base, samples: [termed('n1', 990, true, 3), termed('n1', 1100, false), termed('n1', 1700, true, 5)] };
  t.like(roundReport('step-down', again.rounds[0]!, again, 500), { newActive: 'n1', failoverMs: 700 });
});

test('no failover: the round has no new active node and the report fails', (t) => {
  const o: Observations = { ...killRound(), samples: [sample('n1', 1010, null), sample('n2', 1500, false)] };
  const report = buildReport({ kind: 'kill', seed: 1, members: ['n1', 'n2', 'n3'], targets: ['http://x/'], slowMs: 500, thresholds: {}, interrupted: false }, o);
  t.is(report.rounds[0]!.newActive, null);
  t.is(report.summary.failedRounds, 1);
  t.false(report.ok);
});

test('thresholds: met, missed, and a round that never got there counts as missed', (t) => {
  const o = killRound();
  const input = { kind: 'kill' as const, seed: 1, members: ['n1', 'n2'], targets: [], slowMs: 500, interrupted: false };
  const met = buildReport({ ...input, thresholds: { maxFailoverMs: 600, maxServedMs: 1000, maxFailedWrites: 1 } }, o);
  t.true(met.ok);
  t.deepEqual(met.thresholds.map((x) => [x.name, x.actual, x.ok]), [['max-failover', 600, true], ['max-served', 650, true], ['max-failed-writes', 1, true]]);
  const missed = buildReport({ ...input, thresholds: { maxFailoverMs: 599, maxFailedRequests: 0 } }, o);
  t.false(missed.ok);
  t.deepEqual(missed.thresholds.map((x) => x.ok), [false, false]);
  const noWrite = buildReport({ ...input, thresholds: { maxWriteMs: 60_000 } }, { ...o, writes: [] });
  t.deepEqual(noWrite.thresholds[0], { name: 'max-write', limit: 60_000, actual: null, ok: false });
});

test('two active nodes fail the drill whatever the thresholds; interrupted fails it too', (t) => {
  const input = { kind: 'kill' as const, seed: 1, members: ['n1', 'n2'], targets: [], slowMs: 500, thresholds: {}, interrupted: false };
  const overlap = buildReport(input, { ...killRound(), overlaps: [{ at: 1500, members: ['n1', 'n2'], terms: [3, 4], rule: 'older-term-after-newer' }] });
  t.false(overlap.ok);
  t.is(overlap.rounds[0]!.twoActive, 1);
  t.is(overlap.summary.twoActive, 1);
  t.regex(renderReport(overlap), /result: FAILED — two active nodes were seen at once/);
  t.false(buildReport({ ...input, interrupted: true }, killRound()).ok);
});

test('summary and the table', (t) => {
  const o = killRound();
  const second = { round: 2, target: 'n2', faultAt: 5000, healedAt: 6000, endAt: 6000 };
  const o2: Observations = {
    ...o,
    samples: [...o.samples, sample('n2', 5010, null), sample('n3', 5900, true)],
    requests: [...o.requests, req(5905, 5910, true, 'n3')],
    writes: [...o.writes, write(5050, 5950, true)],
    rounds: [o.rounds[0]!, second],
  };
  const report = buildReport({ kind: 'kill', seed: 9, members: ['n1', 'n2', 'n3'], targets: ['http://x/'], slowMs: 500, thresholds: { maxFailoverMs: 1000 }, interrupted: false }, o2);
  t.deepEqual(report.summary.failoverMs, { p50: 600, max: 900 });
  t.deepEqual(report.summary.servedMs, { p50: 650, max: 910 });
  t.deepEqual(report.summary.terms, { first: 3, last: 4 });
  t.deepEqual(report.summary.leaders, ['n1', 'n2']);
  const text = renderReport(report);
  t.regex(text, /^ROUND +FAULT +NEW ACTIVE +LOST +FAILOVER +SERVED +WRITE/);
  t.regex(text, /\n1 +kill n1 +n2 +10ms +600ms +650ms +690ms/);
  t.regex(text, /failover p50 600ms, max 900ms/);
  t.regex(text, /--max-failover 1000ms: met \(worst round 900ms\)/);
  t.regex(text, /result: ok\n$/);
});
