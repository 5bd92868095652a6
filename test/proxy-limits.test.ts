// Issue 9 item 5 against the real binary: pipelined floods are bounded and cleaned up
// when the client goes away, and connection floods under a low open-file limit are
// refused cleanly while the node keeps serving.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import test from 'ava';
import { Agent, request } from 'undici';
import { addOrigin } from './helpers/admin.js';
import { nodeWithOrigins } from './helpers/fixtures.js';
import { startNode, type WeldrNode } from './helpers/node.js';
import { startOrigin } from './helpers/origins.js';
import { fetchVia, waitForRouting } from './helpers/routing.js';
import { eventually } from './helpers/wait.js';

/** Open file descriptors of a process. */
const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** One sample of a metric from the node's /metrics (labels as written, e.g. `{limit="x"}`). */
async function metric(node: WeldrNode, name: string): Promise<number> {
  const text = await (await request(`${node.adminUrl}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`) && l.split(' ')[0] === name);
  return line === undefined ? NaN : Number(line.split(' ').at(-1));
}

const limitRefusals = (node: WeldrNode, limit: string): Promise<number> => metric(node, `weldr_proxy_limit_refusals_total{limit="${limit}",nodeId="n1"}`);

function hasPrlimit(): boolean {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Opens `n` connections from `localAddress` at once; resolves once each is either
 * connected and still open after `settleMs`, or closed by the server.
 */
async function flood(port: number, n: number, localAddress: string, settleMs = 1_000): Promise<{ open: Socket[]; refused: number }> {
  const results = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket | null>((resolve) => {
          const s = connect({ port, host: '127.0.0.1', localAddress });
          let settled = false;
          const settle = (v: Socket | null): void => {
            if (settled) return;
            settled = true;
            resolve(v);
          };
          // settleMs 0: every socket is returned, open or not, for the caller to watch.
          s.on('error', () => settle(settleMs === 0 ? s : null));
          s.on('close', () => settle(settleMs === 0 ? s : null));
          s.on('connect', () => (settleMs === 0 ? settle(s) : setTimeout(() => settle(s.destroyed ? null : s), settleMs)));
        }),
    ),
  );
  const open = results.filter((s): s is Socket => s !== null);
  return { open, refused: n - open.filter((s) => !s.destroyed).length };
}

test.serial('100,000 pipelined GETs of 1 MiB on one connection, then a disconnect: no request stays active, no extra descriptors', async (t) => {
  const { node } = await nodeWithOrigins(t, ['pipe-a'], { store: 'memory' });
  // Warm up: the origin pool has its keep-alive connection before the baseline.
  t.is((await fetchVia(node, '/bytes/1048576')).status, 200);
  const baseline = fds(node.proc.pid);
  const socket = connect(node.proxyPort, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('connect', r));
  socket.pause(); // read nothing: the responses back up
  const one = Buffer.from('GET /bytes/1048576 HTTP/1.1\r\nHost: e2e\r\n\r\n');
  socket.write(Buffer.concat(new Array<Buffer>(100_000).fill(one)));
  await eventually('the proxy to hold the pipelined requests', async () => ((await metric(node, 'weldr_proxy_active_requests{nodeId="n1"}')) > 0 ? true : undefined));
  // Bounded while the client is there: one origin request at a time, at most the depth held.
  const active = await metric(node, 'weldr_proxy_active_requests{nodeId="n1"}');
  t.true(active <= 32, `active requests while held: ${active}`);
  t.true(fds(node.proc.pid) <= baseline + 4, `descriptors while held: ${fds(node.proc.pid)} (baseline ${baseline})`);
  socket.destroy();
  await eventually('no active request', async () => ((await metric(node, 'weldr_proxy_active_requests{nodeId="n1"}')) === 0 ? true : undefined), 10_000);
  await eventually('descriptors back to the baseline', () => (fds(node.proc.pid) <= baseline + 1 ? true : undefined), 10_000);
  t.true((await limitRefusals(node, 'pipeline_depth')) >= 1, 'the requests beyond the depth were refused');
  // And the node serves as before.
  t.is((await fetchVia(node, '/bytes/1024')).status, 200);
});

