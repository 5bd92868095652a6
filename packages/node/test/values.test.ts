import test from 'ava';
import { formatDuration, formatHostPort, parseDuration, parseHostPort } from '../src/config/values.js';

test('parseHostPort round-trips through formatHostPort', (t) => {
  for (const text of ['127.0.0.1:8080', '[::1]:0', 'example.com:443', '[2001:db8::1]:65535']) {
    t.is(formatHostPort(parseHostPort(text)), text);
  }
});

test('parseHostPort refuses ambiguous IPv6 without brackets', (t) => {
  t.throws(() => parseHostPort('::1:80'));
  t.throws(() => parseHostPort('[127.0.0.1]:80'));
  t.throws(() => parseHostPort(':80'));
  t.throws(() => parseHostPort('host:'));
});

test('parseDuration', (t) => {
  t.is(parseDuration('1.5s'), 1500);
  t.is(parseDuration(' 20 '), 20);
  t.is(parseDuration('3m'), 180_000);
  t.throws(() => parseDuration(-1));
  t.throws(() => parseDuration('2d'));
  t.throws(() => parseDuration('2h'));
  t.throws(() => parseDuration('1e3'));
  t.throws(() => parseDuration('48000000s'), { message: /longer than one day/ });
});

test('formatDuration gives the shortest exact spelling, which parseDuration reads back', (t) => {
  for (const [ms, text] of [[300_000, '5m'], [10_000, '10s'], [1500, '1500ms'], [0, '0ms']] as const) {
    t.is(formatDuration(ms), text);
    t.is(parseDuration(text, true), ms);
  }
});

test('parseHostPort refuses mistyped IPv4 addresses instead of resolving them as host names', (t) => {
  for (const text of ['999.1.1.1:80', '1.2.3.4.5:80', '1.2.3:80', '10.0.0.256:80']) {
    t.throws(() => parseHostPort(text), { message: /is not a valid IPv4 address/ }, text);
  }
  t.deepEqual(parseHostPort('a1.example:80'), { host: 'a1.example', port: 80 });
});
