import test from 'ava';
import { startAdmin, type CallOptions } from './harness.js';

interface Case {
  readonly name: string;
  readonly method?: string;
  readonly path?: string;
  readonly request: CallOptions;
  readonly status: number;
  readonly code: string;
  readonly field?: string;
}

const post = (name: string, body: unknown, code: string, field?: string, status = 400): Case => ({
  name,
  request: { body },
  status,
  code,
  ...(field === undefined ? {} : { field }),
});

const cases: Case[] = [
  // body framing and media type
  post('malformed JSON', '{"ip": "10.0.0.1",', 'INVALID_JSON'),
  post('trailing garbage', '{"ip":"10.0.0.1","port":80} x', 'INVALID_JSON'),
  post('empty body', '', 'INVALID_JSON'),
  post('JSON array', '[{"ip":"10.0.0.1","port":80}]', 'INVALID_JSON'),
  post('JSON null', 'null', 'INVALID_JSON'),
  post('JSON string', '"10.0.0.1:80"', 'INVALID_JSON'),
  post('duplicate key', '{"ip":"10.0.0.1","port":80,"port":8080}', 'INVALID_JSON'),
  post('duplicate key, one escaped', '{"ip":"10.0.0.1","port":80,"\\u0070ort":8080}', 'INVALID_JSON'),
  post('duplicate key in a nested object', '{"ip":"10.0.0.1","port":80,"healthCheck":{"path":"/a","path":"/b"}}', 'INVALID_JSON'),
  post('invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 'INVALID_JSON'),
  { name: 'text/plain', request: { body: '{"ip":"10.0.0.1","port":80}', headers: { 'content-type': 'text/plain' } }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'multipart', request: { body: 'x', headers: { 'content-type': 'multipart/form-data; boundary=x' } }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'latin-1 charset', request: { body: '{}', headers: { 'content-type': 'application/json; charset=iso-8859-1' } }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'gzip body', request: { body: '{}', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  // fields
  post('type in the body', { type: 'RemoveServer', ip: '10.0.0.1', port: 80 }, 'INVALID_COMMAND', 'type'),
  post('unknown field', { ip: '10.0.0.1', port: 80, wieght: 2 }, 'INVALID_COMMAND', 'wieght'),
  post('draining on create', { ip: '10.0.0.1', port: 80, draining: true }, 'INVALID_COMMAND', 'draining'),
  post('__proto__ key', '{"ip":"10.0.0.1","port":80,"__proto__":{"weight":9}}', 'INVALID_COMMAND', '__proto__'),
  post('missing ip', { port: 80 }, 'INVALID_COMMAND', 'ip'),
  post('missing port', { ip: '10.0.0.1' }, 'INVALID_COMMAND', 'port'),
  post('hostname', { ip: 'localhost', port: 80 }, 'INVALID_COMMAND', 'ip'),
  post('ip with port', { ip: '10.0.0.1:80', port: 80 }, 'INVALID_COMMAND', 'ip'),
  post('IPv4 with leading zero', { ip: '010.0.0.1', port: 80 }, 'INVALID_COMMAND', 'ip'),
  post('IPv6 zone', { ip: 'fe80::1%eth0', port: 80 }, 'INVALID_COMMAND', 'ip'),
  post('unspecified address', { ip: '0.0.0.0', port: 80 }, 'INVALID_COMMAND', 'ip'),
  post('ip number', { ip: 167_772_161, port: 80 }, 'INVALID_COMMAND', 'ip'),
  post('port 0', { ip: '10.0.0.1', port: 0 }, 'INVALID_COMMAND', 'port'),
  post('port 65536', { ip: '10.0.0.1', port: '65536' }, 'INVALID_COMMAND', 'port'),
  post('port "http"', { ip: '10.0.0.1', port: 'http' }, 'INVALID_COMMAND', 'port'),
  post('port 80.5', { ip: '10.0.0.1', port: 80.5 }, 'INVALID_COMMAND', 'port'),
  post('port null', { ip: '10.0.0.1', port: null }, 'INVALID_COMMAND', 'port'),
  post('weight 0', { ip: '10.0.0.1', port: 80, weight: 0 }, 'INVALID_COMMAND', 'weight'),
  post('weight 1001', { ip: '10.0.0.1', port: 80, weight: 1001 }, 'INVALID_COMMAND', 'weight'),
  post('weight as string', { ip: '10.0.0.1', port: 80, weight: '5' }, 'INVALID_COMMAND', 'weight'),
  post('healthCheck not an object', { ip: '10.0.0.1', port: 80, healthCheck: 'GET /' }, 'INVALID_COMMAND', 'healthCheck'),
  post('healthCheck unknown field', { ip: '10.0.0.1', port: 80, healthCheck: { url: '/' } }, 'INVALID_COMMAND', 'healthCheck.url'),
  post('healthCheck.enabled', { ip: '10.0.0.1', port: 80, healthCheck: { enabled: 1 } }, 'INVALID_COMMAND', 'healthCheck.enabled'),
  post('healthCheck.method', { ip: '10.0.0.1', port: 80, healthCheck: { method: 'POST' } }, 'INVALID_COMMAND', 'healthCheck.method'),
  post('healthCheck.path relative', { ip: '10.0.0.1', port: 80, healthCheck: { path: 'health' } }, 'INVALID_COMMAND', 'healthCheck.path'),
  post('healthCheck.path with space', { ip: '10.0.0.1', port: 80, healthCheck: { path: '/a b' } }, 'INVALID_COMMAND', 'healthCheck.path'),
  post('healthCheck.path with CRLF', { ip: '10.0.0.1', port: 80, healthCheck: { path: '/\r\nX: y' } }, 'INVALID_COMMAND', 'healthCheck.path'),
  post('healthCheck.intervalMs low', { ip: '10.0.0.1', port: 80, healthCheck: { intervalMs: 99 } }, 'INVALID_COMMAND', 'healthCheck.intervalMs'),
  post('healthCheck.intervalMs high', { ip: '10.0.0.1', port: 80, healthCheck: { intervalMs: 3_600_001 } }, 'INVALID_COMMAND', 'healthCheck.intervalMs'),
  post('healthCheck.timeoutMs low', { ip: '10.0.0.1', port: 80, healthCheck: { timeoutMs: 9 } }, 'INVALID_COMMAND', 'healthCheck.timeoutMs'),
  post('healthCheck.timeoutMs >= intervalMs', { ip: '10.0.0.1', port: 80, healthCheck: { intervalMs: 500, timeoutMs: 500 } }, 'INVALID_COMMAND', 'healthCheck.timeoutMs'),
  post('healthCheck.timeoutMs >= default intervalMs', { ip: '10.0.0.1', port: 80, healthCheck: { timeoutMs: 2000 } }, 'INVALID_COMMAND', 'healthCheck.timeoutMs'),
  post('healthCheck.intervalMs <= default timeoutMs', { ip: '10.0.0.1', port: 80, healthCheck: { intervalMs: 1000 } }, 'INVALID_COMMAND', 'healthCheck.intervalMs'),
  post('healthCheck.expectedStatus.min', { ip: '10.0.0.1', port: 80, healthCheck: { expectedStatus: { min: 99, max: 200 } } }, 'INVALID_COMMAND', 'healthCheck.expectedStatus.min'),
  post('healthCheck.expectedStatus.max', { ip: '10.0.0.1', port: 80, healthCheck: { expectedStatus: { min: 200, max: 600 } } }, 'INVALID_COMMAND', 'healthCheck.expectedStatus.max'),
  post('healthCheck.expectedStatus min > max', { ip: '10.0.0.1', port: 80, healthCheck: { expectedStatus: { min: 300, max: 200 } } }, 'INVALID_COMMAND', 'healthCheck.expectedStatus.min'),
  post('healthCheck.healthyThreshold', { ip: '10.0.0.1', port: 80, healthCheck: { healthyThreshold: 0 } }, 'INVALID_COMMAND', 'healthCheck.healthyThreshold'),
  post('healthCheck.unhealthyThreshold', { ip: '10.0.0.1', port: 80, healthCheck: { unhealthyThreshold: 101 } }, 'INVALID_COMMAND', 'healthCheck.unhealthyThreshold'),
  post('healthCheck.jitterMs', { ip: '10.0.0.1', port: 80, healthCheck: { jitterMs: -1 } }, 'INVALID_COMMAND', 'healthCheck.jitterMs'),
  // PATCH /servers/:ip/:port
  { name: 'PATCH with ip in the body', method: 'PATCH', path: '/servers/10.0.0.1/80', request: { body: { ip: '10.0.0.2' } }, status: 400, code: 'INVALID_COMMAND', field: 'ip' },
  { name: 'PATCH draining as string', method: 'PATCH', path: '/servers/10.0.0.1/80', request: { body: { draining: 'yes' } }, status: 400, code: 'INVALID_COMMAND', field: 'draining' },
  { name: 'PATCH weight', method: 'PATCH', path: '/servers/10.0.0.1/80', request: { body: { weight: -1 } }, status: 400, code: 'INVALID_COMMAND', field: 'weight' },
  { name: 'PATCH bad path ip', method: 'PATCH', path: '/servers/example.com/80', request: { body: { weight: 2 } }, status: 400, code: 'INVALID_COMMAND', field: 'ip' },
  { name: 'PATCH empty body', method: 'PATCH', path: '/servers/10.0.0.1/80', request: { body: '' }, status: 400, code: 'INVALID_JSON' },
  // PATCH /settings
  { name: 'settings balancer', method: 'PATCH', path: '/settings', request: { body: { balancer: 'random' } }, status: 400, code: 'INVALID_COMMAND', field: 'balancer' },
  { name: 'settings unknown field', method: 'PATCH', path: '/settings', request: { body: { servers: [] } }, status: 400, code: 'INVALID_COMMAND', field: 'servers' },
  { name: 'settings healthCheck bound', method: 'PATCH', path: '/settings', request: { body: { healthCheck: { intervalMs: 50 } } }, status: 400, code: 'INVALID_COMMAND', field: 'healthCheck.intervalMs' },
  { name: 'settings healthCheck vs timeout', method: 'PATCH', path: '/settings', request: { body: { healthCheck: { timeoutMs: 5000 } } }, status: 400, code: 'INVALID_COMMAND', field: 'healthCheck.timeoutMs' },
  { name: 'settings passiveHealth bound', method: 'PATCH', path: '/settings', request: { body: { passiveHealth: { consecutiveFailures: 0 } } }, status: 400, code: 'INVALID_COMMAND', field: 'passiveHealth.consecutiveFailures' },
  { name: 'settings base > max ejection', method: 'PATCH', path: '/settings', request: { body: { passiveHealth: { baseEjectionMs: 600_000 } } }, status: 400, code: 'INVALID_COMMAND', field: 'passiveHealth.baseEjectionMs' },
  // query
  { name: 'stale=maybe', method: 'GET', path: '/servers?stale=maybe', request: {}, status: 400, code: 'INVALID_QUERY', field: 'stale' },
];

// Invalid only against the current settings, so the state machine (not the validator) rejects them.
const STATE_DEPENDENT = new Set([
  'healthCheck.timeoutMs >= default intervalMs',
  'healthCheck.intervalMs <= default timeoutMs',
  'settings healthCheck vs timeout',
  'settings base > max ejection',
]);

for (const c of cases) {
  test(`${c.method ?? 'POST'} ${c.path ?? '/servers'}: ${c.name} → ${c.status} ${c.code}${c.field === undefined ? '' : ` (${c.field})`}`, async (t) => {
    const h = await startAdmin(t);
    await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 } });
    const proposals = h.pool.proposals.length;
    const r = await h.call(c.method ?? 'POST', c.path ?? '/servers', c.request);
    t.is(r.status, c.status, r.text);
    t.is(r.headers['content-type'], 'application/json; charset=utf-8');
    const error = (r.json as { error: { code: string; message: string; field?: string } }).error;
    t.is(error.code, c.code);
    t.is(error.field, c.field);
    t.true(typeof error.message === 'string' && error.message.length > 0);
    if (c.field !== undefined) t.true(error.message.includes(c.field), error.message);
    // Input errors are found before proposing; only state-dependent ones reach the log.
    t.is(h.pool.proposals.length, proposals + (STATE_DEPENDENT.has(c.name) ? 1 : 0));
  });
}

