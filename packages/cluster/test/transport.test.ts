// The Raft peer transport and its framing, against hostile and broken peers.
import net, { type AddressInfo } from 'node:net';
import test from 'ava';
import type { Message } from '@weldr/raft';
import { encodeFrame, FrameDecoder, FrameError, MAX_FRAME_BYTES } from '../src/codec.js';
import { randomBytes } from 'node:crypto';
import { TcpTransport } from '../src/transport.js';
import { makeProof, NONCE_BYTES } from '../src/peer-proof.js';

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
  lease: 0,
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

test('frames: the wire form of bytes is {"$b64"} (what earlier versions send and read); the value sent is not changed', (t) => {
  const data = new Uint8Array([104, 105]);
  const m = msg('a', 'b', { type: 'MsgApp', entries: [{ index: 1, term: 3, type: 'normal', data }], context: { deep: [{ raw: Buffer.from('x') }, 'plain'] } } as never);
  const frame = encodeFrame(m);
  const json = JSON.parse(frame.subarray(4).toString('utf8'));
  t.deepEqual(json.entries[0].data, { $b64: 'aGk=' });
  t.deepEqual(json.context, { deep: [{ raw: { $b64: 'eA==' } }, 'plain'] });
  // What an earlier version wrote (a replacer doing the same swap) decodes the same.
  const legacy = JSON.stringify({ ...json, entries: [{ ...json.entries[0], data: { $b64: 'aGk=' } }] });
  const body = Buffer.from(legacy);
  const framed = Buffer.concat([Buffer.from([0, 0, 0, 0]), body]);
  framed.writeUInt32BE(body.length, 0);
  const [got] = new FrameDecoder().push(framed) as Message[];
  t.deepEqual([...got!.entries![0]!.data], [104, 105]);
  t.is(m.entries![0]!.data, data, 'the message sent still holds its own bytes');
  t.false('$b64' in (m.entries![0] as object));
});

