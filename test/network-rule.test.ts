// The machines these tests run on allow traffic to loopback only (and to namespaces a
// test creates itself). A server added to a running node's pool is health-checked at
// once, and proxied to when the pool fails open, so an e2e test or a benchmark that
// adds an origin outside 127.0.0.0/8 sends real packets off the machine: until
// 2026-12-07 the cluster drills added 10.x servers, and each one's health check left
// through the default route (something on the path even answered 404). This scan fails
// when an address literal outside the allowed ranges appears in an origin position of
// an e2e test, a test helper or a benchmark. Package unit tests are not scanned: they
// validate addresses without any proxy or health checker running.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { REPO_ROOT } from './helpers/repo-root.js';

/**
 * Where an address may appear as an origin: JSON/JS `ip` fields and `IP:PORT` pool-file
 * lines (port 0 is a listener binding an ephemeral port, not an origin).
 */
const ORIGIN_FIELD = /\bip["']?\s*:\s*["'`]([^"'`]+)["'`]/g;
const POOL_LINE = /(?:^|["'`\n]|\\n)((?:\d{1,3}\.){3}\d{1,3}):(?!0\b)\d+/g;

function allowed(address: string): boolean {
  if (address.includes('${')) return true; // built at run time: checked where it is built
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (v4 !== null) {
    const [a, b, c] = [Number(v4[1]), Number(v4[2]), Number(v4[3])];
    // 0.0.0.0 is a listener's wildcard (the API refuses it as an origin).
    if (a === 127 || address === '0.0.0.0') return true;
    // The VIP drill's bridge lives in network namespaces the test creates (helpers/netns.ts).
    if (a === 10 && b === 213 && c === 0) return true;
    return false;
  }
  if (address.includes(':')) return address === '::1' || /^::ffff:127\./i.test(address);
  // Not an address (a hostname or a deliberately invalid value a test expects refused).
  return true;
}

function files(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'dist') out.push(...files(path, ext));
    } else if (ext.test(entry.name)) out.push(path);
  }
  return out;
}

/** [file, line number, address] for every origin address outside the allowed ranges. */
function originsOffLoopback(paths: readonly string[], read: (path: string) => string): [string, number, string][] {
  const found: [string, number, string][] = [];
  for (const path of paths) {
    const text = read(path);
    for (const pattern of [ORIGIN_FIELD, POOL_LINE]) {
      for (const m of text.matchAll(pattern)) {
        const address = m[1]!;
        if (allowed(address)) continue;
        const line = text.slice(0, m.index).split('\n').length;
        found.push([path, line, address]);
      }
    }
  }
  return found;
}

test('e2e tests, their helpers and the benchmarks add origins on loopback only', (t) => {
  const root = REPO_ROOT;
  const paths = [...files(join(root, 'test'), /\.ts$/), ...files(join(root, 'bench'), /\.(js|mjs|ts)$/)].filter((p) => !p.endsWith('network-rule.test.ts'));
  t.true(paths.length > 40, `scanned ${paths.length} files`);
  const found = originsOffLoopback(paths, (p) => readFileSync(p, 'utf8'));
  t.deepEqual(
    found.map(([p, line, address]) => `${p.slice(root.length + 1)}:${line}: ${address}`),
    [],
    'use a 127.x.y.z address for an origin that must not be reached (nothing listens there: refused at once)',
  );
});

test('the scan finds origins off loopback in every form the tests write them', (t) => {
  const sources: Record<string, string> = {
    'a.ts': `await admin(m, 'POST', '/servers', { ip: '10.0.0.1', port });`,
    'b.ts': `body: JSON.stringify({ ip: '192.168.1.9', port: 80 }),`,
    'c.js': `const body = '{"ip":"172.16.0.1","port":80}';`,
    'd.ts': `writeFileSync(f, '10.9.8.1:80\\n10.9.8.2:80 weight=7\\n');`,
    'e.ts': `{ type: 'AddServer', ip: 'fd00::1', port: 80 }`,
    ok: `{ ip: '127.7.0.1', port }, { ip: '::1', port }, '127.10.98.1:80\\n', { ip: \`127.\${a}.0.1\` }, --vip 10.213.0.100/24 { ip: '10.213.0.5' }`,
  };
  const found = originsOffLoopback(Object.keys(sources), (p) => sources[p]!);
  t.deepEqual(
    found.map(([p, , a]) => `${p} ${a}`),
    ['a.ts 10.0.0.1', 'b.ts 192.168.1.9', 'c.js 172.16.0.1', 'd.ts 10.9.8.1', 'd.ts 10.9.8.2', 'e.ts fd00::1'],
  );
});
