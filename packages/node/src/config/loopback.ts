// Whether only this host can reach an address: the line between "a local process may
// talk to it" and "the network may", on which the security checks turn.
import { BlockList, isIP } from 'node:net';

// 127.0.0.0/8 and ::1 (BlockList also matches other spellings, e.g. 0:0:0:0:0:0:0:1).
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Loopback addresses and `localhost`; a wildcard (0.0.0.0, ::) or any other name is not. */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host)?.[1];
  if (mapped !== undefined) return isLoopbackHost(mapped);
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}
