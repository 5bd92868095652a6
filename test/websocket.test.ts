// A WebSocket upgrade passes through the proxy to the origin's /ws echo.
import test from 'ava';
import { WebSocket } from 'undici';
import { nodeWithOrigins } from './helpers/fixtures.js';
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
