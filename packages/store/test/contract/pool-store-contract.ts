// The behaviour every PoolStore must have, as one ava suite parameterised by a factory
// (the way abstract-level's suite tests every Level implementation). Run it against each
// implementation from a *.test.ts file; a future Raft store should pass it unchanged.
import test, { type ExecutionContext } from 'ava';
import { DEFAULT_SETTINGS, StoreError, type PoolSnapshot, type PoolStore } from '../../src/index.js';
import type { ListenerErrorHandler } from '../../src/index.js';

export interface ContractOptions {
  readonly onListenerError?: ListenerErrorHandler;
}

/** Creates a fresh, empty, open store and registers its cleanup with t.teardown. */
export type StoreFactory = (t: ExecutionContext, options: ContractOptions) => Promise<PoolStore>;

export function poolStoreContract(name: string, factory: StoreFactory): void {
  const open = (t: ExecutionContext, options: ContractOptions = {}): Promise<PoolStore> => factory(t, options);

  test(`${name}: starts empty with the default settings`, async (t) => {
    const store = await open(t);
    const snap = store.snapshot();
    t.is(snap.index, 0);
    t.deepEqual(snap.servers, []);
    t.deepEqual(snap.settings, DEFAULT_SETTINGS);
    t.is(await store.linearizableSnapshot(), snap);
  });

  test(`${name}: propose applies at the next index and resolves with the outcome`, async (t) => {
    const store = await open(t);
    const r1 = await store.propose({ type: 'AddServer', ip: '127.0.0.1', port: 9001 });
    t.like(r1, { index: 1, duplicate: false, outcome: { ok: true, status: 'created', server: { id: '127.0.0.1:9001' } } });
    const r2 = await store.propose({ type: 'AddServer', ip: '127.0.0.1', port: 9001 });
    t.like(r2, { index: 2, outcome: { ok: true, status: 'unchanged' } });
    const r3 = await store.propose({ type: 'RemoveServer', ip: '127.0.0.1', port: 9002 });
    t.like(r3, { index: 3, outcome: { ok: false, code: 'NOT_FOUND' } });
    const snap = await store.linearizableSnapshot();
    t.is(snap.index, 3);
    t.deepEqual(snap.servers.map((s) => s.id), ['127.0.0.1:9001']);
    t.is(store.snapshot(), snap);
  });

  test(`${name}: propose canonicalises its input`, async (t) => {
    const store = await open(t);
    // Callers may hand over raw JSON (port as text, bracketed IPv6).
    const raw = JSON.parse('{"type":"AddServer","ip":"[0:0:0::1]","port":"8080"}') as never;
    const r = await store.propose(raw);
    t.like(r.outcome, { ok: true, server: { id: '[::1]:8080', ip: '::1', port: 8080 } });
  });

  test(`${name}: invalid commands are rejected before anything is applied`, async (t) => {
    const store = await open(t);
    const err = await t.throwsAsync(store.propose({ type: 'AddServer', ip: 'db.internal', port: 80 }), { instanceOf: StoreError });
    t.is(err?.code, 'INVALID_COMMAND');
    t.is(err?.field, 'ip');
    const bad = await t.throwsAsync(store.propose({ type: 'RemoveServer', ip: '1.2.3.4', port: 80 }, { requestId: 'has space' }), { instanceOf: StoreError });
    t.is(bad?.field, 'requestId');
    t.is(store.snapshot().index, 0);
  });

  test(`${name}: a request id makes a retried write apply once`, async (t) => {
    const store = await open(t);
    const first = await store.propose({ type: 'AddServer', ip: '10.1.1.1', port: 80, weight: 2 }, { requestId: 'op-1' });
    await store.propose({ type: 'UpdateServer', ip: '10.1.1.1', port: 80, weight: 3 });
    const retry = await store.propose({ type: 'AddServer', ip: '10.1.1.1', port: 80, weight: 2 }, { requestId: 'op-1' });
    t.deepEqual(retry, { ...first, duplicate: true });
    t.is(store.snapshot().servers[0]?.weight, 3, 'the retry did not re-apply weight 2');
    const conflict = await store.propose({ type: 'RemoveServer', ip: '10.1.1.1', port: 80 }, { requestId: 'op-1' });
    t.like(conflict.outcome, { ok: false, code: 'CONFLICT' });
  });

  test(`${name}: a Batch is atomic`, async (t) => {
    const store = await open(t);
    const failed = await store.propose({
      type: 'Batch',
      commands: [
        { type: 'AddServer', ip: '10.0.0.1', port: 1 },
        { type: 'RemoveServer', ip: '10.0.0.9', port: 9 },
      ],
    });
    t.like(failed.outcome, { ok: false, code: 'NOT_FOUND', field: 'commands[1]' });
    t.is(store.snapshot().servers.length, 0);
    const ok = await store.propose({
      type: 'Batch',
      commands: [
        { type: 'AddServer', ip: '10.0.0.1', port: 1 },
        { type: 'UpdateSettings', balancer: 'least-connections' },
      ],
    });
    t.like(ok.outcome, { ok: true, status: 'batch' });
    t.is(store.snapshot().settings.balancer, 'least-connections');
  });

  test(`${name}: subscribers see every applied snapshot in order, until they unsubscribe`, async (t) => {
    const store = await open(t);
    const seen: PoolSnapshot[] = [];
    const unsubscribe = store.subscribe((s) => seen.push(s));
    await store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 });
    await store.propose({ type: 'RemoveServer', ip: '10.0.0.1', port: 2 }); // a failure still advances the index
    unsubscribe();
    await store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 3 });
    t.deepEqual(seen.map((s) => s.index), [1, 2]);
    t.true(seen.every((s) => Object.isFrozen(s) && Object.isFrozen(s.servers)));
  });

  test(`${name}: a throwing subscriber neither fails the write nor starves other subscribers`, async (t) => {
    const errors: unknown[] = [];
    const store = await open(t, { onListenerError: (err) => errors.push(err) });
    const seen: number[] = [];
    store.subscribe(() => {
      throw new Error('listener bug');
    });
    store.subscribe((s) => seen.push(s.index));
    const r = await store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 });
    t.true(r.outcome.ok);
    t.deepEqual(seen, [1]);
    t.is((errors[0] as Error).message, 'listener bug');
  });

  test(`${name}: concurrent proposals each get their own consecutive index`, async (t) => {
    const store = await open(t);
    const results = await Promise.all(
      Array.from({ length: 25 }, (_, i) => store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1000 + i })),
    );
    t.deepEqual(
      results.map((r) => r.index).sort((a, b) => a - b),
      Array.from({ length: 25 }, (_, i) => i + 1),
    );
    t.is(store.snapshot().servers.length, 25);
    // Each result's index orders its server by creation.
    const byIndex = [...results].sort((a, b) => a.index - b.index).map((r) => (r.outcome.ok && 'server' in r.outcome ? r.outcome.server?.id : ''));
    t.deepEqual(store.snapshot().servers.map((s) => s.id), byIndex);
  });

  test(`${name}: an already aborted signal rejects without applying`, async (t) => {
    const store = await open(t);
    const controller = new AbortController();
    controller.abort(new Error('caller gave up'));
    await t.throwsAsync(store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 }, { signal: controller.signal }), { message: 'caller gave up' });
    await t.throwsAsync(store.linearizableSnapshot({ signal: controller.signal }), { message: 'caller gave up' });
    t.is(store.snapshot().index, 0);
  });

  test(`${name}: after close, writes and linearizable reads fail with STOPPED`, async (t) => {
    const store = await open(t);
    await store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 });
    await store.close();
    await store.close(); // idempotent
    const err = await t.throwsAsync(store.propose({ type: 'AddServer', ip: '10.0.0.1', port: 2 }), { instanceOf: StoreError });
    t.is(err?.code, 'STOPPED');
    t.is((await t.throwsAsync(store.linearizableSnapshot(), { instanceOf: StoreError }))?.code, 'STOPPED');
    t.is(store.snapshot().index, 1, 'the last snapshot stays readable');
  });
}
