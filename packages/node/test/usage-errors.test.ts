// Every kind of bad `weldr start` / `weldr test-server` invocation is refused with a
// ConfigError: one line that names the flag, variable or key at fault. In-process: what
// is tested is the validation, not process start-up (test/cli.test.ts checks, with real
// processes, that a ConfigError becomes exit 2 and one line on stderr, nothing started).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { checkClusterConfig, ConfigError, loadConfig, parseTestServerArgs } from '../src/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'weldr-usage-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
};

/** What `weldr <args>` validates before starting anything; the ConfigError it throws. */
function usageError(args: readonly string[], env: Record<string, string>): unknown {
  try {
    const [command, ...rest] = args;
    if (command === 'test-server') {
      parseTestServerArgs(rest);
    } else {
      const loaded = loadConfig({ argv: rest, env });
      if (!loaded.help) checkClusterConfig(loaded.config, loaded.sources.raft === 'default');
    }
  } catch (err) {
    return err;
  }
  return undefined;
}

const badInvocations: [string, string[], Record<string, string>, RegExp][] = [
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
  ["--raft disagrees with the node's own --peers entry", ['start', '--id', 'n1', '--peers', 'n1=127.0.0.1:7001,n2=127.0.0.1:7002', '--raft', '127.0.0.1:7003'], { WELDR_CLUSTER_TOKEN: 'cli-test-cluster-token-0123' }, /--peers gives n1 the address 127\.0\.0\.1:7001 but --raft is 127\.0\.0\.1:7003/],
  // A wildcard --raft with the same port as the node's own entry is fine (the next rule speaks).
  ['--raft on a wildcard agrees with the own --peers entry by port', ['start', '--id', 'n1', '--peers', 'n1=weldr-0.peers:7001,n2=127.0.0.1:7002', '--raft', '0.0.0.0:7001', '--store', 'memory'], { WELDR_CLUSTER_TOKEN: 'cli-test-cluster-token-0123' }, /cluster mode .* needs --store level/],
  ['cluster mode with a memory store', ['start', '--peers', 'n2=127.0.0.1:9999', '--store', 'memory'], { WELDR_CLUSTER_TOKEN: 'cli-test-cluster-token-0123' }, /cluster mode .* needs --store level/],
  ['cluster mode without peer authentication', ['start', '--peers', 'n1=127.0.0.1:7001,n2=127.0.0.1:7002'], {}, /cluster mode needs peer authentication/],
  ['--insecure-peers off loopback', ['start', '--peers', 'n1=10.0.0.1:7001,n2=10.0.0.2:7002', '--insecure-peers'], {}, /--insecure-peers is allowed only when every member is on loopback/],
  ['an admin API off loopback without a token', ['start', '--admin', '0.0.0.0:8687'], {}, /the admin API on 0\.0\.0\.0:8687 is reachable from other hosts and has no token/],
  ['half of peer TLS', ['start', '--peer-cert', 'p.pem'], {}, /peer TLS needs --peer-cert, --peer-key, --peer-ca together/],
  ['an election timeout of twice the heartbeat (no lease at all)', ['start', '--store', 'memory', '--raft-heartbeat', '100ms'], { WELDR_RAFT_ELECTION_TIMEOUT: '200ms' }, /lease of 0 heartbeats; it needs at least 2: use an election timeout of at least 350ms/],
  ['an election timeout whose lease is one heartbeat, in a config file', ['start', '--config', file('timers.json', '{"raftHeartbeat":"50ms","raftElectionTimeout":"174ms"}')], {}, /--raft-election-timeout 174ms with --raft-heartbeat 50ms gives the active node a lease of 1 heartbeat; it needs at least 2: use an election timeout of at least 175ms/],
  ['test-server bad port', ['test-server', '--port', '99999'], {}, /out of range/],
  ['test-server unknown flag', ['test-server', '--verbose'], {}, /unknown option --verbose/],
];

for (const [name, args, env, pattern] of badInvocations) {
  test(`refused with one clear line: ${name}`, (t) => {
    const err = usageError(args, env);
    t.true(err instanceof ConfigError, String(err));
    const message = (err as ConfigError).message;
    t.regex(message, pattern);
    t.false(message.includes('\n'), message);
  });
}

test('a good cluster configuration (with a cluster token) passes the same checks', (t) => {
  t.is(usageError(['start', '--id', 'n1', '--peers', 'n1=127.0.0.1:7001,n2=127.0.0.1:7002'], { WELDR_CLUSTER_TOKEN: 'cli-test-cluster-token-0123' }), undefined);
});
