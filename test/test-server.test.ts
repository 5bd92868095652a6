// `weldr test-server` as a process: the listening line, an ephemeral port, SIGTERM.
import test from 'ava';
import { request } from 'undici';
import { requestCounts, startOrigin } from './helpers/origins.js';
import { eventually, within } from './helpers/wait.js';

test('prints its ephemeral port, serves, and exits 0 on SIGTERM', async (t) => {
  const origin = await startOrigin(t, 'ts-a');
  t.true(origin.port > 0);
  const res = await request(`${origin.url}/`);
  t.is(res.headers['x-server-id'], 'ts-a');
  t.is(await res.body.text(), 'hello from ts-a\n');
  const exit = await origin.proc.stop('SIGTERM');
  t.deepEqual(exit, { code: 0, signal: null });
  t.truthy(origin.proc.lines.find((l) => l.event === 'stopped'));
});

test('SIGINT lets an in-flight request finish before exiting 0', async (t) => {
  const origin = await startOrigin(t, 'ts-b');
  const pending = request(`${origin.url}/delay/300`);
  await eventually('the request to reach the origin', async () => ((await requestCounts(origin)).paths['/delay/300'] ? true : undefined));
  origin.proc.signal('SIGINT');
  const res = await within('the delayed response', pending, 10_000);
  t.is(res.statusCode, 200);
  t.regex(await res.body.text(), /delayed 300 ms/);
  t.is((await origin.proc.exited).code, 0);
});
