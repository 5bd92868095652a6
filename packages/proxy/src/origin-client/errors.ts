// Errors of the native origin client. They carry undici's codes so that errors.ts
// (classifyOriginError) sorts them exactly as it sorts undici's: refused / reset /
// timeout / bad_response, and the retry rules in upstream.ts stay as they are.

export function originError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

export const connectTimeout = (): Error => originError('UND_ERR_CONNECT_TIMEOUT', 'connect timeout');
export const headersTimeout = (): Error => originError('UND_ERR_HEADERS_TIMEOUT', 'headers timeout');
export const bodyTimeout = (): Error => originError('UND_ERR_BODY_TIMEOUT', 'body timeout');
/** The origin closed (or reset) the connection before the response was complete. */
export const socketClosed = (): Error => originError('UND_ERR_SOCKET', 'other side closed');
export const badResponse = (message: string): Error => originError('WELDR_BAD_RESPONSE', message);
export const aborted = (): Error => originError('UND_ERR_ABORTED', 'request aborted');
export const clientClosed = (): Error => originError('UND_ERR_CLOSED', 'origin client closed');
export const clientDestroyed = (): Error => originError('UND_ERR_DESTROYED', 'origin client destroyed');
