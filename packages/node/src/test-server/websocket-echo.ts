// A minimal RFC 6455 echo endpoint, hand-written so the test server needs no
// dependency: the opening handshake (§4.2), masked client frames (§5.3), fragmented
// messages (§5.4), ping/pong (§5.5.2-3) and the closing handshake (§5.5.1, §7).
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'; // §1.3
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** §4.2.2: Sec-WebSocket-Accept is base64(SHA-1(key + GUID)). */
export function websocketAccept(key: string): string {
  return createHash('sha1').update(key + HANDSHAKE_GUID).digest('base64');
}

/** Refuses the upgrade with a plain HTTP response and closes the socket. */
function refuse(socket: Duplex, status: string, extra = ''): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n${extra}\r\n`);
}

/**
 * Completes the handshake for a `GET /ws` upgrade and echoes every text or binary
 * message back until the client closes. `head` is what the HTTP parser read past the
 * request head (the first frame bytes, possibly).
 */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, serverId: string): void {
  const key = req.headers['sec-websocket-key'];
  const upgrade = req.headers.upgrade?.toLowerCase();
  if (req.method !== 'GET' || upgrade !== 'websocket' || typeof key !== 'string' || key.length === 0) {
    refuse(socket, '400 Bad Request');
    return;
  }
  if (req.headers['sec-websocket-version'] !== '13') {
    refuse(socket, '426 Upgrade Required', 'Sec-WebSocket-Version: 13\r\n'); // §4.4
    return;
  }
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${websocketAccept(key)}\r\n` +
      `x-server-id: ${serverId}\r\n\r\n`,
  );
  new EchoConnection(socket).feed(head);
}

/** Encodes one unmasked server frame (§5.1: servers never mask). */
export function encodeFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const len = payload.length;
  const headerLen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLen + len);
  frame[0] = (fin ? 0x80 : 0) | opcode;
  if (len < 126) {
    frame[1] = len;
  } else if (len < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(len), 2);
  }
  payload.copy(frame, headerLen);
  return frame;
}

class EchoConnection {
  private buffered: Buffer = Buffer.alloc(0);
  private messageOpcode = 0;
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  private closing = false;

  constructor(private readonly socket: Duplex) {
    socket.on('data', (chunk: Buffer) => this.feed(chunk));
    socket.on('error', () => socket.destroy());
    // The HTTP server leaves upgraded sockets half-open: answer the peer's FIN with ours,
    // or the connection lingers in CLOSE-WAIT.
    socket.on('end', () => socket.end());
  }

  feed(chunk: Buffer): void {
    if (chunk.length === 0 || this.closing) return;
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (!this.closing) {
      const consumed = this.parseFrame(this.buffered);
      if (consumed === 0) break;
      this.buffered = this.buffered.subarray(consumed);
    }
  }

  /** Parses and handles one frame at the start of buf; returns the bytes used (0: need more). */
  private parseFrame(buf: Buffer): number {
    if (buf.length < 2) return 0;
    const fin = (buf[0]! & 0x80) !== 0;
    const rsv = buf[0]! & 0x70;
    const opcode = buf[0]! & 0x0f;
    const masked = (buf[1]! & 0x80) !== 0;
    let len = buf[1]! & 0x7f;
    let at = 2;
    if (len === 126) {
      if (buf.length < 4) return 0;
      len = buf.readUInt16BE(2);
      at = 4;
    } else if (len === 127) {
      if (buf.length < 10) return 0;
      const big = buf.readBigUInt64BE(2);
      if (big > BigInt(MAX_MESSAGE_BYTES)) return this.fail(1009, 'message too big');
      len = Number(big);
      at = 10;
    }
    // §5.1: a server must close the connection on an unmasked client frame.
    if (!masked) return this.fail(1002, 'client frames must be masked');
    if (rsv !== 0) return this.fail(1002, 'no extension negotiated');
    if (buf.length < at + 4 + len) return 0;
    const mask = buf.subarray(at, at + 4);
    const payload = Buffer.allocUnsafe(len);
    for (let i = 0; i < len; i++) payload[i] = buf[at + 4 + i]! ^ mask[i & 3]!;
    this.handle(fin, opcode, payload);
    return at + 4 + len;
  }

  private handle(fin: boolean, opcode: number, payload: Buffer): void {
    if (opcode >= 0x8) {
      // §5.5: control frames are never fragmented and carry at most 125 bytes.
      if (!fin || payload.length > 125) {
        this.fail(1002, 'bad control frame');
      } else if (opcode === OP_PING) {
        this.socket.write(encodeFrame(OP_PONG, payload));
      } else if (opcode === OP_CLOSE) {
        // §5.5.1: echo the status code back, then close the TCP connection.
        this.closing = true;
        this.socket.end(encodeFrame(OP_CLOSE, payload.subarray(0, 2)));
      } else if (opcode !== OP_PONG) {
        this.fail(1002, 'unknown control opcode');
      }
      return;
    }
    if (opcode === OP_CONTINUATION) {
      if (this.messageOpcode === 0) return void this.fail(1002, 'continuation without a message');
    } else if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (this.messageOpcode !== 0) return void this.fail(1002, 'new message inside a fragmented one');
      this.messageOpcode = opcode;
    } else {
      return void this.fail(1002, 'unknown opcode');
    }
    this.fragmentBytes += payload.length;
    if (this.fragmentBytes > MAX_MESSAGE_BYTES) return void this.fail(1009, 'message too big');
    this.fragments.push(payload);
    if (!fin) return;
    const message = this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments);
    if (this.messageOpcode === OP_TEXT && !isUtf8(message)) return void this.fail(1007, 'invalid UTF-8');
    this.socket.write(encodeFrame(this.messageOpcode, message));
    this.messageOpcode = 0;
    this.fragments = [];
    this.fragmentBytes = 0;
  }

  /** Closes with a status code (§7.4.1) and stops reading; returns 0 so the parser stops. */
  private fail(code: number, reason: string): number {
    this.closing = true;
    const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
    payload.writeUInt16BE(code, 0);
    payload.write(reason, 2);
    this.socket.end(encodeFrame(OP_CLOSE, payload));
    return 0;
  }
}
