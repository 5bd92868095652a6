// The platform tools the VIP guard runs, and how to read what they say. Pure functions:
// the guard (vip-guard.ts) runs the commands; the unit tests check the flags.
//
// - `ip addr add|del` (iproute2) configures the address: CAP_NET_ADMIN.
// - The announcement moves the neighbours' caches to this host's MAC address at once,
//   instead of when their entry for the address expires (RFC 5227 §3 "ARP
//   Announcement" for IPv4; RFC 4861 §7.2.6 unsolicited Neighbor Advertisement for
//   IPv6): CAP_NET_RAW. Two arping programs ship under the same name with different
//   flags — iputils' (`-I IF`; `-i` is the interval there) and Thomas Habets' (Debian's
//   `arping` package: `-i IF`, `-S SOURCE`) — so the guard asks the installed one who it
//   is and uses its flags. For IPv6, libndp's ndptool sends the unsolicited NA.
import type { VipAddress } from '../config/vip-values.js';

export type ArpingVariant = 'iputils' | 'habets';

/** What announces the address once it is added. */
export type Announcer =
  | { readonly kind: 'iputils-arping' | 'habets-arping' | 'ndptool'; readonly command: string }
  | { readonly kind: 'none'; readonly reason: string };

/**
 * Which arping printed `text` (the output of `arping -V` and `arping --help` together):
 * iputils says "arping from iputils …", Habets' says "ARPing 2.23, by Thomas Habets".
 */
export function arpingVariant(text: string): ArpingVariant | undefined {
  if (/\biputils\b/i.test(text)) return 'iputils';
  if (/Habets|^ARPing \d/im.test(text)) return 'habets';
  return undefined;
}

export function ipAddArgs(vip: VipAddress, iface: string): string[] {
  // nodad: duplicate address detection would hold an IPv6 address back for a second
  // or more; the lease, not DAD, is what keeps a second holder away.
  return [vip.family === 6 ? '-6' : '-4', 'addr', 'add', `${vip.address}/${vip.prefix}`, 'dev', iface, ...(vip.family === 6 ? ['nodad'] : [])];
}

export function ipDelArgs(vip: VipAddress, iface: string): string[] {
  return [vip.family === 6 ? '-6' : '-4', 'addr', 'del', `${vip.address}/${vip.prefix}`, 'dev', iface];
}

/** `ip addr add` failed only because the address is there already. */
export function alreadyPresent(stderr: string): boolean {
  return /File exists/i.test(stderr);
}

/** `ip addr del` failed only because the address is not there. */
export function notPresent(stderr: string): boolean {
  return /Cannot assign requested address|Address not found|No such address|does not exist on device/i.test(stderr);
}

/** The command line that announces `vip` once (one gratuitous ARP / unsolicited NA). */
export function announceArgs(announcer: Announcer, vip: VipAddress, iface: string): string[] | undefined {
  switch (announcer.kind) {
    case 'iputils-arping':
      // -U: unsolicited ARP (sender and target = the address), one packet.
      return ['-q', '-U', '-c', '1', '-I', iface, vip.address];
    case 'habets-arping':
      // -U with -S: sender = target = the address; -w 0: no waiting for replies (there are none).
      return ['-q', '-U', '-c', '1', '-w', '0', '-i', iface, '-S', vip.address, vip.address];
    case 'ndptool':
      return ['-t', 'na', '-U', '-i', iface, '-T', vip.address, 'send'];
    case 'none':
      return undefined;
  }
}

/**
 * Whether an announcement went out. Habets' arping exits 1 when no reply came — always,
 * for an unsolicited ARP — and prints errors even with -q, so 1 with a silent stderr is
 * success there.
 */
export function announced(announcer: Announcer, code: number | null, stderr: string): boolean {
  if (code === 0) return true;
  return announcer.kind === 'habets-arping' && code === 1 && stderr.trim() === '';
}
