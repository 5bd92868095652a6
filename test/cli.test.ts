// The `weldr` command line as a user meets it: help, version, and every kind of bad
// configuration refused with exit code 2, one clear line, and nothing started.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runWeldr } from './helpers/process.js';

test('weldr --help lists the commands; no command is a usage error', async (t) => {
  const help = await runWeldr(t, ['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /weldr start/);
  t.regex(help.stdout, /weldr test-server/);
  const none = await runWeldr(t, []);
  t.is(none.code, 2);
});

test('weldr start --help documents every flag with its variable and default', async (t) => {
  const { code, stdout } = await runWeldr(t, ['start', '--help']);
  t.is(code, 0);
  for (const [flag, env] of [['--listen', 'WELDR_LISTEN'], ['--admin', 'WELDR_ADMIN'], ['--data', 'WELDR_DATA'], ['--peers', 'WELDR_PEERS'], ['--shutdown-timeout', 'WELDR_SHUTDOWN_TIMEOUT']]) {
    t.true(stdout.includes(flag!), flag);
    t.true(stdout.includes(env!), env);
  }
  t.regex(stdout, /default 0\.0\.0\.0:8080/);
});

test('weldr --version prints the version', async (t) => {
  const { code, stdout } = await runWeldr(t, ['--version']);
  t.is(code, 0);
  t.regex(stdout, /^weldr \d+\.\d+\.\d+\n$/);
});

const tmp = mkdtempSync(join(tmpdir(), 'weldr-cli-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
};

const badInvocations: [string, string[], Record<string, string>, RegExp][] = [
  ['unknown command', ['frobnicate'], {}, /unknown command "frobnicate"/],
  ['unknown flag', ['start', '--lissen', '127.0.0.1:0'], {}, /unknown option --lissen/],
  ['bad host:port flag', ['start', '--listen', 'localhost'], {}, /--listen: "localhost" is not a valid host:port/],
  ['port out of range', ['start', '--admin', '127.0.0.1:70000'], {}, /--admin: port 70000 .*out of range/],
  ['mistyped IPv4 address (not resolved as a host name)', ['start', '--admin', '999.1.1.1:8687'], {}, /--admin: "999.1.1.1" in "999.1.1.1:8687" is not a valid IPv4 address/],
  ['proxy and admin API on one port', ['start', '--store', 'memory', '--listen', '127.0.0.1:29555', '--admin', '127.0.0.1:29555'], {}, /the proxy \(listen 127.0.0.1:29555\) and the admin API \(admin 127.0.0.1:29555\) cannot share port 29555/],
  ['flag value starting with a dash', ['start', '--shutdown-timeout', '-5s'], {}, /--shutdown-timeout needs a value \(for a value starting with '-', write --shutdown-timeout=VALUE\)/],
  ['bad environment variable', ['start'], { WELDR_ADMIN: 'x:y' }, /WELDR_ADMIN/],
  ['bad store kind', ['start', '--store', 'disk'], {}, /--store: "disk" is not one of level, memory/],
  ['bad duration', ['start', '--shutdown-timeout', 'soon'], {}, /--shutdown-timeout/],
  ['missing config file', ['start', '--config', '/nonexistent/weldr.json'], {}, /cannot read config file \/nonexistent\/weldr.json/],
  ['bad JSON in config file', ['start', '--config', file('bad.json', '{"listen":')], {}, /is not valid JSON/],
  ['key repeated in config file', ['start', '--config', file('dup.json', '{"listen":"127.0.0.1:0","listen":"127.0.0.1:1"}')], {}, /key "listen" appears more than once in config file/],
  ['unknown config key', ['start', '--config', file('key.json', '{"listen":"127.0.0.1:0","adminn":"x"}')], {}, /unknown key "adminn"/],
  ['bad value in config file', ['start'], { WELDR_CONFIG: file('val.json', '{"raft":"127.0.0.1:-1"}') }, /"raft" in .*val.json/],
  ['--raft disagrees with the node\'s own --peers entry', ['start', '--id', 'n1', '--peers', 'n1=127.0.0.1:7001,n2=127.0.0.1:7002', '--raft', '127.0.0.1:7003'], {}, /--peers gives n1 the address 127\.0\.0\.1:7001 but --raft is 127\.0\.0\.1:7003/],
  // A wildcard --raft with the same port as the node's own entry is fine (the next rule speaks).
  ['--raft on a wildcard agrees with the own --peers entry by port', ['start', '--id', 'n1', '--peers', 'n1=weldr-0.peers:7001,n2=127.0.0.1:7002', '--raft', '0.0.0.0:7001', '--store', 'memory'], {}, /cluster mode .* needs --store level/],
  ['cluster mode with a memory store', ['start', '--peers', 'n2=127.0.0.1:9999', '--store', 'memory'], {}, /cluster mode .* needs --store level/],
  ['--join with a memory store', ['start', '--join', 'http://127.0.0.1:8687', '--store', 'memory'], {}, /cluster mode \(--join\) needs --store level/],
  ['--join that is not an admin URL', ['start', '--join', '127.0.0.1:8687'], {}, /--join: "127\.0\.0\.1:8687" is not an admin URL/],
  ['--restore with other --peers', ['start', '--id', 'n1', '--restore', 'b.json', '--peers', 'n2=127.0.0.1:7002'], {}, /--restore seeds a new cluster with this node as its only member; leave --peers out/],
  ['--restore and --join together', ['start', '--restore', 'b.json', '--join', 'http://127.0.0.1:8687'], {}, /give one of them/],
  ['--raft-advertise disagrees with the node\'s own --peers entry', ['start', '--id', 'n1', '--peers', 'n1=127.0.0.1:7001,n2=127.0.0.1:7002', '--raft-advertise', '127.0.0.1:7009'], {}, /--peers gives n1 the address 127\.0\.0\.1:7001 but --raft-advertise is 127\.0\.0\.1:7009/],
  ['test-server bad port', ['test-server', '--port', '99999'], {}, /out of range/],
  ['test-server unknown flag', ['test-server', '--verbose'], {}, /unknown option --verbose/],
];

for (const [name, args, env, pattern] of badInvocations) {
  test(`exit 2 with one clear line: ${name}`, async (t) => {
    const { code, stdout, stderr } = await runWeldr(t, args, env);
    t.is(code, 2, stderr);
    t.regex(stderr, pattern);
    t.is(stderr.trim().split('\n').length, 1, stderr);
    t.false(/"event":"listening"/.test(stdout), 'nothing was started');
  });
}
