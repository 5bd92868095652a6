import test from 'ava';
import { duplicateJsonKey, StoreError, validateCommand, validateRequestId, validateSettings, DEFAULT_SETTINGS, type PoolCommand } from '../src/index.js';

const add = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ type: 'AddServer', ip: '10.0.0.1', port: 8080, ...extra });
const hc = (fields: Record<string, unknown>): Record<string, unknown> => add({ healthCheck: fields });
const settings = (extra: Record<string, unknown>): Record<string, unknown> => ({ type: 'UpdateSettings', ...extra });
const passive = (fields: Record<string, unknown>): Record<string, unknown> => settings({ passiveHealth: fields });

// [description, input, expected canonical output]
const valid: ReadonlyArray<readonly [string, unknown, PoolCommand]> = [
  ['minimal AddServer', add(), { type: 'AddServer', ip: '10.0.0.1', port: 8080 }],
  ['port as a decimal string', add({ port: '12345' }), { type: 'AddServer', ip: '10.0.0.1', port: 12345 }],
  ['port 1', add({ port: 1 }), { type: 'AddServer', ip: '10.0.0.1', port: 1 }],
  ['port 65535', add({ port: '65535' }), { type: 'AddServer', ip: '10.0.0.1', port: 65535 }],
  ['IPv6 canonicalised', add({ ip: '[0:0::1]' }), { type: 'AddServer', ip: '::1', port: 8080 }],
  ['weight bounds 1', add({ weight: 1 }), { type: 'AddServer', ip: '10.0.0.1', port: 8080, weight: 1 }],
  ['weight bounds 1000', add({ weight: 1000 }), { type: 'AddServer', ip: '10.0.0.1', port: 8080, weight: 1000 }],
  ['empty health check overrides', hc({}), { type: 'AddServer', ip: '10.0.0.1', port: 8080, healthCheck: {} }],
  [
    'every health check field at its lower bound',
    hc({ enabled: false, method: 'HEAD', path: '/', intervalMs: 100, timeoutMs: 10, expectedStatus: { min: 100, max: 100 }, healthyThreshold: 1, unhealthyThreshold: 1, jitterMs: 0 }),
    {
      type: 'AddServer',
      ip: '10.0.0.1',
      port: 8080,
      healthCheck: { enabled: false, method: 'HEAD', path: '/', intervalMs: 100, timeoutMs: 10, expectedStatus: { min: 100, max: 100 }, healthyThreshold: 1, unhealthyThreshold: 1, jitterMs: 0 },
    },
  ],
  [
    'health check upper bounds',
    hc({ intervalMs: 3_600_000, timeoutMs: 3_599_999, expectedStatus: { min: 599, max: 599 }, healthyThreshold: 100, unhealthyThreshold: 100, jitterMs: 3_600_000 }),
    {
      type: 'AddServer',
      ip: '10.0.0.1',
      port: 8080,
      healthCheck: { intervalMs: 3_600_000, timeoutMs: 3_599_999, expectedStatus: { min: 599, max: 599 }, healthyThreshold: 100, unhealthyThreshold: 100, jitterMs: 3_600_000 },
    },
  ],
  ['path with query', hc({ path: '/healthz?full=1&x=%20' }), { type: 'AddServer', ip: '10.0.0.1', port: 8080, healthCheck: { path: '/healthz?full=1&x=%20' } }],
  ['RemoveServer', { type: 'RemoveServer', ip: '::ffff:1.2.3.4', port: '80' }, { type: 'RemoveServer', ip: '::ffff:1.2.3.4', port: 80 }],
  ['UpdateServer with nothing to change', { type: 'UpdateServer', ip: '1.2.3.4', port: 80 }, { type: 'UpdateServer', ip: '1.2.3.4', port: 80 }],
  [
    'UpdateServer with every field',
    { type: 'UpdateServer', draining: true, healthCheck: {}, weight: 5, port: 80, ip: '1.2.3.4' },
    { type: 'UpdateServer', ip: '1.2.3.4', port: 80, weight: 5, healthCheck: {}, draining: true },
  ],
  ['UpdateSettings empty', settings({}), { type: 'UpdateSettings' }],
  ['UpdateSettings balancer', settings({ balancer: 'power-of-two' }), { type: 'UpdateSettings', balancer: 'power-of-two' }],
  [
    'UpdateSettings passive health bounds',
    passive({ enabled: false, consecutiveFailures: 1000, baseEjectionMs: 100, maxEjectionMs: 86_400_000 }),
    { type: 'UpdateSettings', passiveHealth: { enabled: false, consecutiveFailures: 1000, baseEjectionMs: 100, maxEjectionMs: 86_400_000 } },
  ],
  [
    'Batch keeps sub-command order',
    { type: 'Batch', commands: [add({ port: '2' }), { type: 'RemoveServer', ip: '10.0.0.1', port: 1 }] },
    { type: 'Batch', commands: [{ type: 'AddServer', ip: '10.0.0.1', port: 2 }, { type: 'RemoveServer', ip: '10.0.0.1', port: 1 }] },
  ],
];