test('a body over the limit is refused with 413 by Content-Length, before reading it', async (t) => {
  const h = await startAdmin(t, { bodyLimitBytes: 100 });
  const r = await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80, healthCheck: { path: `/${'a'.repeat(200)}` } } });
  t.is(r.status, 413);
  t.like(r.json, { error: { code: 'BODY_TOO_LARGE' } });
  t.is(r.headers['connection'], 'close');
});

test('a chunked body over the limit is cut off with 413 while streaming', async (t) => {
  const h = await startAdmin(t, { bodyLimitBytes: 1024 });
  const r = await h.call('POST', '/servers', { body: `{"ip":"10.0.0.1","port":80,"x":"${'a'.repeat(8_000)}"}`, chunkSize: 256, headers: { 'content-type': 'application/json' } });
  t.is(r.status, 413);
  t.like(r.json, { error: { code: 'BODY_TOO_LARGE', message: 'the request body exceeds 1024 bytes' } });
});

test('the default body limit is 64 KiB', async (t) => {
  const h = await startAdmin(t);
  const filler = 'a'.repeat(64 * 1024);
  t.is((await h.call('POST', '/servers', { body: `{"ip":"10.0.0.1","port":80,"x":"${filler}"}` })).status, 413);
  // Just under the limit the body is read (and then rejected for its unknown field).
  const under = `{"ip":"10.0.0.1","port":80,"x":"${'a'.repeat(64 * 1024 - 40)}"}`;
  t.true(Buffer.byteLength(under) <= 64 * 1024);
  t.like((await h.call('POST', '/servers', { body: under })).json, { error: { code: 'INVALID_COMMAND', field: 'x' } });
});

