// A WebSocket upgrade passes through the proxy to the origin's /ws echo.
import { connect } from 'node:net';
import test from 'ava';
import { WebSocket } from 'undici';
import { nodeWithOrigins } from './helpers/fixtures.js';
import { fetchVia } from './helpers/routing.js';
import { within } from './helpers/wait.js';

test('WebSocket echo through the proxy: text, binary, close', async (t) => {
  const { node } = await nodeWithOrigins(t, ['ws-a'], { store: 'memory' });

  const ws = new WebSocket(`ws://127.0.0.1:${node.proxyPort}/ws`);
  t.teardown(() => ws.close());
  ws.binaryType = 'arraybuffer';
  const received: unknown[] = [];
  const gotAll = new Promise<void>((resolve, reject) => {
    ws.onerror = (event) => reject(new Error(`websocket error: ${String((event as { message?: string }).message ?? 'unknown')}`));
    ws.onopen = () => {
      ws.send('hello through weldr');
      ws.send(new Uint8Array([0, 1, 2, 255]));
      ws.send('y'.repeat(100_000));
    };
    ws.onmessage = (event) => {
      received.push(event.data);
      if (received.length === 3) resolve();
    };
  });
  await within('three echoed messages', gotAll, 15_000);
  t.is(received[0], 'hello through weldr');
  t.deepEqual([...new Uint8Array(received[1] as ArrayBuffer)], [0, 1, 2, 255]);
  t.is((received[2] as string).length, 100_000);

  const closed = new Promise<number>((resolve) => {
    ws.onclose = (event) => resolve(event.code);
  });
  ws.close(1000, 'done');
  t.is(await within('the close handshake', closed, 10_000), 1000);
});

// An upgrade request the proxy refuses (here TRACE: 405), from a client that resets the
// connection at once: the refusal's write failed with ECONNRESET on a socket node had
// taken its 'error' listener off, and the uncaught exception ended the node.
test('a client resetting right after a refused upgrade request does not bring the node down', async (t) => {
  const { node } = await nodeWithOrigins(t, ['ws-reset'], { store: 'memory' });
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve) => {
      const s = connect(node.proxyPort, '127.0.0.1', () => {
        s.write(`TRACE /ws HTTP/1.1\r\nHost: e2e\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n${'x'.repeat(1000)}`);
        s.resetAndDestroy();
      });
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    });
  }
  t.is((await fetchVia(node, '/')).status, 200);
  t.true(node.proc.running, `the node exited: ${node.proc.stdout.slice(-1500)}`);
});

// Splicing a tunnel took the connection tracker's 'close' listener off the client socket:
// a connection that had carried a WebSocket never gave its slot back. With a limit of 6
// connections per source, WebSockets opened and closed one after the other were refused
// at accept once 6 had been opened, and so was every request after them from that
// address (a load balancer in front is one address: 2,500 WebSockets by default, then an
// outage).
test('closed WebSockets give their connections back: the per-source limit is not used up', async (t) => {
  const { node } = await nodeWithOrigins(t, ['ws-slots'], { store: 'memory', args: ['--max-connections-per-source', '6'] });
  for (let i = 0; i < 10; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${node.proxyPort}/ws`);
    const echoed = new Promise<string>((resolve, reject) => {
      ws.onerror = () => reject(new Error(`websocket ${i} failed`));
      ws.onopen = () => ws.send(`hello ${i}`);
      ws.onmessage = (event) => resolve(String(event.data));
    });
    t.is(await within(`websocket ${i} to echo`, echoed, 10_000), `hello ${i}`);
    const closed = new Promise<void>((resolve) => (ws.onclose = () => resolve()));
    ws.close(1000, 'done');
    await within(`websocket ${i} to close`, closed, 10_000);
  }
  t.is((await fetchVia(node, '/')).status, 200);
});
