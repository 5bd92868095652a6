import test from 'ava';
import { isLoopbackHost, ownListenerLookup } from '../src/runtime/admin-listener.js';

test('isLoopbackHost: only addresses no other host can reach', (t) => {
  for (const host of ['127.0.0.1', '127.10.0.1', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) t.true(isLoopbackHost(host), host);
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '::2', '::ffff:10.0.0.1', 'admin.example', '128.0.0.1']) t.false(isLoopbackHost(host), host);
});

test('ownListenerLookup: the same address, any spelling of it, or any local address behind a wildcard', (t) => {
  const lookup = ownListenerLookup(() => [
    { name: 'admin', address: { host: '127.0.0.1', port: 8687 } },
    { name: 'proxy', address: { host: '0.0.0.0', port: 8080 } },
    { name: 'other', address: { host: '0:0:0:0:0:0:0:1', port: 9000 } },
  ]);
  t.is(lookup('127.0.0.1', 8687), 'admin');
  t.is(lookup('127.0.0.2', 8687), undefined, 'a specific host is only itself');
  t.is(lookup('127.0.0.1', 8080), 'proxy');
  t.is(lookup('127.5.5.5', 8080), 'proxy', 'all of 127/8 is this host');
  t.is(lookup('::ffff:127.0.0.1', 8080), 'proxy');
  t.is(lookup('192.0.2.1', 8080), undefined, 'TEST-NET is no local address');
  t.is(lookup('::1', 9000), 'other');
  t.is(lookup('127.0.0.1', 8081), undefined);
});

test('ownListenerLookup: the list is read at each call, so listeners added later (other members) count', (t) => {
  const listeners = [{ name: 'admin', address: { host: '127.0.0.1', port: 8687 } }];
  const lookup = ownListenerLookup(() => listeners);
  t.is(lookup('10.0.0.2', 8080), undefined);
  listeners.push({ name: 'proxy (member n2)', address: { host: '10.0.0.2', port: 8080 } });
  t.is(lookup('10.0.0.2', 8080), 'proxy (member n2)');
});
