// What a hostile client can put on a node's Raft port: length-prefixed JSON frames
// (the wire format of packages/cluster's codec, written out here on purpose so the
// tests do not depend on the code they attack), sent over a raw TCP socket.
import net from 'node:net';
import { within } from './wait.js';

/** A 4-byte big-endian length, then the JSON; byte arrays as {"$b64": "..."}. */
export function frame(value: unknown): Buffer {
  const body = Buffer.from(
    JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
      const raw = this[key];
      return raw instanceof Uint8Array ? { $b64: Buffer.from(raw).toString('base64') } : v;
    }),
  );
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

/** A pool command as the log carries it (a CommandEnvelope, JSON in the entry's data). */
export function commandData(command: unknown, requestId = `attack-${Math.random().toString(36).slice(2)}`): Uint8Array {
  return new Uint8Array(Buffer.from(JSON.stringify({ requestId, command })));
}

/**
 * A MsgApp that appends one entry after (index, logTerm) and commits it: what the
 * leader `from` would send to `to` in `term`.
 */
export function msgApp(opts: { from: string; to: string; term: number; index: number; logTerm: number; data: Uint8Array }): Record<string, unknown> {
  const { from, to, term, index, logTerm, data } = opts;
  return {
    type: 'MsgApp',
    from,
    to,
    term,
    logTerm,
    index,
    commit: index + 1,
    reject: false,
    rejectHint: 0,
    tick: 0,
    entries: [{ term, index: index + 1, type: 'normal', data }],
  };
}

/**
 * Connects to 127.0.0.1:port, writes `bytes`, and resolves once the node closed the
 * connection (or after `lingerMs` if it did not), with everything the node sent back.
 */
export async function sendRaw(port: number, bytes: Buffer, lingerMs = 3000): Promise<{ closedByPeer: boolean; received: Buffer }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  await within(`connect to :${port}`, new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  }), 5000);
  socket.write(bytes);
  const closedByPeer = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), lingerMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  socket.destroy();
  return { closedByPeer, received: Buffer.concat(chunks) };
}
