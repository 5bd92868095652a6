import test from 'ava';
import { MemoryPoolStore as FromMain, deserializeState, serializeState } from '../src/index.js';
import { MemoryPoolStore, buildSnapshot } from '../src/testing/index.js';
import { poolStoreContract } from './contract/pool-store-contract.js';

poolStoreContract('MemoryPoolStore', async (t, options) => {
  const store = new MemoryPoolStore(options);
  t.teardown(() => store.close());
  return store;
});

test('MemoryPoolStore is exported from both entry points', (t) => {
  t.is(FromMain, MemoryPoolStore);
});

test('MemoryPoolStore can start from a restored state', async (t) => {
  const a = new MemoryPoolStore();
  await a.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 }, { requestId: 'x' });
  const b = new MemoryPoolStore({ initial: deserializeState(serializeState(a.state)) });
  t.deepEqual(b.snapshot(), a.snapshot());
  t.true((await b.propose({ type: 'AddServer', ip: '10.0.0.1', port: 1 }, { requestId: 'x' })).duplicate);
});

test('buildSnapshot applies fixture commands and refuses failing ones', (t) => {
  const snap = buildSnapshot([
    { type: 'AddServer', ip: '127.0.0.1', port: 9001, weight: 3 },
    { type: 'UpdateSettings', balancer: 'weighted-round-robin' },
  ]);
  t.like(snap, { index: 2, settings: { balancer: 'weighted-round-robin' }, servers: [{ id: '127.0.0.1:9001', weight: 3 }] });
  t.throws(() => buildSnapshot([{ type: 'RemoveServer', ip: '127.0.0.1', port: 1 }]), { message: /fixture command 0 failed/ });
});
