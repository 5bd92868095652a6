// Addresses as members write them in their records (`host:port`, IPv6 in brackets) and
// as this node advertises its own listeners.
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import type { HostPort } from './types.js';

export const isWildcard = (host: string): boolean => host === '0.0.0.0' || host === '::' || host === '';

export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `host:port` / `[v6]:port` (as validateHostPort returns it) → HostPort. */
export function parseHostPort(text: string): HostPort {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (bracketed !== null) return { host: bracketed[1]!, port: Number(bracketed[2]) };
  const colon = text.lastIndexOf(':');
  return { host: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
}

/**
 * How peers reach a listener of this node. A listener bound to a wildcard is advertised
 * with the host peers already use for this node: its own --peers entry, else the Raft
 * listener's host, else the machine's host name.
 */
export function advertisedAddress(bound: HostPort, raft: HostPort, selfPeer: HostPort | undefined): HostPort {
  if (!isWildcard(bound.host)) return bound;
  if (selfPeer !== undefined && !isWildcard(selfPeer.host)) return { host: selfPeer.host, port: bound.port };
  if (!isWildcard(raft.host)) return { host: raft.host, port: bound.port };
  return { host: hostname(), port: bound.port };
}
