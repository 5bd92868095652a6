// Proxy worker processes (--workers N, issue 13 item 1): connections spread over the
// workers, stats and metrics summed over them, a worker killed under load costs only
// the requests it had in flight and is restarted and counted, graceful shutdown lets
// in-flight requests finish on every worker, and workers never outlive their node.
import test from 'ava';
import { Agent, request } from 'undici';
import { adminCall, removeOrigin } from './helpers/admin.js';
import { nodeWithOrigins, receivedBy } from './helpers/fixtures.js';
import { events, type WeldrNode } from './helpers/node.js';
import { eventually, within } from './helpers/wait.js';

const WORKERS = ['--workers', '2'];

/** The pids of the node's workers, from their log lines (`worker` and `pid` fields). */
function workerPids(node: WeldrNode): Map<number, number> {
  const pids = new Map<number, number>();
  for (const l of node.proc.lines) if (typeof l.worker === 'number' && typeof l.pid === 'number') pids.set(l.worker, l.pid);
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function metric(node: WeldrNode, line: RegExp): Promise<number> {
  const text = (await adminCall<string>(node, 'GET', '/metrics')).body;
  const m = line.exec(text);
  return m === null ? NaN : Number(m[1]);
}

test.serial('two workers share the connections; /stats, /stats/detail, /metrics and the access log cover both', async (t) => {
  const { node } = await nodeWithOrigins(t, ['a', 'b'], { store: 'memory', args: [...WORKERS, '--access-log', 'stdout'] });
  t.is(events(node, 'workers_started')[0]?.workers, 2);
  const before = (await adminCall<{ client: { success: number } }>(node, 'GET', '/stats')).body.client.success;
  // A new connection per request: the node process hands connections to the workers in turn.
  const n = 24;
  for (let i = 0; i < n; i++) {
    const agent = new Agent({ pipelining: 0 });
    const res = await request(`${node.proxyUrl}/`, { dispatcher: agent });
    t.is(res.statusCode, 200);
    await res.body.text();
    await agent.close();
  }
  const stats = (await adminCall<{ client: { success: number }; server: { success: number } }>(node, 'GET', '/stats')).body;
  t.is(stats.client.success, before + n, 'every request of every worker is counted, at once');
  const detail = (await adminCall<{ success: number }[]>(node, 'GET', '/stats/detail')).body;
  t.is(detail.reduce((sum, s) => sum + s.success, 0), stats.server.success);
  const perOrigin2xx = await adminCall<string>(node, 'GET', '/metrics').then((r) =>
    [...r.body.matchAll(/^weldr_proxy_origin_requests_total\{server="[^"]+",code_class="2xx"[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0),
  );
  t.is(perOrigin2xx, stats.server.success, 'per-origin counters summed over workers');
  t.is(await metric(node, /^weldr_proxy_workers\{state="ready"[^}]*\} (\d+)$/m), 2);
  // Access-log lines come from both workers: each names its process in the request id.
  const access = await eventually('access lines of every request', () => {
    const lines = events(node, 'access');
    return lines.length >= before + n ? lines : undefined;
  });
  const instances = new Set(access.map((l) => String(l.id).split('-')[0]));
  t.is(instances.size, 2, 'both workers served connections');
  const last = access.at(-1)!;
  t.like(last, { method: 'GET', target: '/', status: 200, retries: 0, client: '127.0.0.1', bytes: 13 });
  t.regex(String(last.origin), /^127\.0\.0\.1:\d+$/);
  t.is(typeof last.ms, 'number');
});

test.serial('a worker killed under load: only requests in flight on it fail; it is restarted and counted', async (t) => {
  const { node } = await nodeWithOrigins(t, ['a'], { store: 'memory', args: WORKERS });
  const pids = workerPids(node);
  t.is(pids.size, 2);
  // Eight clients, each on its own keep-alive connection with one request in flight at
  // a time (the origin holds each for 50 ms): killing a worker can fail at most the one
  // request of each connection it held.
  const clients = 8;
  let stop = false;
  let killed = false;
  const failuresPerClient: number[] = new Array<number>(clients).fill(0);
  const okAfterKill: number[] = new Array<number>(clients).fill(0);
  const loops = Array.from({ length: clients }, async (_, i) => {
    let agent = new Agent({ connections: 1, pipelining: 1 });
    while (!stop) {
      try {
        const res = await request(`${node.proxyUrl}/delay/50`, { dispatcher: agent });
        await res.body.text();
        if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
        if (killed) okAfterKill[i]!++;
      } catch {
        failuresPerClient[i]!++;
        await agent.destroy();
        agent = new Agent({ connections: 1, pipelining: 1 });
      }
    }
    await agent.close();
  });
  await eventually('load on both workers', async () => ((await adminCall<{ active: number }[]>(node, 'GET', '/stats/detail')).body[0]!.active >= clients / 2 ? true : undefined));
  const [slot, pid] = [...pids.entries()][0]!;
  process.kill(pid, 'SIGKILL');
  killed = true;
  const exited = await node.proc.waitForLine('worker_exited', (l) => l.event === 'worker_exited' && l.worker === slot);
  t.is(exited.signal, 'SIGKILL');
  await eventually('the slot restarted', () => {
    const now = workerPids(node).get(slot);
    return now !== undefined && now !== pid ? true : undefined;
  });
  await eventually('every client served again after the kill', () => (okAfterKill.every((n) => n >= 2) ? true : undefined), 30_000);
  stop = true;
  await Promise.all(loops);
  const failed = failuresPerClient.reduce((a, b) => a + b, 0);
  t.log(`failed requests: ${failed} of ${clients} connections (per client: ${failuresPerClient.join(',')})`);
  t.true(failed >= 1, 'the killed worker had requests in flight');
  t.true(failuresPerClient.every((f) => f <= 1), 'at most the one in-flight request of a connection failed');
  t.true(failed < clients, 'connections on the other worker lost nothing');
  t.is(await metric(node, /^weldr_proxy_worker_restarts_total\{[^}]*\} (\d+)$/m), 1);
  t.is(await metric(node, /^weldr_proxy_workers\{state="ready"[^}]*\} (\d+)$/m), 2);
});