test('frames: an object with "$b64" and other keys stays an object; a "__proto__" key from a peer stays plain data', (t) => {
  const body = Buffer.from('{"a":{"$b64":"aGk=","other":1},"__proto__":{"$b64":"aGk="},"b":{"__proto__":{"polluted":true}}}');
  const framed = Buffer.concat([Buffer.alloc(4), body]);
  framed.writeUInt32BE(body.length, 0);
  const [got] = new FrameDecoder().push(framed) as Record<string, unknown>[];
  t.deepEqual(got!.a, { $b64: 'aGk=', other: 1 });
  t.is(Object.getPrototypeOf(got), Object.prototype);
  t.true(Object.getOwnPropertyDescriptor(got, '__proto__')!.value instanceof Uint8Array);
  t.is(Object.getPrototypeOf(got!.b), Object.prototype);
  t.is(({} as Record<string, unknown>).polluted, undefined);
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

async function until(what: string, fn: () => boolean, ms = 30_000): Promise<void> {
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
  const { b, got } = await pair(t, 'secret-secret-secret');
  const token = 'secret-secret-secret';
  const cases: [string, (c: Challenge) => Buffer[]][] = [
    ['wrong token', (c) => [hello(c, 'x', 'b', 'nope-nope-nope-nope'), encodeFrame(msg('x', 'b'))]],
    ['no proof', (c) => [encodeFrame({ ...helloObject(c, 'x', 'b', token), proof: undefined }), encodeFrame(msg('x', 'b'))]],
    ['the token itself instead of a proof', (c) => [encodeFrame({ ...helloObject(c, 'x', 'b', token), proof: token }), encodeFrame(msg('x', 'b'))]],
    ['old protocol with the token in clear', () => [encodeFrame({ hello: 'weldr-raft/1', from: 'x', to: 'b', token }), encodeFrame(msg('x', 'b'))]],
    ['wrong protocol', (c) => [encodeFrame({ ...helloObject(c, 'x', 'b', token), hello: 'http/1.1' }), encodeFrame(msg('x', 'b'))]],
    ['addressed to another node', (c) => [hello(c, 'x', 'c', token), encodeFrame(msg('x', 'b'))]],
    ['message before hello', () => [encodeFrame(msg('x', 'b'))]],
    ['garbage bytes', () => [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]],
    ['oversized frame before the hello', () => [Buffer.from([0x00, 0x00, 0x10, 0x01])]],
    ['oversized frame', (c) => [hello(c, 'x', 'b', token), Buffer.from([0xff, 0xff, 0xff, 0xff])]],
    ['invalid message', (c) => [hello(c, 'x', 'b', token), encodeFrame({ ...msg('x', 'b'), term: -1 })]],
    ['spoofed sender', (c) => [hello(c, 'x', 'b', token), encodeFrame(msg('y', 'b'))]],
    ['misaddressed message', (c) => [hello(c, 'x', 'c', token), encodeFrame(msg('x', 'c'))]],
  ];
  for (const [name, frames] of cases) {
    const peer = await rawClient(b.port);
    const c = await peer.challenge();
    for (const f of frames(c)) peer.socket.write(f);
    t.is(await peer.closed, 'closed', name);
  }
  t.deepEqual(got, [], 'no message from a refused connection was delivered');
});

test('the handshake proves the token both ways without sending it; a replayed hello is refused', async (t) => {
  const token = 'a-token-nobody-guesses-0123456789';
  const got: Message[] = [];
  const b = new TcpTransport({ id: 'b', listen: { host: '127.0.0.1', port: 0 }, peers: new Map(), token, log: silent, onMessage: (m) => got.push(m) });
  await b.start();
  // Everything a and b say to each other passes through this relay, which records it.
  const wire: Buffer[] = [];
  const relay = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: b.port });
    client.on('data', (d: Buffer) => {
      wire.push(d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      wire.push(d);
      client.write(d);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const relayPort = (relay.address() as net.AddressInfo).port;
  const a = new TcpTransport({ id: 'a', listen: { host: '127.0.0.1', port: 0 }, peers: new Map([['b', { host: '127.0.0.1', port: relayPort }]]), token, log: silent, onMessage: () => undefined });
  await a.start();
  t.teardown(async () => {
    await a.close();
    await b.close();
    relay.close();
  });
  await until('a message through the relay', () => {
    a.send([msg('a', 'b')]);
    return got.length > 0;
  });
  const captured = Buffer.concat(wire);
  t.false(captured.includes(Buffer.from(token)), 'the token itself never crossed the wire');
  // Replay a's hello (the second frame on the wire, after b's challenge) on a new connection.
  const frames = new FrameDecoder().push(captured) as Record<string, unknown>[];
  const helloFrame = frames.find((f) => f.hello !== undefined);
  t.truthy(helloFrame);
  const before = got.length;
  const replay = await rawClient(b.port);
  await replay.challenge();
  replay.socket.write(encodeFrame(helloFrame));
  replay.socket.write(encodeFrame(msg('a', 'b', { term: 99 })));
  t.is(await replay.closed, 'closed');
  t.false(got.slice(before).some((m) => m.term === 99), 'nothing from the replayed hello was delivered');
  t.true(b.stats().refused.get('bad_proof')! >= 1);
});

test('a peer that proves a different token is not welcomed: the dialling node does not send to it', async (t) => {
  const got: Message[] = [];
  const b = new TcpTransport({ id: 'b', listen: { host: '127.0.0.1', port: 0 }, peers: new Map(), token: 'token-of-cluster-one-0000', log: silent, onMessage: (m) => got.push(m) });
  await b.start();
  const lines: string[] = [];
  const log = { debug() {}, info() {}, warn: (_o: object, m: string) => void lines.push(m) };
  const unreachable: string[] = [];
  const a = new TcpTransport({ id: 'a', listen: { host: '127.0.0.1', port: 0 }, peers: new Map([['b', { host: '127.0.0.1', port: b.port }]]), token: 'token-of-cluster-two-0000', log, onMessage: () => undefined, onUnreachable: (id) => unreachable.push(id), reconnectMinMs: 10, reconnectMaxMs: 50 });
  await a.start();
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await until('a says why b refused it', () => lines.some((l) => /refused the handshake/.test(l)));
  a.send([msg('a', 'b')]);
  t.deepEqual(unreachable, ['b']);
  t.deepEqual(got, []);
  t.true((b.stats().refused.get('bad_proof') ?? 0) >= 1);
});

test('before the hello: a stranger may send only a small frame, within the deadline, and only so many may wait', async (t) => {
  const got: Message[] = [];
  const b = new TcpTransport({
    id: 'b',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map(),
    token: 'secret-secret-secret',
    log: silent,
    onMessage: (m) => got.push(m),
    helloTimeoutMs: 300,
    maxPendingConnections: 6,
    maxPendingPerSource: 4,
  });
  await b.start();
  t.teardown(() => b.close());
  // A 16 MiB frame header: refused on the header, nothing buffered.
  const big = Buffer.alloc(4);
  big.writeUInt32BE(MAX_FRAME_BYTES);
  t.is(await rawPeer(b.port, [big, Buffer.alloc(64 << 10)]), 'closed');
  t.is(b.stats().refused.get('bad_hello'), 1);
  // Silence: cut at the deadline.
  const silentPeer = await rawClient(b.port);
  t.is(await silentPeer.closed, 'closed');
  t.is(b.stats().refused.get('hello_timeout'), 1);
  // Four idle strangers from 127.0.0.1 fill that source's share; the fifth is shut out at once.
  const idle = await Promise.all([1, 2, 3, 4].map(() => rawClient(b.port, { host: '127.0.0.1' })));
  await Promise.all(idle.map((p) => p.challenge()));
  t.is(b.stats().pending, 4);
  const fifth = await rawClient(b.port, { host: '127.0.0.1' });
  t.is(await fifth.closed, 'closed');
  t.is(b.stats().refused.get('too_many_from_source'), 1);
  // Another source (127.0.0.2 is loopback too) still gets in, up to the total.
  const other = await Promise.all([1, 2].map(() => rawClient(b.port, { host: '127.0.0.1', localAddress: '127.0.0.2' })));
  await Promise.all(other.map((p) => p.challenge()));
  const third = await rawClient(b.port, { host: '127.0.0.1', localAddress: '127.0.0.3' });
  t.is(await third.closed, 'closed');
  t.is(b.stats().refused.get('too_many_pending'), 1);
  // The deadline frees the places again.
  await Promise.all([...idle, ...other].map((p) => p.closed));
  t.is(b.stats().pending, 0);
  t.deepEqual(got, []);
});

test('refusals are logged at a bounded rate: the first at once, the rest in one summary per interval', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const log = { debug() {}, info() {}, warn: (o: object) => void lines.push(o as Record<string, unknown>) };
  const b = new TcpTransport({ id: 'b', listen: { host: '127.0.0.1', port: 0 }, peers: new Map(), token: 'secret-secret-secret', log, onMessage: () => undefined, refusalLogIntervalMs: 200 });
  await b.start();
  t.teardown(() => b.close());
  for (let i = 0; i < 200; i++) await rawPeer(b.port, [Buffer.from('GET / HTTP/1.1\r\n\r\n')]);
  const refusedLines = () => lines.filter((l) => l.event === 'raft_connection_refused');
  const summed = () => refusedLines().reduce((n, l) => n + (typeof l.refused === 'number' ? l.refused : 1), 0);
  // Every refusal is counted in some line, once the last interval's summary is out.
  await until('every refusal in a line', () => summed() === 200);
  t.is(refusedLines()[0]!.reason, 'bad_hello', 'the first refusal has a line of its own');
  t.true(refusedLines().length < 20, `${refusedLines().length} lines for 200 refusals`);
  t.is(b.stats().refused.get('bad_hello'), 200);
});

test('a reconnecting peer replaces its older inbound connection', async (t) => {
  const token = 'secret-secret-secret';
  const { b } = await pair(t, token);
  const first = await rawClient(b.port);
  first.socket.write(hello(await first.challenge(), 'x', 'b', token));
  await first.welcomed;
  const second = await rawClient(b.port);
  second.socket.write(hello(await second.challenge(), 'x', 'b', token));
  await second.welcomed;
  t.is(await first.closed, 'closed', 'the older connection of x was closed');
  second.socket.destroy();
});

interface Challenge {
  readonly nonce: string;
}

function helloObject(c: Challenge, from: string, to: string, token: string): Record<string, unknown> {
  const nonce = randomBytes(32).toString('base64');
  return { hello: 'weldr-raft/2', from, to, nonce, proof: makeProof(token, 'client', { serverNonce: c.nonce, clientNonce: nonce, from, to }), info: {} };
}

function hello(c: Challenge, from: string, to: string, token: string): Buffer {
  return encodeFrame(helloObject(c, from, to, token));
}

/** A raw client of the handshake: waits for the challenge, lets the test write what it wants. */
async function rawClient(port: number, options: { host?: string; localAddress?: string } = {}) {
  const socket = net.connect({ host: options.host ?? '127.0.0.1', port, ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }) });
  const decoder = new FrameDecoder();
  const frames: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  socket.on('data', (d: Buffer) => {
    try {
      frames.push(...(decoder.push(d) as Record<string, unknown>[]));
    } catch {
      socket.destroy();
    }
    for (const w of waiters) w();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<'closed'>((resolve) => socket.on('close', () => resolve('closed')));
  const frameWhere = (what: string, pred: (f: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const f = frames.find(pred);
        if (f !== undefined) {
          waiters.delete(check);
          resolve(f);
        }
      };
      waiters.add(check);
      check();
      void closed.then(() => reject(new Error(`closed before ${what}`)));
    });
  return {
    socket,
    closed,
    challenge: () => frameWhere('the challenge', (f) => f.challenge === 'weldr-raft/2') as Promise<unknown> as Promise<Challenge>,
    get welcomed() {
      return frameWhere('the welcome', (f) => f.welcome === 'weldr-raft/2');
    },
  };
}

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

