// How the drill judges "two active nodes at once" from /ready samples (drill/overlaps.ts).
import test from 'ava';
import { OverlapDetector } from '../src/drill/overlaps.js';
import type { ReadySample } from '../src/drill/report.js';

const ready = (member: string, sentAt: number, at: number, term?: number): ReadySample => ({ member, sentAt, at, active: true, ...(term === undefined ? {} : { term }) });

test('answers that only overlap in transit are not two active nodes: the old term answered before the new one arrived', (t) => {
  const d = new OverlapDetector();
  // n1's request took 250 ms on a loaded machine; n2's answer (newer term) came in meanwhile.
  t.deepEqual(d.add(ready('n1', 100, 350, 3)), []);
  t.deepEqual(d.add(ready('n2', 300, 340, 4)), []);
  // Completed in the other order: the same verdict.
  const e = new OverlapDetector();
  t.deepEqual(e.add(ready('n2', 300, 340, 4)), []);
  t.deepEqual(e.add(ready('n1', 100, 350, 3)), []);
});

test('the old term still active after the new term was seen active is a violation, whichever answer is recorded first', (t) => {
  const d = new OverlapDetector();
  t.deepEqual(d.add(ready('n2', 300, 340, 4)), []);
  t.deepEqual(d.add(ready('n1', 345, 360, 3)), [{ at: 360, members: ['n1', 'n2'], terms: [3, 4], rule: 'older-term-after-newer' }]);
  const e = new OverlapDetector();
  t.deepEqual(e.add(ready('n1', 345, 360, 3)), []);
  t.deepEqual(e.add(ready('n2', 300, 340, 4)), [{ at: 340, members: ['n1', 'n2'], terms: [3, 4], rule: 'older-term-after-newer' }]);
});

test('two members active in one term is always a violation; one member across terms never is', (t) => {
  const d = new OverlapDetector();
  t.deepEqual(d.add(ready('n1', 0, 10, 5)), []);
  t.deepEqual(d.add(ready('n2', 5000, 5010, 5)), [{ at: 5010, members: ['n1', 'n2'], terms: [5, 5], rule: 'same-term' }]);
  const e = new OverlapDetector();
  t.deepEqual(e.add(ready('n1', 0, 10, 5)), []);
  t.deepEqual(e.add(ready('n1', 20, 30, 7)), []);
  t.deepEqual(e.add(ready('n1', 40, 50, 6)), [], 'a member is never in conflict with itself');
  t.deepEqual(e.add({ member: 'n2', sentAt: 60, at: 70, active: false }), [], '503 answers are not active');
});

test('answers without a term fall back to overlapping request intervals', (t) => {
  const d = new OverlapDetector();
  t.deepEqual(d.add(ready('n1', 100, 200)), []);
  t.deepEqual(d.add(ready('n2', 210, 220)), [], 'disjoint intervals');
  t.deepEqual(d.add(ready('n1', 215, 230)), [{ at: 230, members: ['n1', 'n2'], rule: 'intervals' }]);
});
