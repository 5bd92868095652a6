import { hash } from 'node:crypto';
import type { MemberChangeCommand, PoolCommand } from './types.js';

/**
 * A short digest of a canonical (validated) command. Stored with each remembered request
 * id so a client that reuses an id for a *different* command gets CONFLICT instead of the
 * first command's answer. validateCommand builds objects in a fixed key order, so
 * JSON.stringify is canonical here. 128 bits make accidental collisions irrelevant.
 */
export function fingerprintOf(command: PoolCommand | MemberChangeCommand): string {
  // One-shot: the same digest as createHash().update().digest(), without the Hash object.
  return hash('sha256', JSON.stringify(command), 'base64url').slice(0, 22);
}