test.serial('under ulimit -n 1024, 1,100 idle connections from one address are refused at accept; the proxy and /health keep answering', async (t) => {
  if (!hasPrlimit()) {
    t.log('skipped: prlimit (util-linux) is not available');
    t.pass();
    return;
  }
  const node = await startNode(t, { store: 'memory', prefix: ['prlimit', '--nofile=1024:1024'] });
  const origin = await startOrigin(t, 'fd-a');
  await addOrigin(node, origin);
  await waitForRouting(node, ['fd-a']);
  // Defaults: --max-connections auto = (1024 - 256) / 2 = 384, a quarter per source.
  const { open: sockets } = await flood(node.proxyPort, 1_100, '127.0.0.1', 0);
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  // Every connection has been accepted (or refused) by the node: on a loaded machine
  // some wait in the listen backlog for a while, connected as far as the client knows.
  await eventually('the node to have seen every connection', async () =>
    (await limitRefusals(node, 'max_connections_per_source')) + (await metric(node, 'weldr_proxy_client_connections{nodeId="n1"}')) >= 1_100 ? true : undefined,
  );
  const refused = await limitRefusals(node, 'max_connections_per_source');
  await eventually('the refused connections to be closed at the client', () => (sockets.filter((s) => s.destroyed).length >= refused ? true : undefined));
  const open = sockets.filter((s) => !s.destroyed);
  // The test's own keep-alive connections (routing checks) count against the same address.
  t.true(open.length <= 96 && open.length >= 90, `${open.length} open: a quarter of the automatic connection limit`);
  t.is(refused, 1_100 - open.length);
  // Another client (another source address) is served, and the admin API answers.
  const other = new Agent({ localAddress: '127.0.0.2' });
  t.teardown(() => other.close());
  const res = await request(`${node.proxyUrl}/`, { dispatcher: other });
  t.is(res.statusCode, 200);
  await res.body.text();
  t.is((await request(`${node.adminUrl}/health`)).statusCode, 200);
  t.true(fds(node.proc.pid) < 900, 'descriptors never ran out');
  t.true(node.proc.running);
});

test.serial('out of file descriptors (limits set too high): a warning at start, and the node survives and serves again once the flood is gone', async (t) => {
  if (!hasPrlimit()) {
    t.log('skipped: prlimit (util-linux) is not available');
    t.pass();
    return;
  }
  const node = await startNode(t, {
    store: 'memory',
    prefix: ['prlimit', '--nofile=512:512'],
    args: ['--max-connections', '100000', '--max-connections-per-source', '0'],
  });
  const origin = await startOrigin(t, 'fd-b');
  await addOrigin(node, origin);
  await waitForRouting(node, ['fd-b']);
  // A keep-alive connection opened before the flood.
  const agent = new Agent({ connections: 1 });
  t.teardown(() => agent.close());
  const first = await request(`${node.proxyUrl}/`, { dispatcher: agent });
  await first.body.text();
  t.true(node.proc.lines.some((l) => l.event === 'max_connections_over_fd_limit'));
  // The descriptor limit is per process: with workers (WELDR_E2E_WORKERS) each has its
  // own 512, so the flood grows with them to exhaust them all.
  const processes = Math.max(1, Number(process.env.WELDR_E2E_WORKERS ?? '0'));
  const { open, refused } = await flood(node.proxyPort, 700 * processes, '127.0.0.1');
  // libuv accepts and closes what no descriptor is left for.
  t.true(refused > 0, 'the kernel-side refusals happened');
  // Still alive, still serving the connection it had.
  t.true(node.proc.running);
  const during = await request(`${node.proxyUrl}/`, { dispatcher: agent });
  t.is(during.statusCode, 200);
  await during.body.text();
  for (const s of open) s.destroy();
  await eventually('new connections served again', async () => {
    try {
      const r = await request(`${node.proxyUrl}/`, { dispatcher: new Agent({ connections: 1 }) });
      await r.body.text();
      return r.statusCode === 200 ? true : undefined;
    } catch {
      return undefined;
    }
  });
  t.true(node.proc.running);
});
