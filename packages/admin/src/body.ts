// A small strict JSON body reader (koa-bodyparser is not a dependency, on purpose: we
// want the limit enforced while streaming and every failure mapped to our error codes).
import type { IncomingMessage } from 'node:http';
import { duplicateJsonKey } from '@weldr/store';
import { AdminError } from './errors.js';

// `curl -d` sends application/x-www-form-urlencoded unless told otherwise, and the
// seed's documented usage is `curl localhost:8687/servers -d '{"ip":…}'`. We accept
// that type (and a missing one) but still require the body itself to be JSON.
const ACCEPTED_TYPES = new Set(['application/json', 'application/x-www-form-urlencoded']);
// "utf8" is a common spelling of the same charset (a WHATWG Encoding label for UTF-8).
const UTF8_LABELS = new Set(['utf-8', 'utf8']);

/**
 * Reads the request body as a JSON object. Throws AdminError with 415 (media type or
 * encoding), 413 (over `limitBytes`, checked against Content-Length first and then while
 * streaming) or 400 INVALID_JSON (empty, not UTF-8, not JSON, not an object).
 */
export async function readJsonBody(req: IncomingMessage, limitBytes: number): Promise<Record<string, unknown>> {
  checkMediaType(req);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limitBytes) throw tooLarge(limitBytes);
  const raw = await readLimited(req, limitBytes);
  if (raw.length === 0) throw new AdminError(400, 'INVALID_JSON', 'the request body is empty; expected a JSON object');
  let text: string;
  try {
    // ignoreBOM false: a leading byte order mark is dropped (RFC 8259 §8.1 lets parsers
    // ignore one; Windows tools add it), rather than failing as an "unexpected token".
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(raw);
  } catch {
    throw new AdminError(400, 'INVALID_JSON', 'the request body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AdminError(400, 'INVALID_JSON', `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AdminError(400, 'INVALID_JSON', 'the request body must be a JSON object');
  }
  const duplicate = duplicateJsonKey(text);
  if (duplicate !== undefined) {
    throw new AdminError(400, 'INVALID_JSON', `the request body has the key ${JSON.stringify(duplicate)} more than once in one object; each key may appear once`);
  }
  return value as Record<string, unknown>;
}

function checkMediaType(req: IncomingMessage): void {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw new AdminError(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Encoding ${encoding} is not supported; send the body uncompressed`);
  }
  const header = req.headers['content-type'];
  if (header === undefined) return;
  const [type = '', ...params] = header.split(';').map((p) => p.trim().toLowerCase());
  if (!ACCEPTED_TYPES.has(type) && !(type.startsWith('application/') && type.endsWith('+json'))) {
    throw new AdminError(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Type ${header} is not supported; send application/json`);
  }
  for (const param of params) {
    const [name, value = ''] = param.split('=').map((s) => s.trim());
    if (name === 'charset' && !UTF8_LABELS.has(value.replace(/"/g, ''))) {
      throw new AdminError(415, 'UNSUPPORTED_MEDIA_TYPE', `charset ${value} is not supported; send UTF-8`);
    }
  }
}

/**
 * Buffers the body up to the limit. Events rather than `for await`: leaving an async
 * iterator early destroys the request, and with it the socket, so the client would see
 * a reset instead of our 413. Past the limit the rest is drained and discarded.
 */
function readLimited(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limitBytes) {
        chunks.push(chunk);
        return;
      }
      cleanup();
      req.resume();
      reject(tooLarge(limitBytes));
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new AdminError(400, 'INVALID_JSON', 'the request body could not be read', { cause: err }));
    };
    // 'close' before 'end' means the client went away mid-body.
    const onClose = (): void => onError(new Error('request closed before the body ended'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function tooLarge(limitBytes: number): AdminError {
  // Close the connection: the rest of the body is still on the wire and we will not read it.
  return new AdminError(413, 'BODY_TOO_LARGE', `the request body exceeds ${limitBytes} bytes`, { headers: { Connection: 'close' } });
}
