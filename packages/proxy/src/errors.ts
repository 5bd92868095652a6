// Stable error codes for proxy-generated responses, grouped by where the failure came
// from (STYLE.md "Errors by source"): the client (4xx), the origin (502/504), or the
// pool having nothing to route to (503). The code travels in the `x-weldr-error`
// response header, in logs and in metrics labels, so it must never change meaning.

export type ProxyErrorCode =
  | 'BAD_REQUEST'
  | 'HEADERS_TOO_LARGE'
  | 'CLIENT_TIMEOUT'
  | 'URI_TOO_LONG'
  | 'CONTENT_TOO_LARGE'
  | 'NOT_IMPLEMENTED'
  | 'METHOD_NOT_ALLOWED'
  | 'EXPECTATION_FAILED'
  | 'LOOP_DETECTED'
  | 'PIPELINE_LIMIT'
  | 'VERSION_NOT_SUPPORTED'
  | 'NO_ORIGIN'
  | 'ORIGIN_REFUSED'
  | 'ORIGIN_RESET'
  | 'ORIGIN_BAD_RESPONSE'
  | 'ORIGIN_TIMEOUT'
  | 'SHUTTING_DOWN';

interface ErrorInfo {
  readonly status: number;
  readonly reason: string;
}

export const ERRORS: { readonly [K in ProxyErrorCode]: ErrorInfo } = {
  BAD_REQUEST: { status: 400, reason: 'Bad Request' },
  HEADERS_TOO_LARGE: { status: 431, reason: 'Request Header Fields Too Large' },
  CLIENT_TIMEOUT: { status: 408, reason: 'Request Timeout' },
  URI_TOO_LONG: { status: 414, reason: 'URI Too Long' },
  CONTENT_TOO_LARGE: { status: 413, reason: 'Content Too Large' },
  NOT_IMPLEMENTED: { status: 501, reason: 'Not Implemented' },
  METHOD_NOT_ALLOWED: { status: 405, reason: 'Method Not Allowed' },
  EXPECTATION_FAILED: { status: 417, reason: 'Expectation Failed' },
  LOOP_DETECTED: { status: 508, reason: 'Loop Detected' },
  // RFC 6585 §4: more requests pipelined on one connection than the proxy holds.
  PIPELINE_LIMIT: { status: 429, reason: 'Too Many Requests' },
  VERSION_NOT_SUPPORTED: { status: 505, reason: 'HTTP Version Not Supported' },
  NO_ORIGIN: { status: 503, reason: 'Service Unavailable' },
  ORIGIN_REFUSED: { status: 502, reason: 'Bad Gateway' },
  ORIGIN_RESET: { status: 502, reason: 'Bad Gateway' },
  ORIGIN_BAD_RESPONSE: { status: 502, reason: 'Bad Gateway' },
  ORIGIN_TIMEOUT: { status: 504, reason: 'Gateway Timeout' },
  SHUTTING_DOWN: { status: 503, reason: 'Service Unavailable' },
};

export function statusOf(code: ProxyErrorCode): number {
  return ERRORS[code].status;
}

/** Origin failure reasons, as counted in stats and metrics. */
export type OriginFailure = 'refused' | 'reset' | 'timeout' | 'bad_response';

export function originFailureCode(reason: OriginFailure): ProxyErrorCode {
  switch (reason) {
    case 'refused':
      return 'ORIGIN_REFUSED';
    case 'reset':
      return 'ORIGIN_RESET';
    case 'timeout':
      return 'ORIGIN_TIMEOUT';
    case 'bad_response':
      return 'ORIGIN_BAD_RESPONSE';
  }
}

/**
 * Classify an error surfaced by undici while talking to an origin. `connected` says
 * whether any request byte was handed to the origin's socket (onConnect ran): a failure
 * before that is a refusal whatever the errno, and is always safe to retry.
 */
export function classifyOriginError(err: unknown, connected: boolean): OriginFailure {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return 'timeout';
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return 'refused';
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_HEADER_OVERFLOW':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_VERSION':
    case 'HPE_LF_EXPECTED':
    case 'HPE_CR_EXPECTED':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
    case 'UND_ERR_HEADERS_OVERFLOW':
    case 'WELDR_BAD_RESPONSE':
    // undici asserts on some malformed heads (e.g. a status code below 100).
    case 'ERR_ASSERTION':
      return 'bad_response';
    default:
      if (typeof code === 'string' && code.startsWith('HPE_')) return 'bad_response';
      // undici 7 raises HTTPParserError for a malformed response head with `code`
      // unset (the llhttp reason is only in the message): the origin did answer, badly.
      if (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'HTTPParserError') return 'bad_response';
      if (isUndiciSocketError(err) && (err as { message?: string }).message?.startsWith('bad ')) return 'bad_response';
      return connected ? 'reset' : 'refused';
  }
}

function isUndiciSocketError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'UND_ERR_SOCKET';
}

/**
 * The bytes of a proxy-generated error response. `close` adds `Connection: close`:
 * used whenever the state of the client connection is unknown (a malformed request,
 * an unread request body), so a smuggled remainder is never parsed as a next request.
 */
export function errorBody(code: ProxyErrorCode): string {
  return `${ERRORS[code].reason} (${code})\n`;
}

/** A complete raw error response, for sockets that no ServerResponse owns. */
export function rawErrorResponse(code: ProxyErrorCode, extraHeaders = ''): string {
  const info = ERRORS[code];
  const body = errorBody(code);
  return (
    `HTTP/1.1 ${info.status} ${info.reason}\r\n` +
    `content-type: text/plain; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    `x-weldr-error: ${code}\r\n` +
    // RFC 9110 §6.6.1: 4xx responses carry Date (node adds it to every other response).
    `date: ${new Date().toUTCString()}\r\n` +
    extraHeaders +
    `connection: close\r\n\r\n` +
    body
  );
}
