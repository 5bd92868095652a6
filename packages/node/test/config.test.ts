import test from 'ava';
import { leaseHeartbeats, MIN_LEASE_HEARTBEATS, minElectionTimeoutMs } from '@weldr/cluster';
import { ConfigError, loadConfig, OPTIONS, type LoadedConfig, type NodeConfig } from '../src/index.js';

function load(argv: string[], env: Record<string, string> = {}, files: Record<string, string> = {}): LoadedConfig {
  const result = loadConfig({
    argv,
    env,
    readFile: (path) => {
      const text = files[path];
      if (text === undefined) throw new Error(`ENOENT: no such file, open '${path}'`);
      return text;
    },
  });
  if (result.help) throw new Error('unexpected help');
  return result;
}

function loadError(argv: string[], env: Record<string, string> = {}, files: Record<string, string> = {}): string {
  const err = (() => {
    try {
      load(argv, env, files);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  if (!(err instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(err)}`);
  return err.message;
}

test('defaults match the design brief', (t) => {
  const { config, sources } = load([]);
  const expected: Partial<NodeConfig> = {
    id: 'n1',
    listen: { host: '0.0.0.0', port: 8080 },
    admin: { host: '127.0.0.1', port: 8687 },
    raft: { host: '127.0.0.1', port: 8688 },
    peers: [],
    data: './data/n1',
    store: 'level',
    logLevel: 'info',
    balancer: undefined,
    shutdownTimeout: 10_000,
  };
  t.like(config, expected);
  t.is(sources.listen, 'default');
});

test('the data directory default follows the node id', (t) => {
  t.is(load(['--id', 'edge-2']).config.data, './data/edge-2');
  t.is(load([], { WELDR_ID: 'n3' }).config.data, './data/n3');
});

test('precedence is flags > environment > config file > defaults', (t) => {
  const files = { 'c.json': JSON.stringify({ listen: '127.0.0.1:1001', admin: '127.0.0.1:1002', raft: '127.0.0.1:1003' }) };
  const env = { WELDR_CONFIG: 'c.json', WELDR_LISTEN: '127.0.0.1:2001', WELDR_ADMIN: '127.0.0.1:2002' };
  const { config, sources, configFile } = load(['--listen', '127.0.0.1:3001'], env, files);
  t.is(configFile, 'c.json');
  t.deepEqual(config.listen, { host: '127.0.0.1', port: 3001 });
  t.deepEqual(config.admin, { host: '127.0.0.1', port: 2002 });
  t.deepEqual(config.raft, { host: '127.0.0.1', port: 1003 });
  t.deepEqual([sources.listen, sources.admin, sources.raft, sources.id], ['flag', 'env', 'file', 'default']);
});

test('--config beats WELDR_CONFIG and an empty variable counts as unset', (t) => {
  const files = { 'a.json': '{"id":"from-a"}', 'b.json': '{"id":"from-b"}' };
  t.is(load(['--config', 'b.json'], { WELDR_CONFIG: 'a.json' }, files).config.id, 'from-b');
  t.is(load([], { WELDR_ID: '' }).config.id, 'n1');
});

test('--flag=value form and IPv6 addresses', (t) => {
  const { config } = load(['--listen=[::1]:0', '--admin', 'localhost:9000']);
  t.deepEqual(config.listen, { host: '::1', port: 0 });
  t.deepEqual(config.admin, { host: 'localhost', port: 9000 });
});

test('durations accept units and plain milliseconds', (t) => {
  const files = { 'c.json': '{"originResponseTimeout": 1500, "clientHeadersTimeout": "2s"}' };
  const { config } = load(['--config', 'c.json', '--shutdown-timeout', '2m', '--origin-idle-timeout', '250ms'], {}, files);
  t.is(config.shutdownTimeout, 120_000);
  t.is(config.originIdleTimeout, 250);
  t.is(config.originResponseTimeout, 1500);
  t.is(config.clientHeadersTimeout, 2000);
  t.is(load(['--shutdown-timeout', '0']).config.shutdownTimeout, 0);
});

test('peers parse from a string or a JSON array', (t) => {
  t.deepEqual(load(['--peers', 'n2=127.0.0.1:9002,n3=[::1]:9003', '--insecure-peers']).config.peers, [
    { id: 'n2', address: { host: '127.0.0.1', port: 9002 } },
    { id: 'n3', address: { host: '::1', port: 9003 } },
  ]);
  const files = { 'c.json': '{"peers": ["n2=10.0.0.2:8688"], "clusterToken": "0123456789abcdef0123"}' };
  t.is(load(['--config', 'c.json'], {}, files).config.peers.length, 1);
});

test('--help short-circuits validation', (t) => {
  t.deepEqual(loadConfig({ argv: ['--listen', 'nonsense', '--help'], env: {} }), { help: true });
});

const errors: [string, () => string, RegExp][] = [
  ['unknown flag', () => loadError(['--lisen', '1.2.3.4:5']), /unknown option --lisen/],
  ['missing flag value', () => loadError(['--listen']), /--listen needs a value/],
  ['positional argument', () => loadError(['extra']), /unexpected argument extra/],
  ['bad host:port', () => loadError(['--listen', 'nope']), /--listen: "nope" is not a valid host:port/],
  ['port out of range', () => loadError(['--admin', '127.0.0.1:65536']), /--admin: port 65536 .* out of range/],
  ['port not numeric', () => loadError(['--admin', '127.0.0.1:http']), /--admin/],
  ['bad host', () => loadError(['--listen', 'bad_host!:80']), /--listen: "bad_host!" .* not an IP address or host name/],
  ['bad env value', () => loadError([], { WELDR_LISTEN: '1.2.3.4' }), /WELDR_LISTEN/],
  ['bad enum', () => loadError(['--store', 'redis']), /--store: "redis" is not one of level, memory/],
  ['bad log level', () => loadError([], { WELDR_LOG_LEVEL: 'loud' }), /WELDR_LOG_LEVEL/],
  ['bad balancer', () => loadError(['--balancer', 'random']), /--balancer/],
  ['bad duration', () => loadError(['--shutdown-timeout', '10 parsecs']), /--shutdown-timeout: .* not a duration/],
  ['zero where not allowed', () => loadError(['--origin-response-timeout', '0']), /--origin-response-timeout: must be greater than 0/],
  ['fractional ms', () => loadError(['--origin-response-timeout', '1.5']), /--origin-response-timeout/],
  ['integer out of range', () => loadError(['--max-retries', '11']), /--max-retries: "11" is not a whole number in \[0, 10\]/],
  ['short admin token', () => loadError([], { WELDR_ADMIN_TOKEN: 'short' }), /WELDR_ADMIN_TOKEN: must be 16 to 4096 printable ASCII characters/],
  ['bad node id', () => loadError(['--id=-x']), /--id: "-x" is not a valid node id/],
  ['peer without id', () => loadError(['--peers', '127.0.0.1:9000']), /--peers: .* id=host:port/],
  ['peer with port 0', () => loadError(['--peers', 'n2=127.0.0.1:0']), /--peers: port 0/],
  ['duplicate peer', () => loadError(['--peers', 'n2=127.0.0.1:1,n2=127.0.0.1:2']), /--peers: peer id "n2" appears twice/],
  ['missing config file', () => loadError(['--config', 'nope.json']), /cannot read config file nope.json/],
  ['bad JSON', () => loadError(['--config', 'c.json'], {}, { 'c.json': '{"id": ' }), /config file c.json is not valid JSON/],
  ['JSON not an object', () => loadError(['--config', 'c.json'], {}, { 'c.json': '[1]' }), /must contain a JSON object/],
  ['unknown config key', () => loadError(['--config', 'c.json'], {}, { 'c.json': '{"lisen": "x"}' }), /unknown key "lisen" in config file c.json/],
  ['wrong type in file', () => loadError(['--config', 'c.json'], {}, { 'c.json': '{"listen": 8080}' }), /"listen" in c.json: expected host:port/],
];
for (const [name, run, pattern] of errors) {
  test(`rejects: ${name}`, (t) => {
    const message = run();
    t.regex(message, pattern);
    t.false(message.includes('\n'), 'one line');
  });
}

test('every option follows the naming scheme: --kebab-flag, WELDR_SNAKE variable, camelCase key', (t) => {
  for (const option of OPTIONS) {
    const kebab = option.key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    t.is(option.flag, kebab);
    t.is(option.env, `WELDR_${kebab.replace(/-/g, '_').toUpperCase()}`);
  }
});

test('a flag value that starts with a dash: the message says how to pass it', (t) => {
  t.regex(loadError(['--shutdown-timeout', '-5s']), /--shutdown-timeout needs a value \(for a value starting with '-', write --shutdown-timeout=VALUE\)/);
  t.regex(loadError(['--shutdown-timeout=-5s']), /invalid value for --shutdown-timeout: "-5s" is not a duration/);
});

test('WELDR_* variables that name no setting are reported (a typo is not silently ignored)', (t) => {
  const { unknownEnv, config } = load([], { WELDR_ADMN: '0.0.0.0:1', WELDR_ADMIN: '127.0.0.1:9', WELDR_CONFIG_X: '', OTHER_ADMN: 'x' });
  t.deepEqual(unknownEnv, ['WELDR_ADMN']);
  t.is(config.admin.port, 9);
  t.deepEqual(load([], { WELDR_ID: 'n2', WELDR_LOG_LEVEL: 'warn' }).unknownEnv, []);
});

test("the operator CLI's variables are not reported: an operator exports WELDR_ENDPOINTS for `weldr servers …` in the shell that runs `weldr start`", (t) => {
  t.deepEqual(load([], { WELDR_ENDPOINTS: '127.0.0.1:8687,127.0.0.1:8697', WELDR_CACERT: 'ca.pem', WELDR_TIMEOUT: '5s', WELDR_ADMIN_TOKEN: 'a-token-of-16-chars-or-more' }).unknownEnv, []);
});

test('a config file saved with a UTF-8 byte order mark is read', (t) => {
  const { config } = load(['--config', '/etc/w.json'], {}, { '/etc/w.json': '\uFEFF{"id":"bom"}' });
  t.is(config.id, 'bom');
});

test('the proxy and the admin API on one address is a configuration error', (t) => {
  t.regex(loadError(['--listen', '127.0.0.1:9000', '--admin', '127.0.0.1:9000']), /the proxy \(listen 127\.0\.0\.1:9000\) and the admin API \(admin 127\.0\.0\.1:9000\) cannot share port 9000/);
  t.regex(loadError(['--admin', '127.0.0.1:8080']), /cannot share port 8080/, 'the default listen 0.0.0.0:8080 covers every address');
  t.regex(loadError(['--listen', '[::1]:9000', '--admin', '[::]:9000']), /cannot share port 9000/);
  t.is(load(['--listen', '127.0.0.1:9000', '--admin', '127.0.0.2:9000']).config.admin.port, 9000);
  t.is(load(['--listen', '0.0.0.0:9000', '--admin', '[::1]:9000']).config.admin.port, 9000, 'an IPv4 wildcard leaves IPv6 free');
  t.is(load(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']).config.admin.port, 0);
  // The Raft listener counts only in cluster mode, where it is bound.
  t.regex(loadError(['--listen', '127.0.0.1:0', '--raft', '127.0.0.1:8687', '--peers', 'n2=127.0.0.1:9999']), /the admin API \(admin 127\.0\.0\.1:8687\) and the Raft transport \(raft 127\.0\.0\.1:8687\) cannot share port 8687/);
  t.is(load(['--listen', '127.0.0.1:0', '--raft', '127.0.0.1:8687']).config.raft.port, 8687);
});

test('a key repeated in the config file is an error, not "the last one wins"', (t) => {
  t.regex(loadError(['--config', '/etc/w.json'], {}, { '/etc/w.json': '{"listen":"127.0.0.1:1","listen":"127.0.0.1:2"}' }), /key "listen" appears more than once in config file \/etc\/w.json/);
});

test('--join takes an admin URL (normalised), --restore a path, --raft-advertise an address', (t) => {
  const token = { WELDR_CLUSTER_TOKEN: '0123456789abcdef0123' };
  const { config } = load(['--join', 'HTTP://127.0.0.1:8687/', '--raft-advertise', '[::1]:9000'], token);
  t.is(config.join, 'http://127.0.0.1:8687');
  t.deepEqual(config.raftAdvertise, { host: '::1', port: 9000 });
  t.is(load(['--restore', 'backup.json'], token).config.restore, 'backup.json');
  t.is(load(['--join', 'https://admin.example:8687'], token).config.join, 'https://admin.example:8687');
  for (const bad of ['127.0.0.1:8687', 'http://127.0.0.1:8687/cluster', 'ftp://x:1', 'http://x']) t.regex(loadError(['--join', bad], token), /--join/);
  t.regex(loadError(['--raft-advertise', '127.0.0.1:0']), /--raft-advertise/);
  // Joining is cluster mode: it needs peer authentication like --peers does.
  t.regex(loadError(['--join', 'http://127.0.0.1:8687']), /cluster mode needs peer authentication/);
  t.regex(loadError(['--join', 'http://10.0.0.1:8687', '--insecure-peers']), /--insecure-peers is allowed only when every member is on loopback; not: --join http:\/\/10\.0\.0\.1:8687/);
  t.true(load(['--restore', 'b.json', '--insecure-peers']).config.insecurePeers);
});

test('cluster mode needs peer authentication: a token, peer TLS, or --insecure-peers with every member on loopback', (t) => {
  const peers = ['--peers', 'n1=127.0.0.1:9001,n2=127.0.0.1:9002'];
  t.regex(loadError(peers), /cluster mode needs peer authentication.*WELDR_CLUSTER_TOKEN.*--peer-cert.*weldr certs init.*--insecure-peers/);
  t.is(load(peers, { WELDR_CLUSTER_TOKEN: '0123456789abcdef0123' }).config.clusterToken, '0123456789abcdef0123');
  t.is(load([...peers, '--peer-cert', 'p.pem', '--peer-key', 'k.pem', '--peer-ca', 'ca.pem']).config.peerCert, 'p.pem');
  t.true(load([...peers, '--insecure-peers']).config.insecurePeers);
  t.true(load(peers, { WELDR_INSECURE_PEERS: 'true' }).config.insecurePeers);
  // Off loopback: no exemption, and no hint at one.
  const remote = ['--peers', 'n1=10.0.0.1:9001,n2=10.0.0.2:9002', '--raft', '10.0.0.1:9001'];
  t.notRegex(loadError(remote), /--insecure-peers/);
  t.regex(loadError([...remote, '--insecure-peers']), /--insecure-peers is allowed only when every member is on loopback; not: --raft 10\.0\.0\.1:9001, n1=10\.0\.0\.1:9001, n2=10\.0\.0\.2:9002/);
  t.regex(loadError([...peers, '--raft', '0.0.0.0:9001', '--insecure-peers']), /not: --raft 0\.0\.0\.0:9001/, 'a wildcard is not loopback');
  t.regex(loadError([...peers, '--insecure-peers'], { WELDR_CLUSTER_TOKEN: '0123456789abcdef0123' }), /drop one or the other/);
  // A single node needs none of it.
  t.is(load([]).config.clusterToken, undefined);
});

test('peer TLS and admin HTTPS files go together', (t) => {
  t.regex(loadError(['--peer-cert', 'p.pem']), /peer TLS needs --peer-cert, --peer-key, --peer-ca together; missing: --peer-key, --peer-ca/);
  t.regex(loadError(['--admin-key', 'k.pem']), /admin HTTPS needs --admin-cert, --admin-key together; missing: --admin-cert/);
  t.regex(loadError(['--admin-client-ca', 'ca.pem']), /--admin-client-ca needs --admin-cert/);
});

test('an admin API off loopback needs a token; --admin-auth-reads needs one too', (t) => {
  t.regex(loadError(['--admin', '0.0.0.0:8687']), /the admin API on 0\.0\.0\.0:8687 is reachable from other hosts and has no token.*WELDR_ADMIN_TOKEN.*127\.0\.0\.1/);
  t.is(load(['--admin', '0.0.0.0:8687'], { WELDR_ADMIN_TOKEN: '0123456789abcdef0123' }).config.admin.host, '0.0.0.0');
  t.regex(loadError(['--admin-auth-reads']), /--admin-auth-reads needs an admin token/);
  t.true(load(['--admin-auth-reads'], { WELDR_ADMIN_TOKEN: '0123456789abcdef0123' }).config.adminAuthReads);
  t.regex(loadError([], { WELDR_ADMIN_AUTH_READS: 'maybe' }), /WELDR_ADMIN_AUTH_READS: "maybe" is not true or false/);
});

test('limits: defaults and bounds', (t) => {
  t.like(load([]).config, { raftMaxPending: 64, raftMaxPendingPerSource: 8, adminMaxConnections: 256, adminMaxConnectionsPerSource: 64 });
  t.is(load(['--admin-max-connections', '10']).config.adminMaxConnections, 10);
  t.regex(loadError(['--raft-max-pending', '0']), /--raft-max-pending/);
});

test('tokens can come from files (mounted secrets); the file and the token itself together are refused', (t) => {
  const files = { '/run/secrets/cluster': 'cluster-token-from-a-file-0123\n', '/run/secrets/short': 'short\n' };
  const { config, sources } = load(['--peers', 'n1=127.0.0.1:9001,n2=127.0.0.1:9002'], { WELDR_CLUSTER_TOKEN_FILE: '/run/secrets/cluster' }, files);
  t.is(config.clusterToken, 'cluster-token-from-a-file-0123');
  t.is(sources.clusterToken, 'env');
  t.regex(loadError(['--admin-token-file', '/run/secrets/short'], {}, files), /the token in --admin-token-file \/run\/secrets\/short must be 16 to 4096/);
  t.regex(loadError(['--admin-token-file', '/nope'], {}, files), /cannot read --admin-token-file \/nope/);
  t.regex(loadError(['--cluster-token-file', '/run/secrets/cluster'], { WELDR_CLUSTER_TOKEN: '0123456789abcdef0123' }, files), /both set; give one/);
});

test('Raft timers whose lease would be shorter than two heartbeats are refused, with the minimum; the exact boundary', (t) => {
  // 50 ms heartbeats: 175 ms rounds to 4 ticks (lease 2), 174 ms to 3 (lease 1).
  t.is(load(['--raft-election-timeout', '175ms']).config.raftElectionTimeout, 175);
  const below = loadError(['--raft-election-timeout', '174ms']);
  t.is(below, '--raft-election-timeout 174ms with --raft-heartbeat 50ms gives the active node a lease of 1 heartbeat; it needs at least 2: use an election timeout of at least 175ms (3.5 heartbeats) or a shorter heartbeat');
  // The case: twice the heartbeat gives no lease at all.
  t.regex(loadError(['--raft-heartbeat', '100ms', '--raft-election-timeout', '200ms']), /lease of 0 heartbeats; it needs at least 2: use an election timeout of at least 350ms/);
  t.is(load(['--raft-heartbeat', '100ms', '--raft-election-timeout', '350ms']).config.raftElectionTimeout, 350);
  t.regex(loadError(['--raft-heartbeat', '100ms', '--raft-election-timeout', '349ms']), /lease of 1 heartbeat;/);
  // From the environment or a file alike; the defaults (500 ms / 50 ms) pass.
  t.regex(loadError([], { WELDR_RAFT_ELECTION_TIMEOUT: '100ms' }), /at least 175ms/);
  t.is(load([]).config.raftElectionTimeout, 500);
});

test('the minimum election timeout is exact for any heartbeat: one ms less gives a lease under two heartbeats', (t) => {
  for (let h = 1; h <= 400; h++) {
    const min = minElectionTimeoutMs(h);
    t.true(leaseHeartbeats(min, h) >= MIN_LEASE_HEARTBEATS, `h=${h} min=${min}`);
    t.true(leaseHeartbeats(min - 1, h) < MIN_LEASE_HEARTBEATS, `h=${h} min-1=${min - 1}`);
  }
  t.is(minElectionTimeoutMs(50), 175);
});
