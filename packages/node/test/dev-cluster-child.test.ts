import test from 'ava';
import { lastMessageLine } from '../src/dev-cluster/child.js';

test("a child's failure is the last line that says something, not the stack frame under it", (t) => {
  const stack = [
    'weldr: Error: listen EADDRINUSE: address already in use 127.0.0.1:8082',
    '    at Server.setupListenHandle [as _listen2] (node:net:1908:16)',
    '    at process.processTicksAndRejections (node:internal/process/task_queues:83:21)',
    '',
  ].join('\n');
  t.is(lastMessageLine(stack), 'weldr: Error: listen EADDRINUSE: address already in use 127.0.0.1:8082');
  t.is(lastMessageLine('weldr test-server: cannot listen for HTTP on 127.0.0.1:8082: address already in use\n'), 'weldr test-server: cannot listen for HTTP on 127.0.0.1:8082: address already in use');
  t.is(lastMessageLine('first\nsecond  \n\n'), 'second');
  t.is(lastMessageLine(''), undefined);
  t.is(lastMessageLine('    at only.a.frame (x.js:1:1)\n'), undefined);
});
