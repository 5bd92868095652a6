import test from 'ava';
import { isLoopbackHost } from '../src/runtime/admin-listener.js';

test('isLoopbackHost: only addresses no other host can reach', (t) => {
  for (const host of ['127.0.0.1', '127.10.0.1', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) t.true(isLoopbackHost(host), host);
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '::2', '::ffff:10.0.0.1', 'admin.example', '128.0.0.1']) t.false(isLoopbackHost(host), host);
});
