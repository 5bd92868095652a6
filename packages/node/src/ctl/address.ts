import { ConfigError } from '../config/config-error.js';

export interface ServerAddress {
  /** As typed (the admin API canonicalises it). */
  readonly ip: string;
  readonly port: number;
}

/**
 * A server argument: `ip:port` or `[ipv6]:port`. Only split here; the admin API checks
 * and canonicalises the address, so the CLI and the API can never disagree on what is valid.
 */
export function parseServerAddress(raw: string, where = 'address'): ServerAddress {
  const bracketed = /^\[([^\]]+)\]:([0-9]+)$/.exec(raw);
  let ip: string;
  let portText: string;
  if (bracketed) {
    ip = bracketed[1]!;
    portText = bracketed[2]!;
  } else {
    const colon = raw.lastIndexOf(':');
    if (colon <= 0) throw new ConfigError(`${where} "${raw}" needs a port: write IP:PORT, e.g. 10.0.0.1:80 or [::1]:8081`);
    if (raw.indexOf(':') !== colon) throw new ConfigError(`${where} "${raw}": write IPv6 addresses in brackets, e.g. [::1]:8081`);
    ip = raw.slice(0, colon);
    portText = raw.slice(colon + 1);
  }
  const port = Number(portText);
  if (!/^[0-9]{1,5}$/.test(portText) || port < 1 || port > 65535) throw new ConfigError(`${where} "${raw}": the port must be 1-65535`);
  return { ip, port };
}

export function formatAddress(a: ServerAddress): string {
  return a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}
