import test from 'ava';
import { MemberWatch, type MemberObservation } from '../src/member-watch.js';
import type { PeerStatus } from '../src/transport.js';

const up = (lastContactMs: number | null = 10): PeerStatus => ({ reachable: true, lastContactMs });
const obs = (id: string, match: number, state: MemberObservation['state'], peer: PeerStatus = up()): MemberObservation => ({ id, match, state, peer });

test('a member that keeps up is current; one behind but advancing is catching up; neither is news', (t) => {
  const w = new MemberWatch({ silentMs: 1000, stallMs: 5000 });
  t.deepEqual(w.observe(0, 10, [obs('a', 10, 'replicate'), obs('b', 3, 'replicate')]), []);
  t.is(w.judgement('a')?.condition, 'current');
  t.is(w.judgement('b')?.condition, 'catching-up');
  t.deepEqual(w.observe(4000, 20, [obs('a', 20, 'replicate'), obs('b', 12, 'replicate')]), []);
  t.deepEqual(w.observe(8000, 20, [obs('a', 20, 'replicate'), obs('b', 19, 'replicate')]), [], 'b moved within stallMs');
  t.deepEqual(w.observe(9000, 20, [obs('a', 20, 'replicate'), obs('b', 20, 'replicate')]), [{ id: 'b', from: 'catching-up', to: 'current' }]);
});

test('a member answering but whose match does not move is stalled, with the reason for its replication state', (t) => {
  const w = new MemberWatch({ silentMs: 1000, stallMs: 5000 });
  w.observe(0, 42, [obs('wiped', 0, 'probe')]);
  t.deepEqual(w.observe(4999, 42, [obs('wiped', 0, 'probe')]), []);
  const [change] = w.observe(5000, 42, [obs('wiped', 0, 'probe')]);
  t.like(change, { id: 'wiped', from: 'catching-up', to: 'stalled' });
  t.regex(change!.reason!, /42 entries behind, no progress for 5\.0 s: the leader is still looking for where their logs agree/);
  t.deepEqual(w.observe(6000, 42, [obs('wiped', 0, 'probe')]), [], 'reported once');
  t.regex(w.judgement('wiped')!.reason!, /6\.0 s/, 'the judgement itself stays current');
  w.observe(7000, 42, [obs('wiped', 0, 'probe'), obs('restored', 1, 'snapshot')]);
  const [snap] = w.observe(12_000, 42, [obs('wiped', 0, 'probe'), obs('restored', 1, 'snapshot')]);
  t.like(snap, { id: 'restored', to: 'stalled' });
  t.regex(snap!.reason!, /a snapshot is being sent to it/);
});

test('no connection is unreachable, a connection without answers is silent, at once', (t) => {
  const w = new MemberWatch({ silentMs: 1000, stallMs: 5000 });
  const [gone] = w.observe(0, 5, [obs('k', 5, 'replicate', { reachable: false, lastContactMs: 300, lastError: 'ECONNREFUSED' })]);
  t.deepEqual(gone, { id: 'k', from: undefined, to: 'unreachable', reason: 'the leader has no connection to it (ECONNREFUSED)' });
  const [paused] = w.observe(100, 5, [obs('k', 5, 'replicate', up(2500))]);
  t.deepEqual(paused, { id: 'k', from: 'unreachable', to: 'silent', reason: 'connected, but no answer for 2.5 s' });
  t.deepEqual(w.observe(200, 5, [obs('k', 5, 'replicate', up(5))]), [{ id: 'k', from: 'silent', to: 'current' }]);
});

test('members that left are forgotten, and reset() forgets everything', (t) => {
  const w = new MemberWatch({ silentMs: 1000, stallMs: 5000 });
  w.observe(0, 5, [obs('a', 5, 'replicate'), obs('b', 5, 'replicate')]);
  w.observe(1, 5, [obs('a', 5, 'replicate')]);
  t.is(w.judgement('b'), undefined);
  w.reset();
  t.is(w.judgement('a'), undefined);
});
