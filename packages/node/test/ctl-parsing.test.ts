// The operator CLI's pure parts: endpoints, server addresses, settings patches, pool
// files (weldr exports and HAProxy / nginx / plain server lists), the import batch, and
// the dev cluster's layout.
import test from 'ava';
import type { ServerRecord } from '@weldr/store';
import { DEFAULT_SETTINGS } from '@weldr/store';
import { ConfigError } from '../src/config/config-error.js';
import { parseServerAddress } from '../src/ctl/address.js';
import { importCommands } from '../src/ctl/commands/servers.js';
import { flatten, settingsPatch } from '../src/ctl/commands/settings.js';
import { parseCommand } from '../src/ctl/common-options.js';
import { parseEndpoints } from '../src/ctl/endpoints.js';
import { parsePoolFile } from '../src/ctl/pool-file.js';
import { devLayout } from '../src/dev-cluster/layout.js';

const configError = (t: import('ava').ExecutionContext, fn: () => unknown, pattern: RegExp): void => {
  const err = t.throws(fn, { instanceOf: ConfigError });
  t.regex(err?.message ?? '', pattern);
};

test('--endpoints: URLs or host:port, deduplicated, nothing but scheme://host:port', (t) => {
  t.deepEqual(parseEndpoints('127.0.0.1:8687, http://127.0.0.1:8697,https://[::1]:8707,127.0.0.1:8687'), ['http://127.0.0.1:8687', 'http://127.0.0.1:8697', 'https://[::1]:8707']);
  configError(t, () => parseEndpoints(''), /one or more URLs/);
  configError(t, () => parseEndpoints('a:1,,b:2'), /one or more URLs/);
  configError(t, () => parseEndpoints('ftp://h:1'), /http:\/\/ or https:\/\//);
  configError(t, () => parseEndpoints('http://h:1/admin'), /just scheme:\/\/host:port/);
  configError(t, () => parseEndpoints('http://tok:en@h:1'), /just scheme:\/\/host:port/);
  configError(t, () => parseEndpoints('http://h:99999'), /not a URL/);
});

test('common flags: environment fills in, flags win, bad values are usage errors', (t) => {
  const env = { WELDR_ENDPOINTS: 'h1:1,h2:2', WELDR_ADMIN_TOKEN: 'from-env', WELDR_TIMEOUT: '3s' };
  const fromEnv = parseCommand(['x'], {}, env);
  t.deepEqual(fromEnv.common, { endpoints: ['http://h1:1', 'http://h2:2'], token: 'from-env', cacert: undefined, json: false, timeoutMs: 3000 });
  t.deepEqual(fromEnv.positionals, ['x']);
  const fromFlags = parseCommand(['--endpoints', 'h3:3', '--token', 't', '--json', '--timeout', '500ms', '--cacert', 'ca.pem'], {}, env);
  t.deepEqual(fromFlags.common, { endpoints: ['http://h3:3'], token: 't', cacert: 'ca.pem', json: true, timeoutMs: 500 });
  t.deepEqual(parseCommand([], {}, {}).common.endpoints, ['http://127.0.0.1:8687']);
  configError(t, () => parseCommand(['--timeout', 'soon'], {}, {}), /--timeout/);
  configError(t, () => parseCommand(['--frob'], {}, {}), /unknown option --frob/);
  configError(t, () => parseCommand(['--token', 'has space'], {}, {}), /visible ASCII/);
  configError(t, () => parseCommand([], {}, { WELDR_ENDPOINTS: 'ftp://x:1' }), /WELDR_ENDPOINTS/);
});

test('server addresses: IP:PORT, IPv6 in brackets', (t) => {
  t.deepEqual(parseServerAddress('10.0.0.1:80'), { ip: '10.0.0.1', port: 80 });
  t.deepEqual(parseServerAddress('[::1]:8081'), { ip: '::1', port: 8081 });
  configError(t, () => parseServerAddress('10.0.0.1'), /needs a port/);
  configError(t, () => parseServerAddress('::1:80'), /IPv6 addresses in brackets/);
  configError(t, () => parseServerAddress('10.0.0.1:0'), /1-65535/);
  configError(t, () => parseServerAddress('10.0.0.1:http'), /1-65535/);
});

test('settings set: KEY=VALUE into a nested patch, JSON values typed', (t) => {
  t.deepEqual(settingsPatch(['balancer=least-connections', 'healthCheck.intervalMs=5000', 'healthCheck.enabled=false', 'healthCheck.path=/healthz', 'healthCheck.expectedStatus={"min":200,"max":299}']), {
    balancer: 'least-connections',
    healthCheck: { intervalMs: 5000, enabled: false, path: '/healthz', expectedStatus: { min: 200, max: 299 } },
  });
  configError(t, () => settingsPatch(['balancer']), /KEY=VALUE/);
  configError(t, () => settingsPatch(['=x']), /KEY=VALUE/);
  configError(t, () => settingsPatch(['a.b.c=1']), /not a setting name/);
  configError(t, () => settingsPatch(['balancer=x', 'balancer=y']), /given twice/);
  configError(t, () => settingsPatch(['healthCheck=1', 'healthCheck.path=/']), /both as a value and as a group/);
});

test('settings get: dotted lines, objects inside a group whole', (t) => {
  const lines = flatten(DEFAULT_SETTINGS as never);
  t.deepEqual(lines[0], ['balancer', 'round-robin']);
  t.true(lines.some(([k, v]) => k === 'healthCheck.expectedStatus' && v === '{"min":200,"max":399}'));
  t.true(lines.some(([k, v]) => k === 'passiveHealth.enabled' && v === 'true'));
});

test('pool file: a weldr export is read as it is', (t) => {
  const text = JSON.stringify({ format: 'weldr-pool/v1', index: 7, settings: DEFAULT_SETTINGS, servers: [{ ip: '10.0.0.1', port: 80, weight: 2, healthCheck: { path: '/h' }, draining: true }] });
  const parsed = parsePoolFile(`\uFEFF${text}`, 'pool.json');
  t.is(parsed.kind, 'export');
  t.deepEqual(parsed.settings, DEFAULT_SETTINGS);
  t.deepEqual(parsed.servers, [{ ip: '10.0.0.1', port: 80, weight: 2, healthCheck: { path: '/h' }, draining: true }]);
  configError(t, () => parsePoolFile('{"servers":[]}', 'p.json'), /"format" must be "weldr-pool\/v1"/);
  configError(t, () => parsePoolFile('{"format":"weldr-pool/v1","servers":[{"ip":"10.0.0.1","port":80,"wieght":2}]}', 'p.json'), /servers\[0\]: unknown key "wieght"/);
  configError(t, () => parsePoolFile('{"format":"weldr-pool/v1","servers":{}}', 'p.json'), /"servers" must be an array/);
  configError(t, () => parsePoolFile('{"format":"weldr-pool/v1","servers":[],"servers":[]}', 'p.json'), /more than once/);
  configError(t, () => parsePoolFile('{"format":"weldr-pool/v1",', 'p.json'), /not valid JSON/);
});

test('pool file: plain, HAProxy and nginx server lines', (t) => {
  const parsed = parsePoolFile(
    [
      '# migrated from the old balancers',
      '10.0.0.1:80',
      '10.0.0.2:80 weight=5',
      '',
      '    server web3 10.0.0.3:8080 weight 3 check inter 2s   # haproxy',
      '    server web4 10.0.0.4:8080 disabled',
      '    server 10.0.0.5:80 weight=2 max_fails=3;            # nginx',
      '    server [2001:db8::1]:80 down;',
    ].join('\n'),
    'servers.txt',
  );
  t.is(parsed.kind, 'list');
  t.is(parsed.settings, undefined);
  t.deepEqual(parsed.servers, [
    { ip: '10.0.0.1', port: 80 },
    { ip: '10.0.0.2', port: 80, weight: 5 },
    { ip: '10.0.0.3', port: 8080, weight: 3 },
    { ip: '10.0.0.4', port: 8080, draining: true },
    { ip: '10.0.0.5', port: 80, weight: 2 },
    { ip: '2001:db8::1', port: 80, draining: true },
  ]);
  t.deepEqual(parsed.ignored, ['servers.txt line 5: ignored check inter 2s', 'servers.txt line 7: ignored max_fails=3']);
  configError(t, () => parsePoolFile('server app app.internal:80', 'l.txt'), /line 1: "app.internal" is a host name/);
  configError(t, () => parsePoolFile('10.0.0.1:80\n10.0.0.2', 'l.txt'), /line 2.*needs a port/);
  configError(t, () => parsePoolFile('10.0.0.1:80 weight=0', 'l.txt'), /weight must be an integer 1-1000/);
  configError(t, () => parsePoolFile('010.0.0.1:80', 'l.txt'), /line 1: "010.0.0.1"/);
  configError(t, () => parsePoolFile('# nothing\n\n', 'l.txt'), /lists no servers/);
});

const record = (ip: string, port: number, extra: Partial<ServerRecord> = {}): ServerRecord => ({ id: `${ip}:${port}`, ip, port, weight: 1, healthCheck: {}, draining: false, createdIndex: 1, updatedIndex: 1, ...extra });

test('import batch: removals (with --replace), then settings, then an upsert per server and its draining where it differs', (t) => {
  const current = [record('10.0.0.1', 80, { draining: true }), record('10.0.0.9', 80), record('::1', 81)];
  const { commands, names } = importCommands(
    [{ ip: '10.0.0.1', port: 80, weight: 2 }, { ip: '10.0.0.2', port: 80, draining: true }, { ip: '0::1', port: 81 }],
    DEFAULT_SETTINGS,
    current,
    true,
  );
  t.deepEqual(commands, [
    { type: 'RemoveServer', ip: '10.0.0.9', port: 80 },
    { type: 'UpdateSettings', ...DEFAULT_SETTINGS },
    { type: 'AddServer', ip: '10.0.0.1', port: 80, weight: 2 },
    { type: 'UpdateServer', ip: '10.0.0.1', port: 80, draining: false },
    { type: 'AddServer', ip: '10.0.0.2', port: 80 },
    { type: 'UpdateServer', ip: '10.0.0.2', port: 80, draining: true },
    { type: 'AddServer', ip: '0::1', port: 81 },
  ]);
  t.deepEqual(names, ['10.0.0.9:80', 'settings', '10.0.0.1:80', '10.0.0.1:80', '10.0.0.2:80', '10.0.0.2:80', '[0::1]:81']);
  // Without --replace nothing is removed.
  t.false(importCommands([{ ip: '10.0.0.1', port: 80 }], undefined, current, false).commands.some((c) => c.type === 'RemoveServer'));
});

test('dev cluster layout: defaults, overrides, and port mistakes', (t) => {
  const d = devLayout({});
  t.deepEqual(d.members.map((m) => [m.id, m.proxyPort, m.adminPort, m.raftPort, m.dataDir]), [
    ['n1', 8080, 8687, 8688, 'data/n1'],
    ['n2', 8090, 8697, 8698, 'data/n2'],
    ['n3', 8100, 8707, 8708, 'data/n3'],
  ]);
  t.deepEqual(d.origins.map((o) => o.port), [8081, 8082]);
  const custom = devLayout({ data: '/tmp/x', proxyPorts: '1,2', adminPorts: '3,4', raftPorts: '5,6', originPorts: '0,0' });
  t.is(custom.members.length, 2);
  t.is(custom.members[1]?.dataDir, '/tmp/x/n2');
  t.deepEqual(devLayout({ originPorts: '' }).origins, []);
  configError(t, () => devLayout({ proxyPorts: '1,2' }), /one port per member/);
  configError(t, () => devLayout({ adminPorts: '8080,8697,8707' }), /port 8080 is given twice/);
  configError(t, () => devLayout({ raftPorts: '1,x,3' }), /--raft-ports: "x" is not a port/);
  configError(t, () => devLayout({ proxyPorts: '0,1,2' }), /--proxy-ports: "0" is not a port/);
});
