// `weldr test-server` as a process: the listening line, an ephemeral port, SIGTERM.
import test from 'ava';
import { request } from 'undici';
import { requestCounts, startOrigin } from './helpers/origins.js';
import { runWeldr } from './helpers/process.js';
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

test('a port already in use: one line that says so, exit 1, no stack (weldr dev-cluster shows that line when an origin cannot start)', async (t) => {
  const first = await startOrigin(t, 'ts-c');
  const second = await runWeldr(t, ['test-server', '--port', String(first.port), '--host', '127.0.0.1']);
  t.is(second.code, 1);
  t.is(second.stderr.trim(), `weldr test-server: cannot listen for HTTP on 127.0.0.1:${first.port}: address already in use`);
  t.notRegex(second.stderr, /^\s+at /m);
});