test.serial('drain on removal and graceful shutdown finish requests in flight on the workers', async (t) => {
  const { node, origins } = await nodeWithOrigins(t, ['a', 'b'], { store: 'memory', args: [...WORKERS, '--shutdown-timeout', '20s'] });
  // A slow request in flight on a removed origin finishes (drain), and one in flight at
  // SIGTERM finishes before the node exits.
  const slowA = request(`${node.proxyUrl}/delay/1500`);
  const onA = await Promise.race([receivedBy(origins[0]!, '/delay/1500').then(() => 'a'), receivedBy(origins[1]!, '/delay/1500').then(() => 'b')]);
  const target = onA === 'a' ? origins[0]! : origins[1]!;
  t.is((await removeOrigin(node, target.port)).status, 204);
  const first = await slowA;
  t.is(first.statusCode, 200, 'drained, not cut');
  await first.body.text();
  const slow = request(`${node.proxyUrl}/delay/1500`);
  await eventually('a request in flight', async () => ((await adminCall<{ active: number }[]>(node, 'GET', '/stats/detail')).body.some((s) => s.active > 0) ? true : undefined));
  const pids = [...workerPids(node).values()];
  node.proc.signal('SIGTERM');
  const res = await slow;
  t.is(res.statusCode, 200);
  t.regex(await res.body.text(), /delayed 1500 ms/);
  const exit = await within('node exit', node.proc.exited, 30_000);
  t.is(exit.code, 0);
  t.true(pids.every((p) => !alive(p)), 'no worker outlives its node');
});

test.serial('workers of a node that is killed stop at once: nothing serves outside the node', async (t) => {
  const { node } = await nodeWithOrigins(t, ['a'], { store: 'memory', args: WORKERS });
  const pids = [...workerPids(node).values()];
  t.is(pids.length, 2);
  node.proc.signal('SIGKILL');
  await node.proc.exited;
  await eventually('workers gone', () => (pids.every((p) => !alive(p)) ? true : undefined));
  const refused = await request(`${node.proxyUrl}/`).then(
    () => false,
    () => true,
  );
  t.true(refused, 'the proxy port no longer answers');
});
