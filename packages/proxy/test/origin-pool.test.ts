// Origin's connection pool is made on first use: a server added to the pool (an admin
// write, on every node) costs no connection pool until a request or a health check needs one.
import test from 'ava';
import { Origin } from '../src/origin-pool.js';
import type { OriginDispatcher, OriginHandler } from '../src/origin-client/types.js';
import { DEFAULT_TIMEOUTS, type OriginClientKind } from '../src/types.js';
import { record, startOrigin } from './helpers.js';

const options = { timeouts: DEFAULT_TIMEOUTS, maxHeaderSize: 16 * 1024, originMaxConnections: 8, originTls: null };

/** GET / through `pool`: the status, or the error the handler was given. */
function get(pool: OriginDispatcher): Promise<number> {
  return new Promise((resolve, reject) => {
    let status = 0;
    const handler: OriginHandler = {
      onConnect: () => undefined,
      onHeaders: (s) => {
        status = s;
        return true;
      },
      onData: () => true,
      onComplete: () => resolve(status),
      onError: reject,
    };
    pool.dispatch({ path: '/', method: 'GET', headers: ['host', 'x'], body: null }, handler);
  });
}

for (const originClient of ['native', 'undici'] as OriginClientKind[]) {
  test(`${originClient}: no pool until first use; then one pool, used for requests; drain closes it`, async (t) => {
    const server = await startOrigin();
    t.teardown(() => server.close());
    const o = new Origin(record(server.port), { ...options, originClient });
    t.is(o.openPool, null, 'adding a server makes no pool');
    const pool = o.pool;
    t.is(o.pool, pool, 'one pool per origin');
    t.is(o.openPool, pool);
    t.is(await get(pool), 200);
    await o.drain();
    t.true(pool.closed);
  });

  test(`${originClient}: an origin drained before any use never makes a pool; asked for one afterwards, it gets a closed one (a dispatch fails as before)`, async (t) => {
    const o = new Origin(record(9), { ...options, originClient });
    await o.drain();
    t.is(o.openPool, null);
    t.true(o.pool.closed);
    await t.throwsAsync(get(o.pool));
  });
}
