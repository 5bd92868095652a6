import { serverId, validateIp, validatePort } from '@weldr/store';
import { AdminError } from '../errors.js';
import type { ResolvedDeps } from '../context.js';

/**
 * A server at one of this node's own listeners would make the proxy forward to itself:
 * every request (and health check) loops until its headers overflow. `prefix` is the
 * command's place in a batch ("commands[2].") so the error names the right field.
 */
export function refuseOwnListener(deps: ResolvedDeps, command: Readonly<Record<string, unknown>>, prefix = ''): void {
  if (deps.ownListenerAt === undefined) return;
  let ip: string;
  let port: number;
  try {
    ip = validateIp(command['ip']);
    port = validatePort(command['port']);
  } catch {
    return; // commit() reports the malformed address with its field
  }
  const listener = deps.ownListenerAt(ip, port);
  if (listener === undefined) return;
  throw new AdminError(400, 'INVALID_COMMAND', `${prefix}${serverId(ip, port)} is this node's own ${listener} listener: the proxy would forward requests to itself`, { field: `${prefix}port` });
}
