// ServingTracker: who serves in each mode, and what happens without a quorum — on an
// injected clock and a scripted Raft view, so every transition is deterministic.
import test from 'ava';
import { ServingTracker, type ServingInputs, type ServingOptions } from '../src/index.js';

class FakeRaft implements ServingInputs {
  readonly self = 'n1';
  t = 0;
  active = false;
  currentTerm = 1;
  currentLeader: string | null = null;
  barrier: 'ok' | 'fail' | 'hang' = 'ok';
  barriers = 0;
  isActive = (): boolean => this.active;
  term = (): number => this.currentTerm;
  leader = (): string | null => this.currentLeader;
  now = (): number => this.t;
  readBarrier = (): Promise<void> => {
    this.barriers++;
    if (this.barrier === 'ok') return Promise.resolve();
    if (this.barrier === 'fail') return Promise.reject(new Error('no leader'));
    return new Promise(() => undefined);
  };
}

function tracker(options: Partial<ServingOptions>, raft = new FakeRaft()): { s: ServingTracker; raft: FakeRaft; sample: () => Promise<void> } {
  const s = new ServingTracker({ mode: 'active-passive', staleLimitMs: 5000, quorumLoss: 'stop', ...options }, raft);
  // The private sampler, driven by hand instead of its timer.
  const sample = async (): Promise<void> => {
    (s as unknown as { sample(): void }).sample();
    await new Promise((r) => setImmediate(r));
  };
  return { s, raft, sample };
}

test('active-passive (default): only the active node serves; losing the lease stops serving at once', (t) => {
  const { s, raft } = tracker({});
  t.like(s.status(), { serving: false, active: false, stalenessMs: null });
  raft.active = true;
  raft.currentLeader = 'n1';
  t.like(s.status(), { serving: true, active: true, stalenessMs: 0, mode: 'active-passive' });
  raft.active = false; // lease lapsed: no quorum
  raft.currentLeader = null;
  raft.t = 100;
  t.like(s.status(), { serving: false, active: false, reason: 'passive: no leader with a quorum is known' });
});

test('active-passive with keep-serving: the last active node serves its last pool until a newer term shows up', (t) => {
  const { s, raft } = tracker({ quorumLoss: 'keep-serving' });
  raft.active = true;
  raft.currentLeader = 'n1';
  raft.t = 1000;
  s.status();
  raft.active = false;
  raft.currentLeader = null;
  raft.t = 4000;
  t.like(s.status(), { serving: true, active: false, stalenessMs: 3000 });
  raft.currentTerm = 2; // a newer term: the cluster moved on
  t.like(s.status(), { serving: false, active: false });
});

test('keep-serving does not apply to a node that never was active, nor after a planned hand-over', (t) => {
  const a = tracker({ quorumLoss: 'keep-serving' });
  t.like(a.s.status(), { serving: false });
  const b = tracker({ quorumLoss: 'keep-serving' });
  b.raft.active = true;
  b.s.status();
  b.s.abdicate(); // transfer or step-down
  b.raft.active = false;
  t.like(b.s.status(), { serving: false });
});

test('all mode: serving once a ReadIndex round confirmed the pool, staleness is the age of that round, stops after the stale limit', async (t) => {
  const { s, raft, sample } = tracker({ mode: 'all', staleLimitMs: 2000 });
  t.like(s.status(), { serving: false, stalenessMs: null }, 'not before the first confirmation');
  raft.t = 10;
  await sample();
  raft.t = 510;
  t.like(s.status(), { serving: true, active: false, stalenessMs: 500, staleLimitMs: 2000, reason: 'pool current' });
  raft.barrier = 'fail'; // quorum lost
  raft.t = 1500;
  await sample();
  t.like(s.status(), { serving: true, stalenessMs: 1490 });
  raft.t = 2011;
  t.like(s.status(), { serving: false, stalenessMs: 2001 });
  raft.barrier = 'ok'; // healed
  await sample();
  t.like(s.status(), { serving: true, stalenessMs: 0 });
});

test('all mode with keep-serving: a node cut off keeps serving and reports how stale its pool may be', async (t) => {
  const { s, raft, sample } = tracker({ mode: 'all', staleLimitMs: 2000, quorumLoss: 'keep-serving' });
  await sample();
  raft.barrier = 'hang';
  raft.t = 60_000;
  await sample();
  t.like(s.status(), { serving: true, stalenessMs: 60_000 });
});

test('all mode: at most two confirmations in flight when answers are lost', async (t) => {
  const { raft, sample } = tracker({ mode: 'all' });
  raft.barrier = 'hang';
  for (let i = 0; i < 5; i++) await sample();
  t.is(raft.barriers, 2);
});

test('after stop() nothing serves, in either mode', (t) => {
  for (const mode of ['active-passive', 'all'] as const) {
    const { s, raft } = tracker({ mode, quorumLoss: 'keep-serving' });
    raft.active = true;
    t.like(s.status(), { serving: true });
    s.stop();
    t.like(s.status(), { serving: false, reason: 'shutting down' });
  }
});

test('a stale limit that is not a positive integer is refused', (t) => {
  t.throws(() => tracker({ staleLimitMs: 0 }), { instanceOf: RangeError });
});
