// `weldr start` really takes its settings from a config file and the environment, with
// flags winning (the precedence itself is unit-tested in packages/node/test).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { addOrigin, adminCall } from './helpers/admin.js';
import { makeTempDir, startNode } from './helpers/node.js';
import { startOrigin } from './helpers/origins.js';
import { rawExchange } from './helpers/raw-http.js';
import { fetchVia, waitForRouting } from './helpers/routing.js';

test('settings from a config file and WELDR_* variables; flags win', async (t) => {
  const dir = makeTempDir(t);
  const configFile = join(dir, 'weldr.json');
  writeFileSync(configFile, JSON.stringify({ id: 'from-file', store: 'memory', balancer: 'least-connections', clientHeadersTimeout: '400ms', logLevel: 'debug' }));
  const node = await startNode(t, { id: 'from-flag', args: ['--config', configFile], env: { WELDR_LOG_LEVEL: 'info', WELDR_ID: 'from-env' } });

  const starting = node.proc.lines.find((l) => l.event === 'starting') as { config: Record<string, unknown>; sources: Record<string, string> };
  t.is(starting.config.id, 'from-flag');
  t.like(starting.sources, { id: 'flag', store: 'flag', balancer: 'file', clientHeadersTimeout: 'file', logLevel: 'env' });
  t.false(node.proc.lines.some((l) => l.level === 20), 'debug lines are off: WELDR_LOG_LEVEL beats the file');
  t.true(node.proc.lines.every((l) => l.nodeId === 'from-flag'));

  // --balancer / "balancer" is applied to the replicated settings at start.
  t.truthy(node.proc.lines.find((l) => l.event === 'balancer_set' && l.balancer === 'least-connections'));

  // clientHeadersTimeout from the file reaches the proxy: a stalled request head gets 408.
  const origin = await startOrigin(t, 'cfg-a');
  await addOrigin(node, origin);
  await waitForRouting(node, ['cfg-a']);
  const { text } = await rawExchange(node.proxyPort, 'GET / HTTP/1.1\r\nHost: e2e\r\nX-Stalled: ', { timeoutMs: 10_000 });
  t.regex(text, /^HTTP\/1\.1 408 /);
  t.is((await fetchVia(node, '/')).status, 200);
  t.is((await adminCall(node, 'GET', '/health')).status, 200);
});

test('a WELDR_* variable that names no setting (a typo) is reported in the log, not silently ignored', async (t) => {
  const node = await startNode(t, { store: 'memory', env: { WELDR_ADMN: '0.0.0.0:9', WELDR_LOG_LEVEL: 'info' } });
  const warning = node.proc.lines.find((l) => l.event === 'unknown_env') as { level: number; names: string[] } | undefined;
  t.is(warning?.level, 40);
  t.true(warning?.names.includes('WELDR_ADMN'));
  t.false(warning?.names.includes('WELDR_LOG_LEVEL'));
});
