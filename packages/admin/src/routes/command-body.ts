import { AdminError } from '../errors.js';

/**
 * Builds the raw command for a route from its JSON body plus values taken from the URL.
 * Keys the URL supplies (and `type`) may not also appear in the body: silently letting
 * one win would hide a client bug.
 */
export function commandFromBody(type: string, body: Readonly<Record<string, unknown>>, fromPath: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  for (const key of ['type', ...Object.keys(fromPath)]) {
    if (Object.hasOwn(body, key)) {
      const hint = key === 'type' ? 'the route determines the command' : 'it is taken from the URL';
      throw new AdminError(400, 'INVALID_COMMAND', `${key} is not a known field here (${hint})`, { field: key });
    }
  }
  return { ...body, type, ...fromPath };
}