for (const [name, input, expected] of valid) {
  test(`valid: ${name}`, (t) => {
    const out = validateCommand(input);
    t.deepEqual(out, expected);
    // Canonical key order matters for fingerprints.
    t.is(JSON.stringify(out), JSON.stringify(expected));
  });
}

const batchOf = (n: number): unknown => ({ type: 'Batch', commands: Array.from({ length: n }, (_, i) => add({ port: i + 1 })) });

// [description, input, field the error must name]
const invalid: ReadonlyArray<readonly [string, unknown, string]> = [
  ['not an object', 'AddServer', ''],
  ['array', [add()], ''],
  ['null', null, ''],
  ['missing type', { ip: '1.2.3.4', port: 80 }, 'type'],
  ['unknown type', { type: 'DropTable' }, 'type'],
  ['type not a string', { type: 1 }, 'type'],
  ['unknown field', add({ wieght: 2 }), 'wieght'],
  ['__proto__ field', JSON.parse('{"type":"AddServer","ip":"1.2.3.4","port":80,"__proto__":{"weight":5}}'), '__proto__'],
  ['missing ip', { type: 'AddServer', port: 80 }, 'ip'],
  ['ip not a string', add({ ip: 16_909_060 }), 'ip'],
  ['hostname', add({ ip: 'localhost' }), 'ip'],
  ['zone id', add({ ip: 'fe80::1%eth0' }), 'ip'],
  ['missing port', { type: 'AddServer', ip: '1.2.3.4' }, 'port'],
  ['port 0', add({ port: 0 }), 'port'],
  ['port 65536', add({ port: 65_536 }), 'port'],
  ['port "65536"', add({ port: '65536' }), 'port'],
  ['port "0"', add({ port: '0' }), 'port'],
  ['port "080"', add({ port: '080' }), 'port'],
  ['port "+80"', add({ port: '+80' }), 'port'],
  ['port " 80"', add({ port: ' 80' }), 'port'],
  ['port "80.0"', add({ port: '80.0' }), 'port'],
  ['port "1e3"', add({ port: '1e3' }), 'port'],
  ['port ""', add({ port: '' }), 'port'],
  ['port 80.5', add({ port: 80.5 }), 'port'],
  ['port NaN', add({ port: Number.NaN }), 'port'],
  ['port true', add({ port: true }), 'port'],
  ['weight 0', add({ weight: 0 }), 'weight'],
  ['weight 1001', add({ weight: 1001 }), 'weight'],
  ['weight 1.5', add({ weight: 1.5 }), 'weight'],
  ['weight "2"', add({ weight: '2' }), 'weight'],
  ['weight null', add({ weight: null }), 'weight'],
  ['healthCheck not an object', add({ healthCheck: true }), 'healthCheck'],
  ['healthCheck array', add({ healthCheck: [] }), 'healthCheck'],
  ['healthCheck unknown field', hc({ interval: 5 }), 'healthCheck.interval'],
  ['enabled not boolean', hc({ enabled: 'yes' }), 'healthCheck.enabled'],
  ['method POST', hc({ method: 'POST' }), 'healthCheck.method'],
  ['method lower case', hc({ method: 'get' }), 'healthCheck.method'],
  ['path without slash', hc({ path: 'health' }), 'healthCheck.path'],
  ['path empty', hc({ path: '' }), 'healthCheck.path'],
  ['path with space', hc({ path: '/a b' }), 'healthCheck.path'],
  ['path with tab', hc({ path: '/a\tb' }), 'healthCheck.path'],
  ['path with CR LF', hc({ path: '/a\r\nHost: evil' }), 'healthCheck.path'],
  ['path with DEL', hc({ path: '/a\u007f' }), 'healthCheck.path'],
  ['path non-ASCII', hc({ path: '/é' }), 'healthCheck.path'],
  ['path with fragment', hc({ path: '/a#b' }), 'healthCheck.path'],
  ['path too long', hc({ path: `/${'a'.repeat(2048)}` }), 'healthCheck.path'],
  ['path not a string', hc({ path: 7 }), 'healthCheck.path'],
  ['intervalMs 99', hc({ intervalMs: 99 }), 'healthCheck.intervalMs'],
  ['intervalMs over an hour', hc({ intervalMs: 3_600_001 }), 'healthCheck.intervalMs'],
  ['intervalMs fractional', hc({ intervalMs: 1000.5 }), 'healthCheck.intervalMs'],
  ['timeoutMs 9', hc({ timeoutMs: 9 }), 'healthCheck.timeoutMs'],
  ['timeoutMs over an hour', hc({ timeoutMs: 3_600_001 }), 'healthCheck.timeoutMs'],
  ['timeoutMs equal to intervalMs', hc({ intervalMs: 1000, timeoutMs: 1000 }), 'healthCheck.timeoutMs'],
  ['timeoutMs above intervalMs', hc({ intervalMs: 1000, timeoutMs: 2000 }), 'healthCheck.timeoutMs'],
  ['expectedStatus not an object', hc({ expectedStatus: 200 }), 'healthCheck.expectedStatus'],
  ['expectedStatus missing max', hc({ expectedStatus: { min: 200 } }), 'healthCheck.expectedStatus.max'],
  ['expectedStatus missing min', hc({ expectedStatus: { max: 200 } }), 'healthCheck.expectedStatus.min'],
  ['expectedStatus min 99', hc({ expectedStatus: { min: 99, max: 200 } }), 'healthCheck.expectedStatus.min'],
  ['expectedStatus max 600', hc({ expectedStatus: { min: 200, max: 600 } }), 'healthCheck.expectedStatus.max'],
  ['expectedStatus min > max', hc({ expectedStatus: { min: 300, max: 200 } }), 'healthCheck.expectedStatus.min'],
  ['expectedStatus unknown field', hc({ expectedStatus: { min: 200, max: 299, exact: 200 } }), 'healthCheck.expectedStatus.exact'],
  ['healthyThreshold 0', hc({ healthyThreshold: 0 }), 'healthCheck.healthyThreshold'],
  ['healthyThreshold 101', hc({ healthyThreshold: 101 }), 'healthCheck.healthyThreshold'],
  ['unhealthyThreshold 0', hc({ unhealthyThreshold: 0 }), 'healthCheck.unhealthyThreshold'],
  ['unhealthyThreshold 101', hc({ unhealthyThreshold: 101 }), 'healthCheck.unhealthyThreshold'],
  ['jitterMs -1', hc({ jitterMs: -1 }), 'healthCheck.jitterMs'],
  ['jitterMs over an hour', hc({ jitterMs: 3_600_001 }), 'healthCheck.jitterMs'],
  ['RemoveServer with weight', { type: 'RemoveServer', ip: '1.2.3.4', port: 80, weight: 1 }, 'weight'],
  ['AddServer with draining', add({ draining: true }), 'draining'],
  ['UpdateServer draining not boolean', { type: 'UpdateServer', ip: '1.2.3.4', port: 80, draining: 1 }, 'draining'],
  ['UpdateServer bad ip', { type: 'UpdateServer', ip: '1.2.3', port: 80 }, 'ip'],
  ['UpdateSettings unknown balancer', settings({ balancer: 'random' }), 'balancer'],
  ['UpdateSettings unknown field', settings({ servers: [] }), 'servers'],
  ['UpdateSettings health check bound', settings({ healthCheck: { intervalMs: 50 } }), 'healthCheck.intervalMs'],
  ['passiveHealth not an object', settings({ passiveHealth: 5 }), 'passiveHealth'],
  ['passiveHealth unknown field', passive({ ejectMs: 5 }), 'passiveHealth.ejectMs'],
  ['passiveHealth enabled not boolean', passive({ enabled: 'no' }), 'passiveHealth.enabled'],
  ['consecutiveFailures 0', passive({ consecutiveFailures: 0 }), 'passiveHealth.consecutiveFailures'],
  ['consecutiveFailures 1001', passive({ consecutiveFailures: 1001 }), 'passiveHealth.consecutiveFailures'],
  ['baseEjectionMs 99', passive({ baseEjectionMs: 99 }), 'passiveHealth.baseEjectionMs'],
  ['maxEjectionMs over a day', passive({ maxEjectionMs: 86_400_001 }), 'passiveHealth.maxEjectionMs'],
  ['baseEjectionMs above maxEjectionMs', passive({ baseEjectionMs: 2000, maxEjectionMs: 1000 }), 'passiveHealth.baseEjectionMs'],
  ['Batch without commands', { type: 'Batch' }, 'commands'],
  ['Batch commands not an array', { type: 'Batch', commands: {} }, 'commands'],
  ['Batch empty', batchOf(0), 'commands'],
  ['Batch over 1000', batchOf(1001), 'commands'],
  ['Batch nested', { type: 'Batch', commands: [add(), { type: 'Batch', commands: [add()] }] }, 'commands[1].type'],
  ['Batch sub-command field', { type: 'Batch', commands: [add(), add({ healthCheck: { path: 'x' } })] }, 'commands[1].healthCheck.path'],
  ['Batch sub-command not an object', { type: 'Batch', commands: [add(), 5] }, 'commands[1]'],
  ['Batch unknown field', { type: 'Batch', commands: [add()], atomic: true }, 'atomic'],
];

