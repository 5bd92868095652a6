// The Raft peer transport and its framing, against hostile and broken peers.
import net from 'node:net';
import test from 'ava';
import type { Message } from '@weldr/raft';
import { encodeFrame, FrameDecoder, FrameError, MAX_FRAME_BYTES } from '../src/codec.js';
import { TcpTransport } from '../src/transport.js';

const silent = { debug() {}, info() {}, warn() {} };

const msg = (from: string, to: string, extra: Partial<Message> = {}): Message => ({
  type: 'MsgHeartbeat',
  from,
  to,
  term: 3,
  logTerm: 0,
  index: 0,
  commit: 0,
  reject: false,
  rejectHint: 0,
  tick: 7,
  ...extra,
});

test('frames: split anywhere, joined, byte arrays round-trip', (t) => {
  const m = msg('a', 'b', { type: 'MsgApp', entries: [{ index: 1, term: 3, type: 'normal', data: new Uint8Array([0, 1, 254, 255]) }] });
  const bytes = Buffer.concat([encodeFrame(m), encodeFrame({ x: 1 })]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new FrameDecoder();
    const out = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
    t.is(out.length, 2);
    const got = out[0] as Message;
    t.deepEqual([...got.entries![0]!.data], [0, 1, 254, 255]);
    t.true(got.entries![0]!.data instanceof Uint8Array);
  }
});

test('frames: Buffers (what LevelDB returns) travel as bytes too, not as their toJSON form', (t) => {
  const m = msg('a', 'b', { type: 'MsgApp', entries: [{ index: 1, term: 3, type: 'normal', data: Buffer.from('hello') }] });
  const [got] = new FrameDecoder().push(encodeFrame(m)) as Message[];
  t.true(got!.entries![0]!.data instanceof Uint8Array);
  t.is(Buffer.from(got!.entries![0]!.data).toString(), 'hello');
});

test('frames: an oversized length or a body that is not JSON is an error', (t) => {
  const big = Buffer.alloc(4);
  big.writeUInt32BE(MAX_FRAME_BYTES + 1);
  t.throws(() => new FrameDecoder().push(big), { instanceOf: FrameError, message: /exceeds/ });
  const bad = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('{{{')]);
  t.throws(() => new FrameDecoder().push(bad), { instanceOf: FrameError, message: /not JSON/ });
});

async function pair(t: import('ava').ExecutionContext, token?: string) {
  const got: Message[] = [];
  const b = new TcpTransport({ id: 'b', listen: { host: '127.0.0.1', port: 0 }, peers: new Map(), token, log: silent, onMessage: (m) => got.push(m) });
  await b.start();
  const a = new TcpTransport({
    id: 'a',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map([['b', { host: '127.0.0.1', port: b.port }]]),
    token,
    log: silent,
    onMessage: () => undefined,
    reconnectMinMs: 10,
    reconnectMaxMs: 50,
  });
  await a.start();
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  return { a, b, got };
}

async function until(what: string, fn: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('messages flow after the hello; unreachable peers are reported, not queued', async (t) => {
  const { a, got } = await pair(t, 'secret');
  const unreachable: string[] = [];
  await until('connected', () => {
    a.send([msg('a', 'b')]);
    return got.length > 0;
  });
  t.like(got[0], { type: 'MsgHeartbeat', from: 'a', to: 'b', term: 3, tick: 7 });
  const lonely = new TcpTransport({
    id: 'c',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map([['d', { host: '127.0.0.1', port: 1 }]]),
    log: silent,
    onMessage: () => undefined,
    onUnreachable: (id) => unreachable.push(id),
  });
  await lonely.start();
  lonely.send([msg('c', 'd'), msg('c', 'nobody')]);
  await lonely.close();
  t.deepEqual(unreachable, ['d', 'nobody']);
});

/** A raw client that connects to `port` and writes `frames`; resolves when the server closes it. */
function rawPeer(port: number, frames: Buffer[]): Promise<'closed'> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      for (const f of frames) s.write(f);
    });
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    s.on('close', () => resolve('closed'));
    setTimeout(() => {
      s.destroy();
      reject(new Error('the transport kept a bad connection open'));
    }, 3000).unref();
  });
}

test('bad peers are cut off and nothing they send reaches the core', async (t) => {
  const { b, got } = await pair(t, 'secret');
  const hello = (extra: object = {}) => encodeFrame({ hello: 'weldr-raft/1', from: 'x', to: 'b', token: 'secret', ...extra });
  const cases: [string, Buffer[]][] = [
    ['wrong token', [hello({ token: 'nope' }), encodeFrame(msg('x', 'b'))]],
    ['no token', [hello({ token: undefined }), encodeFrame(msg('x', 'b'))]],
    ['wrong protocol', [hello({ hello: 'http/1.1' }), encodeFrame(msg('x', 'b'))]],
    ['addressed to another node', [hello({ to: 'c' }), encodeFrame(msg('x', 'b'))]],
    ['message before hello', [encodeFrame(msg('x', 'b'))]],
    ['garbage bytes', [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]],
    ['oversized frame', [hello(), Buffer.from([0xff, 0xff, 0xff, 0xff])]],
    ['invalid message', [hello(), encodeFrame({ ...msg('x', 'b'), term: -1 })]],
    ['spoofed sender', [hello(), encodeFrame(msg('y', 'b'))]],
    ['misaddressed message', [hello(), encodeFrame(msg('x', 'c'))]],
  ];
  for (const [name, frames] of cases) t.is(await rawPeer(b.port, frames), 'closed', name);
  t.deepEqual(got, [], 'no message from a refused connection was delivered');
});

