// The `weldr` command line as a user meets it, with real processes: help, version, and a
// configuration mistake refused with exit code 2, one clear line, and nothing started.
// Every kind of mistake is covered in-process (packages/node/test/usage-errors.test.ts);
// here a few of each source (flag, environment, config file, unknown command) check the
// path from ConfigError to the exit code. Serial: one weldr process at a time, so a
// loaded 2-core machine starts each well within its bound.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runWeldr } from './helpers/process.js';

test.serial('weldr --help lists the commands; no command is a usage error', async (t) => {
  const help = await runWeldr(t, ['--help']);
  t.is(help.code, 0);
  for (const command of ['weldr start', 'weldr test-server', 'weldr dev-cluster', 'weldr servers', 'weldr cluster', 'weldr member', 'weldr settings', 'weldr stats', 'weldr snapshot']) {
    t.true(help.stdout.includes(command), command);
  }
  const none = await runWeldr(t, []);
  t.is(none.code, 2);
});

test.serial('weldr start --help documents every flag with its variable and default', async (t) => {
  const { code, stdout } = await runWeldr(t, ['start', '--help']);
  t.is(code, 0);
  for (const [flag, env] of [['--listen', 'WELDR_LISTEN'], ['--admin', 'WELDR_ADMIN'], ['--data', 'WELDR_DATA'], ['--peers', 'WELDR_PEERS'], ['--shutdown-timeout', 'WELDR_SHUTDOWN_TIMEOUT']]) {
    t.true(stdout.includes(flag!), flag);
    t.true(stdout.includes(env!), env);
  }
  t.regex(stdout, /default 0\.0\.0\.0:8080/);
});

test.serial('weldr --version prints the version', async (t) => {
  const { code, stdout } = await runWeldr(t, ['--version']);
  t.is(code, 0);
  t.regex(stdout, /^weldr \d+\.\d+\.\d+\n$/);
});

const tmp = mkdtempSync(join(tmpdir(), 'weldr-cli-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));
const configFile = join(tmp, 'bad.json');
writeFileSync(configFile, '{"listen":');

const badInvocations: [string, string[], Record<string, string>, RegExp][] = [
  ['unknown command', ['frobnicate'], {}, /unknown command "frobnicate"/],
  ['unknown flag', ['start', '--lissen', '127.0.0.1:0'], {}, /unknown option --lissen/],
  ['bad environment variable', ['start'], { WELDR_ADMIN: 'x:y' }, /WELDR_ADMIN/],
  ['bad JSON in config file', ['start', '--config', configFile], {}, /is not valid JSON/],
  ['cluster mode with a memory store', ['start', '--peers', 'n2=127.0.0.1:9999', '--store', 'memory'], { WELDR_CLUSTER_TOKEN: 'cli-test-cluster-token-0123' }, /cluster mode .* needs --store level/],
  ['cluster mode without peer authentication', ['start', '--peers', 'n1=127.0.0.1:7001,n2=127.0.0.1:7002'], {}, /cluster mode needs peer authentication: .*WELDR_CLUSTER_TOKEN.*--insecure-peers/],
  ['a peer certificate that is not there', ['start', '--peers', 'n1=127.0.0.1:7001,n2=127.0.0.1:7002', '--peer-cert', '/nonexistent/p.pem', '--peer-key', '/nonexistent/k.pem', '--peer-ca', '/nonexistent/ca.pem', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {}, /cannot read --peer-cert \/nonexistent\/p\.pem: ENOENT/],
  ['certs init without --nodes', ['certs', 'init', '--dir', '/tmp/x'], {}, /--nodes is required/],
  ['--join with a memory store', ['start', '--join', 'http://127.0.0.1:8687', '--store', 'memory'], { WELDR_CLUSTER_TOKEN: 'cli-test-cluster-token-0123' }, /cluster mode \(--join\) needs --store level/],
  ['--join that is not an admin URL', ['start', '--join', '127.0.0.1:8687'], { WELDR_CLUSTER_TOKEN: 'cli-test-cluster-token-0123' }, /--join: "127\.0\.0\.1:8687" is not an admin URL/],
  ['--restore with other --peers', ['start', '--id', 'n1', '--restore', 'b.json', '--peers', 'n2=127.0.0.1:7002'], { WELDR_CLUSTER_TOKEN: 'cli-test-cluster-token-0123' }, /--restore seeds a new cluster with this node as its only member; leave --peers out/],
  ['--restore and --join together', ['start', '--restore', 'b.json', '--join', 'http://127.0.0.1:8687'], { WELDR_CLUSTER_TOKEN: 'cli-test-cluster-token-0123' }, /give one of them/],
  ['--raft-advertise disagrees with the node\'s own --peers entry', ['start', '--id', 'n1', '--peers', 'n1=127.0.0.1:7001,n2=127.0.0.1:7002', '--raft-advertise', '127.0.0.1:7009'], { WELDR_CLUSTER_TOKEN: 'cli-test-cluster-token-0123' }, /--peers gives n1 the address 127\.0\.0\.1:7001 but --raft-advertise is 127\.0\.0\.1:7009/],
  // The lease that fences the active role must last two heartbeats: 175 ms is the least with 50 ms heartbeats.
  ['an election timeout whose lease is under two heartbeats', ['start', '--raft-election-timeout', '174ms'], {}, /--raft-election-timeout 174ms with --raft-heartbeat 50ms gives the active node a lease of 1 heartbeat; it needs at least 2: use an election timeout of at least 175ms/],
  ['test-server bad port', ['test-server', '--port', '99999'], {}, /out of range/],
  ['dev-cluster port lists of different lengths', ['dev-cluster', '--proxy-ports', '1,2'], {}, /one port per member/],
];

for (const [name, args, env, pattern] of badInvocations) {
  test.serial(`exit 2 with one clear line: ${name}`, async (t) => {
    const { code, stdout, stderr } = await runWeldr(t, args, env);
    t.is(code, 2, stderr);
    t.regex(stderr, pattern);
    t.is(stderr.trim().split('\n').length, 1, stderr);
    t.false(/"event":"listening"/.test(stdout), 'nothing was started');
  });
}

// `npm start` (weldr dev-cluster) keeps member n1's data in ./data/n1, which is also
// `weldr start`'s default: a new user's next command. The refusal says how to run that
// member and how to run a single node instead, and is a configuration mistake (exit 2:
// the systemd unit does not restart it in a loop).
test.serial('a data directory of a cluster member, started without peer authentication: exit 2, and the line says to give a single node another --data', async (t) => {
  const data = join(tmp, 'member-n1');
  mkdirSync(data);
  writeFileSync(join(data, 'weldr.json'), JSON.stringify({ format: 1, nodeId: 'n1', createdAt: new Date().toISOString(), cluster: { member: 'n1', incarnation: '4f8b6b1fb9682681' } }));
  const { code, stdout, stderr } = await runWeldr(t, ['start', '--data', data, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { WELDR_CLUSTER_TOKEN: '', WELDR_CLUSTER_TOKEN_FILE: '' });
  t.is(code, 2, stderr);
  t.regex(stderr, /belongs to a cluster member .*weldr dev-cluster.*WELDR_CLUSTER_TOKEN.*to run a new single node instead, give it another data directory \(--data DIR\)/);
  t.is(stderr.trim().split('\n').length, 1, stderr);
  t.false(/"event":"listening"/.test(stdout), 'nothing was started');
});