for (const [name, input, field] of invalid) {
  test(`invalid: ${name} → ${field || '(root)'}`, (t) => {
    const err = t.throws(() => validateCommand(input), { instanceOf: StoreError });
    t.is(err?.code, 'INVALID_COMMAND');
    t.is(err?.field, field);
    // The message names the field so a human can act on it without the structured part.
    t.true(err?.message.startsWith(field || 'command'), err?.message);
  });
}

test('Batch of exactly 1000 commands is accepted', (t) => {
  const out = validateCommand(batchOf(1000));
  t.is(out.type === 'Batch' ? out.commands.length : 0, 1000);
});

test('validation does not read inherited properties', (t) => {
  const proto = { weight: 5 };
  const input = Object.assign(Object.create(proto) as object, { type: 'AddServer', ip: '1.2.3.4', port: 80 });
  t.deepEqual(validateCommand(input), { type: 'AddServer', ip: '1.2.3.4', port: 80 });
});

test('validateRequestId bounds and characters', (t) => {
  t.is(validateRequestId('a'), 'a');
  t.is(validateRequestId('x'.repeat(255)), 'x'.repeat(255));
  for (const bad of ['', 'x'.repeat(256), 'a b', 'é', 'a\n', 5, null, undefined]) {
    const err = t.throws(() => validateRequestId(bad), { instanceOf: StoreError });
    t.is(err?.field, 'requestId');
  }
  t.is(t.throws(() => validateRequestId('', 'Idempotency-Key'))?.message.startsWith('Idempotency-Key'), true);
});

