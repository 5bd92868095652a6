// Body buffers are freed by the garbage collector in bulk; with glibc's default trim
// threshold the freed heap went back to the kernel and every proxied MiB was faulted in
// again (~150–250 minor page faults per MiB, 2–3× the CPU of the same work without them;
// see src/malloc.ts). The proxy runs in a process of its own here, so that its page-fault
// count is its alone: a count, not a time.
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { startOrigin } from './helpers.js';

const MiB = 1024 * 1024;
const glibc = Boolean((process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime);

function ask<T>(child: ChildProcess, message: string): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(message);
  });
}

function get(port: number, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

(glibc ? test : test.skip)('proxied bodies do not fault their memory in again MiB after MiB (glibc)', async (t) => {
  const body = Buffer.alloc(MiB, 0x62);
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { 'content-length': String(MiB) });
    res.end(body);
  });
  const child = fork(fileURLToPath(new URL('./fixtures/proxy-process.ts', import.meta.url)), [String(origin.port)], { execArgv: process.execArgv, stdio: 'inherit' });
  t.teardown(async () => {
    child.kill();
    await origin.close();
  });
  const { port } = await new Promise<{ port: number }>((resolve) => child.once('message', (m) => resolve(m as { port: number })));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());
  const run = async (n: number): Promise<void> => {
    let left = n;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (left-- > 0) t.is(await get(port, agent), MiB);
      }),
    );
  };
  await run(32); // warm: code compiled, heap grown to its working size
  const before = await ask<{ faults: number }>(child, 'usage');
  const mib = 128;
  await run(mib);
  const after = await ask<{ faults: number }>(child, 'usage');
  const perMiB = (after.faults - before.faults) / mib;
  t.log(`minor page faults per proxied MiB: ${perMiB.toFixed(1)}`);
  // Kept heap: a few per MiB. Returned and faulted in again: 256 per MiB (4 KiB pages).
  t.true(perMiB < 16, `${perMiB.toFixed(1)} page faults per MiB`);
  child.send('close');
});

// The same buffers as V8 sees them (src/malloc.ts, GC_FLAG): freed by the scavenge that
// finds them dead, not later by a background thread — whose lag, on a busy core, kept
// them counted and set off a full mark-compact every few dozen ms under 1 MiB bodies.
// A count of memory, not a time: right after the minor collection returns.
async function deadBuffersAfterScavenge(): Promise<{ before: number; after: number }> {
  const child = fork(fileURLToPath(new URL('./fixtures/gc-process.ts', import.meta.url)), [], { execArgv: [...process.execArgv, '--expose-gc'], stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as { before: number; after: number }));
    child.once('error', reject);
  });
}

test('dead body buffers are freed by the scavenge that finds them, once a proxy exists', async (t) => {
  // V8's own heuristics sometimes keep a run's buffers past the scavenge anyway (about one
  // fresh process in eight kept 8–22 MiB with the flag); without it no process freed them
  // there (12–22 MiB of 25 kept in each of five). So: up to five fresh processes, and one
  // that frees them is the flag at work.
  const seen: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await deadBuffersAfterScavenge();
    t.true(r.before >= 20, `the buffers were counted before the collection (${r.before.toFixed(1)} MiB)`);
    seen.push(`${r.after.toFixed(1)} MiB`);
    if (r.after < 5) break;
  }
  t.log(`still counted after the scavenge: ${seen.join(', ')}`);
  t.true(Number.parseFloat(seen[seen.length - 1]!) < 5, `still counted after the scavenge, in each of ${seen.length} processes: ${seen.join(', ')}`);
});
