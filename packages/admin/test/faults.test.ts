// Fault-injection routes (failover drills) and the "can serve now" probe.
import test from 'ava';
import type { FaultInjector, ServingView } from '../src/index.js';
import { startAdmin } from './harness.js';

class FakeFaults implements FaultInjector {
  enabled = true;
  leader = true;
  isolatedFor: number | null = null;
  stepDowns = 0;
  status() {
    return { enabled: this.enabled, isolated: this.isolatedFor !== null, ...(this.isolatedFor === null ? {} : { remainingMs: this.isolatedFor }) };
  }
  async stepDown() {
    if (!this.enabled) return { ok: false as const, reason: 'disabled' as const, message: 'off' };
    if (!this.leader) return { ok: false as const, reason: 'notLeader' as const, message: 'this node is not the leader; n2 is', leaderId: 'n2' };
    this.stepDowns++;
    return { ok: true as const, term: 7 };
  }
  isolate(ms: number) {
    this.isolatedFor = ms;
    return { ok: true as const };
  }
  heal() {
    const healed = this.isolatedFor !== null;
    this.isolatedFor = null;
    return { ok: true as const, healed };
  }
}

test('without a fault injector (or with it off) every fault route is 403 FAULT_INJECTION_DISABLED and nothing happens', async (t) => {
  const h = await startAdmin(t);
  t.deepEqual((await h.call('GET', '/faults')).json, { enabled: false, isolated: false });
  for (const [path, body] of [['/faults/step-down', undefined], ['/faults/isolate', { durationMs: 1000 }], ['/faults/heal', undefined]] as const) {
    const r = await h.call('POST', path, body === undefined ? {} : { body });
    t.is(r.status, 403, path);
    t.like(r.json, { error: { code: 'FAULT_INJECTION_DISABLED' } });
  }
  const faults = new FakeFaults();
  faults.enabled = false;
  const off = await startAdmin(t, { faults });
  t.is((await off.call('POST', '/faults/step-down')).status, 403);
  t.is(faults.stepDowns, 0);
  t.true(off.logs.some((l) => l.level === 'warn' && (l.obj as { event?: string }).event === 'fault_request'), 'refused requests are logged too');
});

test('step-down, isolate and heal act on this node and are logged', async (t) => {
  const faults = new FakeFaults();
  const h = await startAdmin(t, { faults });
  const down = await h.call('POST', '/faults/step-down');
  t.is(down.status, 200);
  t.deepEqual(down.json, { steppedDown: true, term: 7 });
  const iso = await h.call('POST', '/faults/isolate', { body: { durationMs: 2500 } });
  t.is(iso.status, 200);
  t.deepEqual(iso.json, { enabled: true, isolated: true, remainingMs: 2500 });
  t.deepEqual((await h.call('GET', '/faults')).json, { enabled: true, isolated: true, remainingMs: 2500 });
  t.deepEqual((await h.call('POST', '/faults/heal')).json, { healed: true });
  t.deepEqual((await h.call('POST', '/faults/heal')).json, { healed: false });
  const logged = h.logs.filter((l) => (l.obj as { event?: string }).event === 'fault_request').map((l) => (l.obj as { fault: string }).fault);
  t.deepEqual(logged, ['step-down', 'isolate', 'heal', 'heal']);
});

test('step-down on a follower is 409 with the leader; bad isolate bodies are 400 and isolate nothing', async (t) => {
  const faults = new FakeFaults();
  faults.leader = false;
  const h = await startAdmin(t, { faults });
  const r = await h.call('POST', '/faults/step-down');
  t.is(r.status, 409);
  t.like(r.json, { error: { code: 'CONFLICT', leaderId: 'n2' } });
  for (const body of [{}, { durationMs: 0 }, { durationMs: 1.5 }, { durationMs: '5s' }, { durationMs: 600_001 }, { durationMs: 5, extra: 1 }]) {
    const bad = await h.call('POST', '/faults/isolate', { body });
    t.is(bad.status, 400, JSON.stringify(body));
  }
  t.is((await h.call('POST', '/faults/step-down', { body: { force: true } })).status, 400);
  t.is(faults.isolatedFor, null);
});

test('with an admin token, fault routes need it (GET /faults stays open)', async (t) => {
  const faults = new FakeFaults();
  const h = await startAdmin(t, { faults, auth: { token: 'a-long-enough-admin-token' } });
  t.is((await h.call('GET', '/faults')).status, 200);
  t.is((await h.call('POST', '/faults/step-down')).status, 401);
  t.is((await h.call('POST', '/faults/isolate', { body: { durationMs: 100 }, headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 403);
  t.is(faults.stepDowns, 0);
  t.is(faults.isolatedFor, null);
  t.is((await h.call('POST', '/faults/step-down', { headers: { authorization: 'Bearer a-long-enough-admin-token' } })).status, 200);
});

test('GET /serving: 200 while serving, 503 otherwise, the status body either way; without a policy it follows the active role', async (t) => {
  let view: ServingView = { mode: 'all', serving: true, active: false, reason: 'pool current', stalenessMs: 420, staleLimitMs: 5000, quorumLoss: 'stop' };
  const h = await startAdmin(t, { cluster: { info: () => { throw new Error('unused'); }, isActive: () => false, serving: () => view } });
  const ok = await h.call('GET', '/serving');
  t.is(ok.status, 200);
  t.deepEqual(ok.json, view);
  view = { ...view, serving: false, reason: 'no leader confirmed the pool within the stale limit (--serve-stale-limit)', stalenessMs: 6000 };
  const no = await h.call('GET', '/serving');
  t.is(no.status, 503);
  t.deepEqual(no.json, view);
  t.is((await h.call('GET', '/ready')).status, 503, '/ready still means the active role');

  const single = await startAdmin(t);
  t.like((await single.call('GET', '/serving')).json, { serving: true, active: true });
  single.cluster.active = false;
  t.is((await single.call('GET', '/serving')).status, 503);
});
