// The resource-limit settings (issue 9 item 5): defaults, `auto`, and bad values.
import test from 'ava';
import { ConfigError, loadConfig, type LoadedConfig } from '../src/index.js';
import { autoMaxConnections, openFileLimit } from '../src/config/fd-limit.js';

function load(argv: string[], env: Record<string, string> = {}): LoadedConfig {
  const result = loadConfig({ argv, env, readFile: () => '{}' });
  if (result.help) throw new Error('unexpected help');
  return result;
}

test('openFileLimit reads the soft limit from /proc/self/limits', (t) => {
  const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 1048576              files\n';
  t.is(openFileLimit(() => limits), 1024);
  t.is(openFileLimit(() => limits.replace('1024 ', 'unlimited ')), Number.MAX_SAFE_INTEGER);
  t.is(openFileLimit(() => 'nothing here'), undefined);
  t.is(
    openFileLimit(() => {
      throw new Error('ENOENT');
    }),
    undefined,
  );
});

test('auto max connections: half of what the open-file limit leaves, between 64 and 10000', (t) => {
  t.is(autoMaxConnections(1024), 384);
  t.is(autoMaxConnections(256), 64);
  t.is(autoMaxConnections(1_048_576), 10_000);
  t.is(autoMaxConnections(Number.MAX_SAFE_INTEGER), 10_000);
});

test('limit defaults: auto connections, a quarter of them per source, depth 32, 512 per origin, 512 B/s after 10 s', (t) => {
  const { config } = load([]);
  t.is(config.maxConnections, autoMaxConnections());
  t.is(config.maxConnectionsPerSource, Math.floor(autoMaxConnections() / 4));
  t.is(config.maxPipelineDepth, 32);
  t.is(config.originMaxConnections, 512);
  t.is(config.clientBodyMinRate, 512);
  t.is(config.clientBodyRateGrace, 10_000);
});

test('limit flags and variables: explicit values, auto, and the per-source default following --max-connections', (t) => {
  const { config } = load(['--max-connections', '1000', '--max-pipeline-depth', '4', '--origin-max-connections', '8', '--client-body-min-rate', '0', '--client-body-rate-grace', '2s']);
  t.is(config.maxConnections, 1000);
  t.is(config.maxConnectionsPerSource, 250);
  t.is(config.maxPipelineDepth, 4);
  t.is(config.originMaxConnections, 8);
  t.is(config.clientBodyMinRate, 0);
  t.is(config.clientBodyRateGrace, 2000);
  t.is(load(['--max-connections', 'auto']).config.maxConnections, autoMaxConnections());
  t.is(load([], { WELDR_MAX_CONNECTIONS_PER_SOURCE: '0' }).config.maxConnectionsPerSource, 0);
});

test('bad limit values are refused with the flag named', (t) => {
  for (const [argv, flag] of [
    [['--max-connections', '0'], '--max-connections'],
    [['--max-connections', 'lots'], '--max-connections'],
    [['--max-pipeline-depth', '0'], '--max-pipeline-depth'],
    [['--origin-max-connections', '70000'], '--origin-max-connections'],
    [['--client-body-min-rate', '-1'], '--client-body-min-rate'],
  ] as const) {
    const err = t.throws(() => load([...argv]), { instanceOf: ConfigError });
    t.true(err!.message.includes(flag), err!.message);
  }
});
