// Value parsers for the serving and VIP settings (see values.ts for the conventions).
import { BlockList, isIP } from 'node:net';
import { ValueError } from './values.js';

export interface VipAddress {
  readonly address: string;
  readonly prefix: number;
  readonly family: 4 | 6;
}

export function formatVip(vip: VipAddress): string {
  return `${vip.address}/${vip.prefix}`;
}

// Addresses that can never be a service address on a LAN segment.
const UNUSABLE = new BlockList();
UNUSABLE.addSubnet('0.0.0.0', 8, 'ipv4');
UNUSABLE.addSubnet('127.0.0.0', 8, 'ipv4');
UNUSABLE.addSubnet('224.0.0.0', 4, 'ipv4');
UNUSABLE.addAddress('255.255.255.255', 'ipv4');
UNUSABLE.addAddress('::', 'ipv6');
UNUSABLE.addAddress('::1', 'ipv6');
UNUSABLE.addSubnet('ff00::', 8, 'ipv6');

/** `10.0.0.100/24` or `fd00::100/64`: the address and the prefix of its subnet. */
export function parseVip(raw: unknown): VipAddress {
  if (typeof raw !== 'string') throw new ValueError(`expected ADDRESS/PREFIX (e.g. 10.0.0.100/24), got ${JSON.stringify(raw)}`);
  const m = /^([^/\s]+)\/([0-9]{1,3})$/.exec(raw.trim());
  if (m === null) throw new ValueError(`"${raw}" is not ADDRESS/PREFIX (e.g. 10.0.0.100/24 or fd00::100/64)`);
  const address = m[1]!;
  const family = isIP(address);
  if (family === 0) throw new ValueError(`"${address}" is not an IP address (zone ids and host names are not accepted)`);
  const prefix = Number(m[2]);
  const max = family === 4 ? 32 : 128;
  if (prefix < 1 || prefix > max) throw new ValueError(`prefix /${prefix} is out of range [1, ${max}]`);
  if (family === 4 && /(^|\.)0[0-9]/.test(address)) throw new ValueError(`"${address}" has a leading zero in an octet`);
  if (UNUSABLE.check(address, family === 4 ? 'ipv4' : 'ipv6')) throw new ValueError(`"${address}" cannot be a virtual IP (unspecified, loopback, multicast or broadcast)`);
  return { address: family === 6 ? address.toLowerCase() : address, prefix, family: family as 4 | 6 };
}

/** A Linux interface name: 1–15 characters, no '/', whitespace or ':' (IFNAMSIZ). */
export function parseInterfaceName(raw: unknown): string {
  if (typeof raw !== 'string' || !/^[A-Za-z0-9_.@-]{1,15}$/.test(raw) || raw === '.' || raw === '..') {
    throw new ValueError(`${JSON.stringify(raw)} is not an interface name (1-15 characters: letters, digits, '_', '.', '@', '-')`);
  }
  return raw;
}

/** on/off (also true/false, yes/no, 1/0; in the config file booleans). */
export function parseOnOff(raw: unknown): boolean {
  const value = typeof raw === 'string' ? raw.trim().toLowerCase() : raw;
  if (value === true || value === 'on' || value === 'true' || value === 'yes' || value === '1') return true;
  if (value === false || value === 'off' || value === 'false' || value === 'no' || value === '0') return false;
  throw new ValueError(`${JSON.stringify(raw)} is not one of on, off`);
}