test('losing and regaining a peer are logged at the same level, once per outage', async (t) => {
  const lines: { level: string; obj: Record<string, unknown> }[] = [];
  const record = (level: string) => (obj: object) => lines.push({ level, obj: obj as Record<string, unknown> });
  const log = { debug: record('debug'), info: record('info'), warn: record('warn') };
  const got: Message[] = [];
  const b = new TcpTransport({ id: 'b', listen: { host: '127.0.0.1', port: 0 }, peers: new Map(), log: silent, onMessage: (m) => got.push(m) });
  await b.start();
  const port = b.port;
  const a = new TcpTransport({ id: 'a', listen: { host: '127.0.0.1', port: 0 }, peers: new Map([['b', { host: '127.0.0.1', port }]]), log, onMessage: () => undefined, reconnectMinMs: 10, reconnectMaxMs: 20 });
  await a.start();
  t.teardown(() => a.close());
  await until('first delivery', () => {
    a.send([msg('a', 'b')]);
    return got.length > 0;
  });
  await b.close();
  await until('the outage is logged', () => lines.some((l) => l.obj.event === 'raft_peer_unreachable'));
  // Reconnect attempts keep failing for a while: still one line.
  await new Promise((r) => setTimeout(r, 200));
  const got2: Message[] = [];
  const b2 = new TcpTransport({ id: 'b', listen: { host: '127.0.0.1', port }, peers: new Map(), log: silent, onMessage: (m) => got2.push(m) });
  await b2.start();
  t.teardown(() => b2.close());
  await until('delivery after the restart', () => {
    a.send([msg('a', 'b')]);
    return got2.length > 0;
  });
  const events = lines.filter((l) => l.obj.event !== undefined).map((l) => [l.level, l.obj.event, l.obj.peer]);
  t.deepEqual(events, [
    ['info', 'raft_peer_unreachable', 'b'],
    ['info', 'raft_peer_reachable', 'b'],
  ]);
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
  // The dialling node is not welcomed while the admission is pending: what it sends is
  // reported unreachable and dropped (Raft resends), never delivered early.
  for (let i = 0; i < 5; i++) a.send([msg('a', 'b', { term: 4 + i })]);
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(got, [], 'nothing delivered while the admission is pending');
  t.like(hellos[0], { from: 'a', cluster: 'c1', incarnation: 'inc-a', expect: { incarnation: 'inc-b', index: 7 } });
  release();
  await until('delivered after admission', () => {
    a.send([msg('a', 'b', { term: 9 })]);
    return got.length > 0;
  });
  t.true(got.every((m) => m.from === 'a' && m.term === 9));
});

