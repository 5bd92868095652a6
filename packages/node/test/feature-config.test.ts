// The serving, VIP and fault-injection settings: values and the rules between them.
import test from 'ava';
import { checkClusterConfig, loadConfig, type NodeConfig } from '../src/index.js';

const PEERS = ['--id', 'n1', '--peers', 'n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003'];

/** Cluster mode needs peer authentication (security-checks.ts): a token, as in production. */
const TOKEN = { WELDR_CLUSTER_TOKEN: 'feature-config-cluster-token-0123' };

function check(argv: readonly string[], env: Record<string, string> = {}): NodeConfig {
  const loaded = loadConfig({ argv, env: { ...TOKEN, ...env }, readFile: () => '{}' });
  if (loaded.help) throw new Error('help');
  return checkClusterConfig(loaded.config, loaded.sources.raft === 'default');
}
function refusal(argv: readonly string[], env: Record<string, string> = {}): string {
  try {
    check(argv, env);
  } catch (err) {
    return (err as Error).message;
  }
  return '(accepted)';
}

test('defaults: active-passive, stop on quorum loss, 5 s stale limit, no fault injection, no VIP', (t) => {
  const c = check(PEERS);
  t.like(c, { serve: 'active-passive', quorumLoss: 'stop', serveStaleLimit: 5000, faultInjection: false, vip: undefined, vipInterface: undefined });
});

test('values from flags, variables and the file', (t) => {
  const c = check([...PEERS, '--serve', 'all', '--serve-stale-limit', '2s', '--quorum-loss', 'keep-serving', '--fault-injection', 'on']);
  t.like(c, { serve: 'all', serveStaleLimit: 2000, quorumLoss: 'keep-serving', faultInjection: true });
  const v = check(PEERS, { WELDR_VIP: 'fd00::AB/64', WELDR_VIP_INTERFACE: 'eth0' });
  t.deepEqual(v.vip, { address: 'fd00::ab', prefix: 64, family: 6 });
  t.is(v.vipInterface, 'eth0');
  const f = loadConfig({ argv: ['--config', 'c.json'], env: TOKEN, readFile: () => '{"faultInjection": true, "vip": "10.0.0.100/24", "vipInterface": "br0"}' });
  t.like(!f.help && f.config, { faultInjection: true, vip: { address: '10.0.0.100', prefix: 24, family: 4 }, vipInterface: 'br0' });
});

const refused: [string, string[], RegExp][] = [
  ['unknown serve mode', ['--serve', 'both'], /--serve: "both" is not one of active-passive, all/],
  ['unknown quorum-loss choice', ['--quorum-loss', 'ignore'], /--quorum-loss: "ignore" is not one of stop, keep-serving/],
  ['fault injection neither on nor off', ['--fault-injection', 'maybe'], /--fault-injection: "maybe" is not one of on, off/],
  ['VIP without prefix', ['--vip', '10.0.0.100', '--vip-interface', 'eth0'], /--vip: "10.0.0.100" is not ADDRESS\/PREFIX/],
  ['VIP prefix out of range', ['--vip', '10.0.0.100/33', '--vip-interface', 'eth0'], /prefix \/33 is out of range \[1, 32\]/],
  ['VIP on loopback', ['--vip', '127.0.0.5/8', '--vip-interface', 'lo'], /cannot be a virtual IP/],
  ['VIP host name', ['--vip', 'vip.example/24', '--vip-interface', 'eth0'], /is not an IP address/],
  ['bad interface name', ['--vip', '10.0.0.100/24', '--vip-interface', 'eth0; rm -rf /'], /--vip-interface: .* is not an interface name/],
  ['VIP without interface', ['--vip', '10.0.0.100/24'], /--vip needs --vip-interface/],
  ['interface without VIP', ['--vip-interface', 'eth0'], /--vip-interface needs --vip/],
  ['VIP in all mode', ['--vip', '10.0.0.100/24', '--vip-interface', 'eth0', '--serve', 'all'], /--vip needs --serve active-passive/],
  // The admin API off loopback needs a token anyway (security-checks.ts); either rule speaks.
  ['fault injection off loopback without a token', ['--fault-injection', 'on', '--admin', '0.0.0.0:8687'], /needs --admin-token|has no token/],
];
for (const [name, argv, pattern] of refused) {
  test(`refused: ${name}`, (t) => {
    const message = refusal([...PEERS, ...argv]);
    t.regex(message, pattern);
    t.false(message.includes('\n'));
  });
}

test('fault injection needs cluster mode; off loopback it is accepted with a token', (t) => {
  t.regex(refusal(['--fault-injection', 'on', '--store', 'memory']), /--fault-injection on needs cluster mode/);
  t.true(check([...PEERS, '--fault-injection', 'on', '--admin', '0.0.0.0:8687'], { WELDR_ADMIN_TOKEN: 'a-long-enough-admin-token' }).faultInjection);
});
