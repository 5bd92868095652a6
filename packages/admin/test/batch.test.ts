// POST /servers/batch: all or nothing, one proposal (one log entry), validated first.
import test from 'ava';
import { startAdmin } from './harness.js';

const add = (ip: string, port: number, extra: Record<string, unknown> = {}) => ({ type: 'AddServer', ip, port, ...extra });

test('a batch applies every command in one proposal and answers each result', async (t) => {
  const h = await startAdmin(t);
  await h.pool.inner.propose({ type: 'AddServer', ip: '10.0.0.9', port: 80 });
  const r = await h.call('POST', '/servers/batch', {
    body: {
      commands: [
        { type: 'UpdateSettings', balancer: 'least-connections', healthCheck: { path: '/healthz' } },
        add('10.0.0.1', 80, { weight: 5 }),
        add('10.0.0.2', 80),
        { type: 'UpdateServer', ip: '10.0.0.2', port: 80, draining: true },
        { type: 'RemoveServer', ip: '10.0.0.9', port: '80' },
      ],
    },
  });
  t.is(r.status, 200, r.text);
  t.is(h.pool.proposals.length, 1);
  t.is(h.pool.proposals[0]?.command.type, 'Batch');
  t.is(r.headers['x-weldr-index'], '2');
  const results = (r.json as { results: { status: string }[] }).results;
  t.deepEqual(results.map((x) => x.status), ['settings', 'created', 'created', 'updated', 'removed']);
  t.like(results[1], { server: { id: '10.0.0.1:80', weight: 5, createdIndex: 2 } });
  t.like(results[0], { settings: { balancer: 'least-connections', healthCheck: { path: '/healthz' } } });
  const snap = h.pool.snapshot();
  t.deepEqual(snap.servers.map((s) => [s.id, s.weight, s.draining]), [['10.0.0.1:80', 5, false], ['10.0.0.2:80', 1, true]]);
  t.is(snap.settings.balancer, 'least-connections');
});

test('a batch with one malformed command is refused before anything is proposed', async (t) => {
  const h = await startAdmin(t);
  const r = await h.call('POST', '/servers/batch', { body: { commands: [add('10.0.0.1', 80), add('10.0.0.2', 80), add('10.0.0.3', 70000)] } });
  t.is(r.status, 400);
  t.like(r.json, { error: { code: 'INVALID_COMMAND', field: 'commands[2].port' } });
  t.is(h.pool.proposals.length, 0);
  t.deepEqual(h.pool.snapshot().servers, []);
  t.is(h.pool.snapshot().index, 0);
});

test('a batch whose command fails against the state changes nothing (404 / 409 name the command)', async (t) => {
  const h = await startAdmin(t);
  await h.pool.inner.propose({ type: 'AddServer', ip: '10.0.0.1', port: 80 });
  const before = h.pool.snapshot();
  const missing = await h.call('POST', '/servers/batch', {
    body: { commands: [add('10.0.0.2', 80), { type: 'UpdateSettings', balancer: 'power-of-two' }, { type: 'RemoveServer', ip: '10.0.0.7', port: 80 }] },
  });
  t.is(missing.status, 404, missing.text);
  t.like(missing.json, { error: { code: 'NOT_FOUND', field: 'commands[2]' } });
  t.regex((missing.json as { error: { message: string } }).error.message, /^commands\[2\]: .*10\.0\.0\.7:80/);
  const after = h.pool.snapshot();
  t.deepEqual(after.servers, before.servers);
  t.deepEqual(after.settings, before.settings);
  // A server override that contradicts the new defaults fails the same way.
  const invalid = await h.call('POST', '/servers/batch', {
    body: { commands: [add('10.0.0.3', 80, { healthCheck: { timeoutMs: 1500 } }), { type: 'UpdateSettings', healthCheck: { intervalMs: 1000 } }] },
  });
  t.is(invalid.status, 400, invalid.text);
  t.like(invalid.json, { error: { code: 'INVALID_COMMAND' } });
  t.deepEqual(h.pool.snapshot().servers, before.servers);
  t.deepEqual(h.pool.snapshot().settings, before.settings);
});