test('a peer that sends before it is welcomed is cut off', async (t) => {
  const got: Message[] = [];
  const b = new TcpTransport({ id: 'b', listen: { host: '127.0.0.1', port: 0 }, peers: new Map(), log: silent, onMessage: (m) => got.push(m), admit: () => new Promise(() => undefined) });
  await b.start();
  t.teardown(() => b.close());
  const closed = await new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: b.port });
    const d = new FrameDecoder();
    s.on('data', (c: Buffer) => {
      for (const f of d.push(c)) {
        const ch = f as { challenge?: string; nonce?: string };
        if (ch.challenge !== undefined) {
          s.write(encodeFrame({ hello: ch.challenge, from: 'a', to: 'b', nonce: Buffer.alloc(NONCE_BYTES).toString('base64'), proof: '' }));
          s.write(encodeFrame(msg('a', 'b')));
        }
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(true));
    setTimeout(() => resolve(false), 3000).unref();
  });
  t.true(closed, 'the connection was closed');
  t.deepEqual(got, []);
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
    s.on('error', () => undefined); // the transport resets it
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

test('onPeerClosed: an authenticated connection that ends is reported, inbound and outbound, never by the side that closes', async (t) => {
  const closed: Record<string, string[]> = { a: [], b: [], c: [] };
  const got: Message[] = [];
  const b = new TcpTransport({ id: 'b', listen: { host: '127.0.0.1', port: 0 }, peers: new Map(), log: silent, onMessage: (m) => got.push(m), onPeerClosed: (id) => closed['b']!.push(id) });
  await b.start();
  const dialer = async (id: string): Promise<TcpTransport> => {
    const x = new TcpTransport({
      id,
      listen: { host: '127.0.0.1', port: 0 },
      peers: new Map([['b', { host: '127.0.0.1', port: b.port }]]),
      log: silent,
      onMessage: () => undefined,
      onPeerClosed: (p) => closed[id]!.push(p),
      reconnectMinMs: 10_000,
    });
    await x.start();
    t.teardown(() => x.close());
    await until(`${id} connected`, () => {
      x.send([msg(id, 'b')]);
      return got.some((m) => m.from === id);
    });
    return x;
  };
  const a = await dialer('a');
  t.deepEqual(closed, { a: [], b: [], c: [] });
  await a.close();
  await until('b hears its inbound connection from a end', () => closed['b']!.length > 0);
  const c = await dialer('c');
  await b.close();
  await until('c hears its outbound connection end', () => closed['c']!.length > 0);
  t.deepEqual(closed, { a: [], b: ['a'], c: ['b'] }, 'the closing side reports nothing');
  await c.close();
});

