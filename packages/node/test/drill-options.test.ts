// `weldr drill` options: every mistake is a ConfigError (exit 2, nothing contacted).
import test from 'ava';
import { ConfigError } from '../src/config/config-error.js';
import { parseDrillOptions, seededRandom, vipUrl } from '../src/drill/options.js';
import { viaNode } from '../src/drill/observers.js';

type Values = Parameters<typeof parseDrillOptions>[0];

test('defaults: 3 rounds, 2 s apart, traffic to the active member, PIDs from dev-cluster for kill/pause', (t) => {
  const o = parseDrillOptions({ kind: 'kill' }, () => 0.5);
  t.like(o, { kind: 'kill', rounds: 3, intervalMs: 2000, faultMs: 3000, roundTimeoutMs: 20_000, healTimeoutMs: 60_000, slowMs: 500, rate: 100, seed: 2 ** 30, quiet: false });
  t.deepEqual(o.target, { kind: 'members' });
  t.deepEqual(o.pids, { kind: 'file', path: './data/dev-cluster.pids' });
  t.deepEqual(o.thresholds, {});
  t.is(parseDrillOptions({ kind: 'transfer' }).pids, undefined);
});

test('every flag', (t) => {
  const values: Values = {
    kind: 'pause', rounds: '10', interval: '500ms', seed: '42', 'fault-duration': '5s', 'round-timeout': '30s', 'heal-timeout': '2m', slow: '1s',
    vip: '10.213.0.100:8080', pids: 'n1=100,n2=200,n3=300', rate: '50', 'max-failover': '1s', 'max-served': '1500ms', 'max-write': '2s',
    'max-failed-requests': '10', 'max-failed-writes': '0', quiet: true,
  };
  const o = parseDrillOptions(values);
  t.like(o, { kind: 'pause', rounds: 10, intervalMs: 500, seed: 42, faultMs: 5000, roundTimeoutMs: 30_000, healTimeoutMs: 120_000, slowMs: 1000, rate: 50, quiet: true });
  t.deepEqual(o.target, { kind: 'vip', url: 'http://10.213.0.100:8080/' });
  t.deepEqual(o.pids, { kind: 'list', pids: new Map([['n1', 100], ['n2', 200], ['n3', 300]]) });
  t.deepEqual(o.thresholds, { maxFailoverMs: 1000, maxServedMs: 1500, maxWriteMs: 2000, maxFailedRequests: 10, maxFailedWrites: 0 });
  t.deepEqual(parseDrillOptions({ kind: 'isolate', target: ['127.0.0.1:8080', 'http://lb.example/health'] }).target, { kind: 'urls', urls: ['http://127.0.0.1:8080/', 'http://lb.example/health'] });
  t.deepEqual(parseDrillOptions({ kind: 'kill', pids: '/run/weldr.pids' }).pids, { kind: 'file', path: '/run/weldr.pids' });
});

test('--vip forms', (t) => {
  t.is(vipUrl('10.0.0.100'), 'http://10.0.0.100:80/');
  t.is(vipUrl('[fd00::100]:8080'), 'http://[fd00::100]:8080/');
  t.is(vipUrl('fd00::100'), 'http://[fd00::100]:80/');
});

const mistakes: [string, Values, RegExp][] = [
  ['no kind', {}, /needs --kind: one of transfer, step-down, isolate, kill, pause/],
  ['unknown kind', { kind: 'reboot' }, /--kind: "reboot" is not one of/],
  ['zero rounds', { kind: 'kill', rounds: '0' }, /--rounds: "0" is not a whole number in \[1, 1000\]/],
  ['bad duration', { kind: 'kill', interval: 'soon' }, /--interval/],
  ['target and vip', { kind: 'kill', target: ['http://a/'], vip: '10.0.0.1' }, /either --target or --vip/],
  ['https target', { kind: 'kill', target: ['https://a/'] }, /must be an http:\/\/ URL/],
  ['vip host name', { kind: 'kill', vip: 'vip.example' }, /is not an IP address/],
  ['pids for an admin-API kind', { kind: 'step-down', pids: 'n1=1' }, /--pids is for --kind kill and pause/],
  ['bad pid list', { kind: 'pause', pids: 'n1=abc,n2=2' }, /--pids: "n1=abc" is not ID=PID/],
  ['bad seed', { kind: 'kill', seed: '-1' }, /--seed/],
  ['bad threshold', { kind: 'kill', 'max-failed-writes': 'many' }, /--max-failed-writes/],
];
for (const [name, values, pattern] of mistakes) {
  test(`refused: ${name}`, (t) => {
    const err = t.throws(() => parseDrillOptions(values), { instanceOf: ConfigError });
    t.regex(err!.message, pattern);
  });
}

test('the seeded generator repeats itself', (t) => {
  const a = seededRandom(7);
  const b = seededRandom(7);
  const xs = Array.from({ length: 5 }, () => a());
  t.deepEqual(xs, Array.from({ length: 5 }, () => b()));
  t.true(xs.every((x) => x >= 0 && x < 1));
  t.notDeepEqual(xs, Array.from({ length: 5 }, seededRandom(8)));
});

test('the serving node is read from the Via header weldr adds', (t) => {
  t.is(viaNode('1.1 n2 (weldr/ab12cd34)'), 'n2');
  t.is(viaNode('1.0 squid, 1.1 weldr-0 (weldr/00ff00ff)'), 'weldr-0');
  t.is(viaNode(['1.1 other-proxy', '1.1 n3 (weldr/1)']), 'n3');
  t.is(viaNode('1.1 someproxy'), null);
  t.is(viaNode(undefined), null);
});