test('duplicate keys are refused by name; equal keys in different objects are not duplicates', async (t) => {
  const h = await startAdmin(t);
  const dup = await h.call('POST', '/servers', { body: '{"ip":"10.0.0.1","port":80,"weight":2,"weight":3}' });
  t.is(dup.status, 400);
  t.like(dup.json, { error: { code: 'INVALID_JSON', message: 'the request body has the key "weight" more than once in one object; each key may appear once' } });
  // "path" as a key inside healthCheck and "path"-like strings as values are fine.
  const ok = await h.call('POST', '/servers', { body: '{"ip":"10.0.0.1","port":80,"healthCheck":{"path":"/ip","expectedStatus":{"min":200,"max":299}}}' });
  t.is(ok.status, 201, ok.text);
  const quoted = await h.call('POST', '/servers', { body: '{"ip":"10.0.0.2","port":80,"healthCheck":{"path":"/a\\"b,\\"c{"}}' });
  t.is(quoted.status, 201, 'quotes, commas and braces inside a string are not structure');
  t.like(quoted.json, { healthCheck: { path: '/a"b,"c{' } });
  t.is(h.pool.proposals.length, 2);
});

test('charset utf-8 in any case, quoted, or spelled utf8 is accepted', async (t) => {
  const h = await startAdmin(t);
  for (const [i, type] of ['application/json; charset=UTF-8', 'application/json;charset="utf-8"', 'application/json; charset=utf8'].entries()) {
    const r = await h.call('POST', '/servers', { body: { ip: '10.0.0.1', port: 80 + i }, headers: { 'content-type': type } });
    t.is(r.status, 201, type);
  }
});

test('a UTF-8 byte order mark before the JSON is ignored', async (t) => {
  const h = await startAdmin(t);
  const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"ip":"10.0.0.1","port":80}')]);
  const r = await h.call('POST', '/servers', { body, headers: { 'content-type': 'application/json' } });
  t.is(r.status, 201, r.text);
});