test('a peer that connects to this node is dialled back at once, not at the end of the reconnect backoff', async (t) => {
  const bPort = await new Promise<number>((resolve) => {
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1', () => {
      const p = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(p));
    });
  });
  const gotAtB: Message[] = [];
  // a's backoff is a minute: only the dial-back can connect it to b within the test.
  const a = new TcpTransport({
    id: 'a',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map([['b', { host: '127.0.0.1', port: bPort }]]),
    log: silent,
    onMessage: () => undefined,
    reconnectMinMs: 60_000,
    reconnectMaxMs: 60_000,
  });
  await a.start();
  t.teardown(() => a.close());
  await until('a failed to reach b once', () => a.peerStatus('b').lastError !== undefined);
  const b = new TcpTransport({
    id: 'b',
    listen: { host: '127.0.0.1', port: bPort },
    peers: new Map([['a', { host: '127.0.0.1', port: a.port }]]),
    log: silent,
    onMessage: (m) => gotAtB.push(m),
  });
  await b.start();
  t.teardown(() => b.close());
  await until('a reaches b', () => {
    a.send([msg('a', 'b')]);
    return gotAtB.length > 0;
  });
  t.true(a.peerStatus('b').reachable);
});

interface LoggedLine {
  readonly side: string;
  readonly level: string;
  readonly msg: string;
}

