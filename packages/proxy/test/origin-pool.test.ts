// Origin's connection pool is made on first use: a server added to the pool (an admin
// write, on every node) costs no undici Pool until a request or a health check needs one.
import test from 'ava';
import { Origin } from '../src/origin-pool.js';
import { DEFAULT_TIMEOUTS } from '../src/types.js';
import { record, startOrigin } from './helpers.js';

const options = { timeouts: DEFAULT_TIMEOUTS, maxHeaderSize: 16 * 1024, originMaxConnections: 8, originTls: null };

test('no pool until first use; then one pool, used for requests; drain closes it', async (t) => {
  const server = await startOrigin();
  t.teardown(() => server.close());
  const o = new Origin(record(server.port), options);
  t.is(o.openPool, null, 'adding a server makes no pool');
  const pool = o.pool;
  t.is(o.pool, pool, 'one pool per origin');
  t.is(o.openPool, pool);
  const res = await pool.request({ path: '/', method: 'GET' });
  await res.body.dump();
  t.is(res.statusCode, 200);
  await o.drain();
  t.true(pool.closed);
});

test('an origin drained before any use never makes a pool; asked for one afterwards, it gets a closed one (a dispatch fails as before)', async (t) => {
  const o = new Origin(record(9), options);
  await o.drain();
  t.is(o.openPool, null);
  t.true(o.pool.closed);
  await t.throwsAsync(o.pool.request({ path: '/', method: 'GET' }));
});
