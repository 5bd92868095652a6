// The e2e suite's judge of "two active nodes at once" from /ready samples
// (helpers/active-watch.ts, which runs `weldr drill`'s OverlapDetector), on hand-made samples: a planned transfer whose answers
// overlapped in transit is not an overlap; one term with two active nodes, or an old
// term's 200 asked for after a newer term's 200 arrived, is.
import test from 'ava';
import { readyOverlaps, type ReadySample } from './helpers/active-watch.js';

const s = (id: string, sent: number, received: number, term?: number, active = true): ReadySample => ({ id, sent, received, active, ...(term === undefined ? {} : { term }) });

test('a transfer: the old leader answered 200 (term 4) early, the new one (term 5) in an interval that intersects it: no overlap', (t) => {
  const samples = [s('n1', 0, 45, 4), s('n2', 30, 40, 5), s('n1', 50, 55, undefined, false), s('n2', 50, 56, 5)];
  t.deepEqual(readyOverlaps(samples, 50).overlaps, []);
});

test('two nodes active in one term: an overlap, whatever the timing', (t) => {
  const { overlaps } = readyOverlaps([s('n1', 0, 2, 7), s('n2', 500, 502, 7)], 50);
  t.is(overlaps.length, 1);
  t.deepEqual(overlaps[0]!.members, ['n1', 'n2']);
  t.is(overlaps[0]!.rule, 'same-term');
});

test('an older term still active after a newer term was seen active elsewhere: an overlap', (t) => {
  // n2's term-6 answer arrived at 12; n1's term-5 request left at 20 and found it active.
  const { overlaps } = readyOverlaps([s('n2', 10, 12, 6), s('n1', 20, 22, 5)], 50);
  t.is(overlaps.length, 1);
  t.deepEqual(overlaps[0]!.members, ['n1', 'n2']);
  t.deepEqual(overlaps[0]!.terms, [5, 6]);
  t.is(overlaps[0]!.rule, 'older-term-after-newer');
});

test('answers without a term: intersecting intervals of fast answers are an overlap; slow ones are left out', (t) => {
  t.is(readyOverlaps([s('n1', 0, 10), s('n2', 5, 12)], 50).overlaps.length, 1);
  const slow = readyOverlaps([s('n1', 0, 100), s('n2', 5, 12)], 50);
  t.is(slow.overlaps.length, 0);
  t.is(slow.slow, 1);
  t.is(readyOverlaps([s('n1', 0, 10), s('n2', 11, 12)], 50).overlaps.length, 0, 'one after the other');
});