/** A logger per side of a connection, all recording into `lines`. */
function sidedLog(lines: LoggedLine[]) {
  return (side: string) => {
    const record = (level: string) => (_o: object, msg: string) => void lines.push({ side, level, msg });
    return { debug: record('debug'), info: record('info'), warn: record('warn') };
  };
}

/** b, which admits (or refuses) whom `admit` says, and a, which dials it every 10–20 ms; both log into `lines`. */
async function admittingPair(
  t: { teardown(fn: () => Promise<void>): void },
  lines: LoggedLine[],
  admit: () => { code: string; message: string } | undefined,
  onMessage: (m: Message) => void = () => undefined,
): Promise<{ a: TcpTransport; b: TcpTransport }> {
  const logOf = sidedLog(lines);
  const token = 'secret-secret-secret';
  const b = new TcpTransport({ id: 'b', listen: { host: '127.0.0.1', port: 0 }, peers: new Map(), token, log: logOf('b'), onMessage, admit });
  await b.start();
  const a = new TcpTransport({ id: 'a', listen: { host: '127.0.0.1', port: 0 }, peers: new Map([['b', { host: '127.0.0.1', port: b.port }]]), token, log: logOf('a'), onMessage: () => undefined, reconnectMinMs: 10, reconnectMaxMs: 20 });
  await a.start();
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  return { a, b };
}

test('a peer that is joining (not ready) is no warning on either side; it is counted, and admitted once ready', async (t) => {
  const lines: LoggedLine[] = [];
  let ready = false;
  const got: Message[] = [];
  const { a, b } = await admittingPair(t, lines, () => (ready ? undefined : { code: 'not-ready', message: 'this node does not know the cluster configuration yet' }), (m) => got.push(m));
  await until('a few refusals', () => (b.stats().refused.get('not-ready') ?? 0) >= 3);
  ready = true;
  await until('delivery once b is ready', () => {
    a.send([msg('a', 'b')]);
    return got.length > 0;
  });
  t.deepEqual(lines.filter((l) => l.level === 'warn'), [], 'no warning on either side');
  t.true(lines.some((l) => l.side === 'a' && l.level === 'info' && /not reachable yet/.test(l.msg)), 'the refused side says so once, at info');
});

test('a peer that refuses this node on every retry is one warning on the dialling side, not one per retry; a refusal for another reason is warned again', async (t) => {
  const lines: LoggedLine[] = [];
  let refusal = { code: 'cluster', message: 'b belongs to cluster c2, a to cluster c1' };
  const { b } = await admittingPair(t, lines, () => refusal);
  // Lines of a's about the current refusal, at `level`.
  const refusedLines = (level: string): number => lines.filter((l) => l.side === 'a' && l.level === level && l.msg.includes(`refused this node: ${refusal.message}`)).length;
  await until('five refusals', () => (b.stats().refused.get('cluster') ?? 0) >= 5);
  t.is(refusedLines('warn'), 1, 'the first refusal is a warning');
  t.true(refusedLines('debug') >= 3, 'the retries after it are at debug');
  refusal = { code: 'incarnation', message: 'a is known by another incarnation' };
  await until('refused for the new reason', () => (b.stats().refused.get('incarnation') ?? 0) >= 3);
  t.is(refusedLines('warn'), 1, 'another reason: warned once again');
});

