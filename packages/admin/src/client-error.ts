// Requests node:http refuses before Koa sees them (a request line or header section
// over the limit, a malformed request, a head that took too long). Node would answer
// with a bare status line; this answers in the API's error shape instead, so every
// error a client of the admin API can get is JSON with a code.
import type { Duplex } from 'node:stream';
import type { AdminErrorCode } from './errors.js';

const REFUSALS: Readonly<Record<string, { status: number; reason: string; code: AdminErrorCode; message: string }>> = {
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', code: 'HEADERS_TOO_LARGE', message: 'the request line or headers exceed the size limit' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: 'Request Timeout', code: 'REQUEST_TIMEOUT', message: 'the request was not received in time' },
};
const MALFORMED = { status: 400, reason: 'Bad Request', code: 'BAD_REQUEST' as const, message: 'the request is not valid HTTP/1.1' };

/** A 'clientError' listener for the admin API's http.Server. */
export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  // Nothing can be written to a connection that is gone, or whose response has begun
  // (node's own handler makes the same checks).
  const response = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || response?.headersSent === true) {
    socket.destroy();
    return;
  }
  const refusal = REFUSALS[err.code ?? ''] ?? MALFORMED;
  const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
  socket.end(
    `HTTP/1.1 ${refusal.status} ${refusal.reason}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}
