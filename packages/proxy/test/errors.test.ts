import test from 'ava';
import { classifyOriginError, originFailureCode, rawErrorResponse, statusOf, type OriginFailure, type ProxyErrorCode } from '../src/errors.js';
import { clientErrorCode } from '../src/server.js';

const err = (code: string, message = 'x') => Object.assign(new Error(message), { code });

test('origin errors map by source to a reason, a code and a status', (t) => {
  const cases: [Error & { code: string }, boolean, OriginFailure, ProxyErrorCode, number][] = [
    [err('ECONNREFUSED'), false, 'refused', 'ORIGIN_REFUSED', 502],
    [err('UND_ERR_CONNECT_TIMEOUT'), false, 'timeout', 'ORIGIN_TIMEOUT', 504],
    [err('UND_ERR_HEADERS_TIMEOUT'), true, 'timeout', 'ORIGIN_TIMEOUT', 504],
    [err('UND_ERR_BODY_TIMEOUT'), true, 'timeout', 'ORIGIN_TIMEOUT', 504],
    [err('ECONNRESET'), true, 'reset', 'ORIGIN_RESET', 502],
    [err('UND_ERR_SOCKET', 'other side closed'), true, 'reset', 'ORIGIN_RESET', 502],
    [err('UND_ERR_SOCKET', 'other side closed'), false, 'refused', 'ORIGIN_REFUSED', 502],
    [err('UND_ERR_SOCKET', 'bad response'), true, 'bad_response', 'ORIGIN_BAD_RESPONSE', 502],
    [err('HPE_INVALID_CONSTANT'), true, 'bad_response', 'ORIGIN_BAD_RESPONSE', 502],
    [err('UND_ERR_RES_CONTENT_LENGTH_MISMATCH'), true, 'bad_response', 'ORIGIN_BAD_RESPONSE', 502],
    [err('WELDR_BAD_RESPONSE'), true, 'bad_response', 'ORIGIN_BAD_RESPONSE', 502],
    // undici's HTTPParserError for a malformed response head has no `code`.
    [Object.assign(new Error('Response does not match the HTTP/1.1 protocol (Invalid response status)'), { name: 'HTTPParserError', code: undefined as unknown as string }), true, 'bad_response', 'ORIGIN_BAD_RESPONSE', 502],
  ];
  for (const [e, connected, reason, code, status] of cases) {
    const r = classifyOriginError(e, connected);
    t.is(r, reason, `${e.message} ${e.code}`);
    t.is(originFailureCode(r), code);
    t.is(statusOf(originFailureCode(r)), status);
  }
});

test('client parse errors map to 400 / 408 / 431 / 501 / 505', (t) => {
  t.is(clientErrorCode('HPE_HEADER_OVERFLOW'), 'HEADERS_TOO_LARGE');
  t.is(clientErrorCode('ERR_HTTP_REQUEST_TIMEOUT'), 'CLIENT_TIMEOUT');
  t.is(clientErrorCode('HPE_INVALID_HEADER_TOKEN'), 'BAD_REQUEST');
  t.is(clientErrorCode('HPE_INVALID_METHOD', Buffer.from('BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n')), 'NOT_IMPLEMENTED');
  t.is(clientErrorCode('HPE_INVALID_METHOD', Buffer.from('\x01\x02 garbage')), 'BAD_REQUEST');
  t.is(clientErrorCode('HPE_INVALID_VERSION', Buffer.from('GET / HTTP/2.0\r\n')), 'VERSION_NOT_SUPPORTED');
  t.is(clientErrorCode('HPE_INVALID_VERSION', Buffer.from('GET / HTTP/1.7\r\n')), 'BAD_REQUEST');
});

test('raw error responses are complete and close the connection', (t) => {
  const r = rawErrorResponse('BAD_REQUEST');
  t.regex(r, /^HTTP\/1\.1 400 Bad Request\r\n/);
  t.regex(r, /\r\nconnection: close\r\n/);
  t.regex(r, /\r\nx-weldr-error: BAD_REQUEST\r\n/);
  const [head, body] = r.split('\r\n\r\n');
  t.is(Number(/content-length: (\d+)/.exec(head!)![1]), Buffer.byteLength(body!));
});