test('a node that stops, or forgets a peer, closes its connections without a word; the peers it leaves log an outage at info, not a refusal', async (t) => {
  const lines: LoggedLine[] = [];
  const logOf = sidedLog(lines);
  const token = 'secret-secret-secret';
  const got = { a: [] as Message[], b: [] as Message[] };
  const b = new TcpTransport({ id: 'b', listen: { host: '127.0.0.1', port: 0 }, peers: new Map(), token, log: logOf('b'), onMessage: (m) => got.b.push(m), reconnectMinMs: 10, reconnectMaxMs: 20 });
  await b.start();
  const a = new TcpTransport({ id: 'a', listen: { host: '127.0.0.1', port: 0 }, peers: new Map([['b', { host: '127.0.0.1', port: b.port }]]), token, log: logOf('a'), onMessage: (m) => got.a.push(m), reconnectMinMs: 10, reconnectMaxMs: 20 });
  await a.start();
  b.setPeer('a', { host: '127.0.0.1', port: a.port });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await until('both ways', () => {
    a.send([msg('a', 'b')]);
    b.send([msg('b', 'a')]);
    return got.a.length > 0 && got.b.length > 0;
  });
  b.setPeer('a', undefined); // forgotten (a removed member)
  await new Promise((r) => setTimeout(r, 50));
  await b.close(); // stopping
  await until('a sees the outage', () => lines.some((l) => l.side === 'a' && /unreachable/.test(l.msg)));
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(lines.filter((l) => l.level === 'warn'), [], 'no warning on either side');
  t.deepEqual(lines.filter((l) => l.side === 'b' && l.level !== 'debug'), [], 'the side that closed says nothing');
});

test('a peer not found at its address is tried at its alternates, and reached only where it proves who it is', async (t) => {
  const token = 'secret-secret-secret';
  const got: Message[] = [];
  const b = new TcpTransport({ id: 'b', listen: { host: '127.0.0.1', port: 0 }, peers: new Map(), token, log: silent, onMessage: (m) => got.push(m) });
  await b.start();
  // Another member (c) listens where a stale record would send a; nothing listens at `dead`.
  const c = new TcpTransport({ id: 'c', listen: { host: '127.0.0.1', port: 0 }, peers: new Map(), token, log: silent, onMessage: (m) => got.push(m) });
  await c.start();
  const dead = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
  const a = new TcpTransport({
    id: 'a',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map([['b', { host: '127.0.0.1', port: dead }]]),
    alternates: new Map([['b', [{ host: '127.0.0.1', port: c.port }, { host: '127.0.0.1', port: b.port }]]]),
    token,
    log: silent,
    onMessage: () => undefined,
    reconnectMinMs: 10,
    reconnectMaxMs: 20,
  });
  await a.start();
  t.teardown(async () => {
    await a.close();
    await b.close();
    await c.close();
  });
  t.is(a.provenAddress('b'), undefined, 'nowhere proven yet: no evidence may be gathered about b');
  await until('delivery to b through its second alternate', () => {
    a.send([msg('a', 'b')]);
    return got.length > 0;
  });
  t.true(got.every((m) => m.to === 'b'), 'nothing went to c');
  t.deepEqual(a.provenAddress('b'), { host: '127.0.0.1', port: b.port }, 'where b proved who it is, not its first address');
  // setPeer with the same addresses changes nothing; another list replaces the peer.
  a.setPeer('b', { host: '127.0.0.1', port: dead }, [{ host: '127.0.0.1', port: c.port }, { host: '127.0.0.1', port: b.port }]);
  t.true(a.peerStatus('b').reachable);
});