test('the body must be {"commands":[…]} of 1 to 1000 non-batch commands', async (t) => {
  const h = await startAdmin(t);
  const cases: [unknown, string][] = [
    [{ commands: [] }, 'commands'],
    [{ commands: 'AddServer' }, 'commands'],
    [{}, 'commands'],
    [{ commands: [add('10.0.0.1', 80)], atomic: true }, 'atomic'],
    [{ commands: [{ type: 'Batch', commands: [add('10.0.0.1', 80)] }] }, 'commands[0].type'],
    [{ commands: [{ type: 'Frobnicate' }] }, 'commands[0].type'],
    [{ commands: [{ ip: '10.0.0.1', port: 80 }] }, 'commands[0].type'],
    [{ commands: Array.from({ length: 1001 }, (_, i) => add('10.0.0.1', 1 + i)) }, 'commands'],
  ];
  for (const [body, field] of cases) {
    const r = await h.call('POST', '/servers/batch', { body });
    t.is(r.status, 400, JSON.stringify(body).slice(0, 80));
    t.like(r.json, { error: { field } }, JSON.stringify(body).slice(0, 80));
  }
  t.is(h.pool.proposals.length, 0);
});

test('a batch of 1000 servers (over the 64 KiB single-write limit) is accepted; more than 1 MiB is 413', async (t) => {
  const h = await startAdmin(t);
  const commands = Array.from({ length: 1000 }, (_, i) => add(`10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`, 8080, { weight: 1 + (i % 7), healthCheck: { path: '/health/check' } }));
  t.true(JSON.stringify({ commands }).length > 64 * 1024);
  const r = await h.call('POST', '/servers/batch', { body: { commands } });
  t.is(r.status, 200, r.text.slice(0, 200));
  t.is(h.pool.snapshot().servers.length, 1000);
  const huge = await h.call('POST', '/servers/batch', { body: { commands: [add('10.0.0.1', 80, { healthCheck: { path: `/${'x'.repeat(1100 * 1024)}` } })] } });
  t.is(huge.status, 413);
});

test("a batch that adds this node's own listener is refused whole, naming the command", async (t) => {
  const h = await startAdmin(t, { ownListenerAt: (ip, port) => (ip === '127.0.0.1' && port === 8080 ? 'proxy' : undefined) });
  const r = await h.call('POST', '/servers/batch', { body: { commands: [add('127.0.0.1', 8081), add('127.0.0.1', '8080' as unknown as number)] } });
  t.is(r.status, 400);
  t.like(r.json, { error: { code: 'INVALID_COMMAND', field: 'commands[1].port' } });
  t.regex((r.json as { error: { message: string } }).error.message, /^commands\[1\]\.127\.0\.0\.1:8080 is this node's own proxy listener/);
  t.is(h.pool.proposals.length, 0);
});

test('a batch retried with the same Idempotency-Key is applied once', async (t) => {
  const h = await startAdmin(t);
  const body = { commands: [add('10.0.0.1', 80), { type: 'UpdateServer', ip: '10.0.0.1', port: 80, weight: 3 }] };
  const first = await h.call('POST', '/servers/batch', { body, headers: { 'idempotency-key': 'import-1' } });
  const second = await h.call('POST', '/servers/batch', { body, headers: { 'idempotency-key': 'import-1' } });
  t.is(first.status, 200);
  t.is(second.status, 200);
  t.is(second.headers['idempotent-replayed'], 'true');
  t.deepEqual(second.json, first.json);
  t.is(second.headers['x-weldr-index'], first.headers['x-weldr-index']);
  t.deepEqual(h.pool.snapshot().servers.map((s) => [s.id, s.weight, s.updatedIndex]), [['10.0.0.1:80', 3, 1]]);
});