test('a peer that restarts is reconnected to', async (t) => {
  const { a, b, got } = await pair(t);
  await until('first delivery', () => {
    a.send([msg('a', 'b')]);
    return got.length > 0;
  });
  const port = b.port;
  await b.close();
  const got2: Message[] = [];
  const b2 = new TcpTransport({ id: 'b', listen: { host: '127.0.0.1', port }, peers: new Map(), log: silent, onMessage: (m) => got2.push(m) });
  await b2.start();
  t.teardown(() => b2.close());
  await until('delivery after the restart', () => {
    a.send([msg('a', 'b')]);
    return got2.length > 0;
  });
  t.pass();
});

test('hello identity: the admit hook sees it, and nothing the peer sent is delivered before an asynchronous admission resolves', async (t) => {
  const got: Message[] = [];
  const hellos: unknown[] = [];
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const b = new TcpTransport({
    id: 'b',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map(),
    log: silent,
    onMessage: (m) => got.push(m),
    admit: (h) => {
      hellos.push(h);
      return gate.then(() => undefined);
    },
  });
  await b.start();
  const a = new TcpTransport({
    id: 'a',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map([['b', { host: '127.0.0.1', port: b.port }]]),
    log: silent,
    onMessage: () => undefined,
    identity: (to) => ({ cluster: 'c1', incarnation: 'inc-a', expect: { incarnation: `inc-${to}`, index: 7 } }),
  });
  await a.start();
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await until('hello seen', () => {
    a.send([msg('a', 'b')]);
    return hellos.length > 0;
  });
  for (let i = 0; i < 5; i++) a.send([msg('a', 'b', { term: 4 + i })]);
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(got, [], 'held back while the admission is pending');
  t.like(hellos[0], { from: 'a', cluster: 'c1', incarnation: 'inc-a', expect: { incarnation: 'inc-b', index: 7 } });
  release();
  await until('delivered after admission', () => got.length >= 5);
  t.true(got.every((m) => m.from === 'a'));
});

test('a refused peer is told why ({"refused"}), sees it through onRefused, and nothing it sent is delivered; control frames reach onControl', async (t) => {
  const got: Message[] = [];
  const controls: unknown[] = [];
  const b = new TcpTransport({
    id: 'b',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map(),
    log: silent,
    onMessage: (m) => got.push(m),
    admit: (h) => (h.from === 'a' ? { code: 'not-member', message: 'a was removed', index: 42, cluster: 'c1' } : undefined),
    onControl: (from, frame) => controls.push({ from, frame }),
  });
  await b.start();
  const refusals: unknown[] = [];
  const a = new TcpTransport({
    id: 'a',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map([['b', { host: '127.0.0.1', port: b.port }]]),
    log: silent,
    onMessage: () => undefined,
    onRefused: (peer, r) => refusals.push({ peer, r }),
    reconnectMinMs: 10,
    reconnectMaxMs: 50,
  });
  await a.start();
  const c = new TcpTransport({
    id: 'c',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map([['b', { host: '127.0.0.1', port: b.port }]]),
    log: silent,
    onMessage: () => undefined,
  });
  await c.start();
  t.teardown(async () => {
    await a.close();
    await b.close();
    await c.close();
  });
  await until('refusal seen', () => {
    a.send([msg('a', 'b')]);
    return refusals.length > 0;
  });
  t.like(refusals[0], { peer: 'b', r: { code: 'not-member', message: 'a was removed', index: 42, cluster: 'c1' } });
  await until('control frame delivered', () => {
    c.sendControl('b', { ctl: 'publish', adminAddress: '127.0.0.1:1' });
    return controls.length > 0;
  });
  t.like(controls[0], { from: 'c', frame: { ctl: 'publish', adminAddress: '127.0.0.1:1' } });
  t.false(a.sendControl('nobody', { ctl: 'x' }));
  t.deepEqual(got, []);
});

test('an outbound connection reads only small refusal frames: anything else from the peer closes it', async (t) => {
  const server = net.createServer((s) => {
    s.on('data', () => undefined);
    s.write(encodeFrame({ type: 'MsgHeartbeat', from: 'b', to: 'a' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  let connections = 0;
  server.on('connection', () => connections++);
  const refusals: unknown[] = [];
  const a = new TcpTransport({
    id: 'a',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map([['b', { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port }]]),
    log: silent,
    onMessage: () => undefined,
    onRefused: (peer, r) => refusals.push({ peer, r }),
    reconnectMinMs: 10,
    reconnectMaxMs: 20,
  });
  await a.start();
  t.teardown(() => a.close());
  await until('the connection was cut and made again', () => connections >= 3);
  t.deepEqual(refusals, []);
});
