// IPv6 end to end: listeners on [::1], an origin registered by its IPv6 address.
import { createServer } from 'node:net';
import test from 'ava';
import { request } from 'undici';
import { makeTempDir } from './helpers/node.js';
import { spawnWeldr } from './helpers/process.js';
import { eventually } from './helpers/wait.js';

const ipv6Loopback = await new Promise<boolean>((resolve) => {
  const probe = createServer();
  probe.once('error', () => resolve(false));
  probe.listen(0, '::1', () => probe.close(() => resolve(true)));
});

(ipv6Loopback ? test : test.skip)('proxy and admin on [::1], origin added as ::1', async (t) => {
  const origin = spawnWeldr(t, 'origin v6', ['test-server', '--host', '::1', '--port', '0', '--id', 'six']);
  const originPort = (await origin.waitForLine('listening', (l) => l.event === 'listening')).port as number;
  const node = spawnWeldr(t, 'weldr v6', ['start', '--listen', '[::1]:0', '--admin', '[::1]:0', '--store', 'memory', '--data', makeTempDir(t)]);
  const proxyPort = (await node.waitForLine('proxy listening', (l) => l.event === 'listening' && l.listener === 'proxy')).port as number;
  const admin = await node.waitForLine('admin listening', (l) => l.event === 'listening' && l.listener === 'admin');
  t.is(admin.address, `[::1]:${admin.port as number}`);

  const added = await request(`http://[::1]:${admin.port as number}/servers`, { method: 'POST', body: JSON.stringify({ ip: '::1', port: originPort }) });
  t.is(added.statusCode, 201);
  t.is(((await added.body.json()) as { id: string }).id, `[::1]:${originPort}`);

  const echo = await eventually('routing over IPv6', async () => {
    const res = await request(`http://[::1]:${proxyPort}/echo`);
    return res.statusCode === 200 ? ((await res.body.json()) as { id: string; headers: [string, string][] }) : (await res.body.text(), undefined);
  });
  t.is(echo.id, 'six');
  t.deepEqual(echo.headers.filter(([n]) => n === 'x-forwarded-for'), [['x-forwarded-for', '::1']]);
});
