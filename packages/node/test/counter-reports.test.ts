// A worker's figures as reports of what changed (workers/counter-reports.ts): the node
// rebuilds exactly the worker's full figures, whatever was lost or repeated on the way.
import test from 'ava';
import { zeroCounters, type DataPlaneCounters, type OriginCounters } from '@weldr/proxy';
import { ReportReader, ReportWriter } from '../src/workers/counter-reports.js';

function origin(id: string, success: number, over: Partial<OriginCounters> = {}): OriginCounters {
  return {
    id,
    success,
    failed: 0,
    active: 0,
    byClass: [0, 0, success, 0, 0, 0],
    failures: { refused: 0, reset: 0, timeout: 0, bad_response: 0 },
    duration: { buckets: new Array<number>(16).fill(0), sum: success / 1000, count: success },
    ejectedUntil: 0,
    connected: 1,
    queued: 0,
    ...over,
  };
}

function figures(origins: OriginCounters[], clientSuccess = 0): DataPlaneCounters {
  return { counters: { ...zeroCounters(), clientSuccess }, origins, failOpen: false };
}

const byId = (d: DataPlaneCounters) => Object.fromEntries(d.origins.map((o) => [o.id, o]));

test('the first report is full; the next ones carry only the origins that changed, and those that left', (t) => {
  const w = new ReportWriter();
  const r = new ReportReader();
  const first = w.report(figures([origin('a', 1), origin('b', 1), origin('c', 1)]), r.base || undefined);
  t.is(first.base, null);
  t.is(first.origins.length, 3);
  t.deepEqual(byId(r.apply(first)!), byId(figures([origin('a', 1), origin('b', 1), origin('c', 1)])));

  // b moved, c left the pool, d is new; a did not change.
  const now = figures([origin('a', 1), origin('b', 5), origin('d', 2)], 9);
  const second = w.report(now, r.base);
  t.is(second.base, first.report);
  t.deepEqual(
    second.origins.map((o) => o.id),
    ['b', 'd'],
  );
  t.deepEqual(second.gone, ['c']);
  const rebuilt = r.apply(second)!;
  t.deepEqual(byId(rebuilt), byId(now));
  t.is(rebuilt.counters.clientSuccess, 9, 'process-wide counters come whole in every report');

  // Nothing moved: an empty report, the same figures.
  const third = w.report(now, r.base);
  t.deepEqual(third.origins, []);
  t.deepEqual(byId(r.apply(third)!), byId(now));
});

test('any field that moves puts the origin in the report (ejection, connections, a failure reason)', (t) => {
  const w = new ReportWriter();
  const r = new ReportReader();
  r.apply(w.report(figures([origin('a', 1)]), undefined));
  for (const over of [{ ejectedUntil: 5 }, { connected: 3 }, { queued: 1 }, { active: 2 }, { failures: { refused: 0, reset: 1, timeout: 0, bad_response: 0 } }] as Partial<OriginCounters>[]) {
    const now = figures([origin('a', 1, over)]);
    const report = w.report(now, r.base);
    t.is(report.origins.length, 1, JSON.stringify(over));
    t.deepEqual(byId(r.apply(report)!), byId(now));
  }
});

test('an answer the node gave up on: the worker sends everything next, and the node rebuilds the right figures', (t) => {
  const w = new ReportWriter();
  const r = new ReportReader();
  r.apply(w.report(figures([origin('a', 1), origin('b', 1)]), undefined));
  // This report never reaches the reader (timed out, dropped).
  w.report(figures([origin('a', 2), origin('b', 1)]), r.base);
  // The next question still names the old report: the worker answers in full.
  const now = figures([origin('a', 3), origin('b', 1)]);
  const full = w.report(now, r.base);
  t.is(full.base, null);
  t.deepEqual(byId(r.apply(full)!), byId(now));
});

test('a report that adds to one the reader does not hold is refused (null), and the next question asks for everything', (t) => {
  const w = new ReportWriter();
  const r = new ReportReader();
  const first = w.report(figures([origin('a', 1)]), undefined);
  const second = w.report(figures([origin('a', 2)]), first.report);
  t.is(second.base, first.report);
  t.is(r.apply(second), null, 'the reader never took in the first');
  t.is(r.base, 0);
  const now = figures([origin('a', 4)]);
  const full = w.report(now, r.base || undefined);
  t.is(full.base, null);
  t.deepEqual(byId(r.apply(full)!), byId(now));
});

test('a new worker process (a new writer) always starts with a full report, whatever base the node names', (t) => {
  const r = new ReportReader();
  r.apply(new ReportWriter().report(figures([origin('a', 7)]), undefined));
  const fresh = new ReportWriter();
  const now = figures([origin('b', 1)]);
  const report = fresh.report(now, r.base);
  t.is(report.base, null);
  t.deepEqual(byId(r.apply(report)!), byId(now), 'the old worker\'s origins are not kept');
});