test('validateSettings accepts the defaults and requires every field', (t) => {
  t.deepEqual(validateSettings(JSON.parse(JSON.stringify(DEFAULT_SETTINGS))), DEFAULT_SETTINGS);
  const { jitterMs: _omitted, ...partialHc } = DEFAULT_SETTINGS.healthCheck;
  const err = t.throws(() => validateSettings({ ...DEFAULT_SETTINGS, healthCheck: partialHc }), { instanceOf: StoreError });
  t.is(err?.field, 'settings.healthCheck.jitterMs');
  t.is(t.throws(() => validateSettings({ healthCheck: DEFAULT_SETTINGS.healthCheck, passiveHealth: DEFAULT_SETTINGS.passiveHealth }))?.message, 'settings.balancer is required');
});

test('duplicateJsonKey finds a key repeated in one object, decoded, at any depth, and nothing else', (t) => {
  t.is(duplicateJsonKey('{"a":1,"a":2}'), 'a');
  t.is(duplicateJsonKey('{"a":1,"\\u0061":2}'), 'a');
  t.is(duplicateJsonKey('{"x":{"b":[{"c":1,"c":2}]}}'), 'c');
  t.is(duplicateJsonKey('{"x":{},"x":1}'), 'x');
  t.is(duplicateJsonKey('{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}'), undefined);
  t.is(duplicateJsonKey('{"s":"a\\",\\"a","a":"{\\"a\\":1,\\"a\\":2}"}'), undefined, 'quotes, commas and braces inside strings are not structure');
  t.is(duplicateJsonKey('{"k":["a","a"],"v":"\\\\"}'), undefined);
});
