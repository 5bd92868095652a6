// Caps on connections that have not authenticated yet. Before its hello is accepted a
// connection is a stranger's: it may hold at most a small frame, for a short time, and
// only so many strangers are let in at once — in total, and from one source. A member
// needs one such connection per peer and per reconnect, so the defaults leave ample room
// for a cluster while a flood from one host, or many, finds the door shut.
import { isIPv6 } from 'node:net';

export type Admission = 'admitted' | 'too_many_pending' | 'too_many_from_source';

export class PendingConnections {
  private readonly bySource = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerSource: number,
  ) {}

  /** Counts the connection in when there is room; the caller must release() it exactly once. */
  admit(source: string): Admission {
    if (this.total >= this.maxTotal) return 'too_many_pending';
    const n = this.bySource.get(source) ?? 0;
    if (n >= this.maxPerSource) return 'too_many_from_source';
    this.bySource.set(source, n + 1);
    this.total++;
    return 'admitted';
  }

  release(source: string): void {
    const n = this.bySource.get(source);
    if (n === undefined) return;
    if (n <= 1) this.bySource.delete(source);
    else this.bySource.set(source, n - 1);
    this.total--;
  }

  get size(): number {
    return this.total;
  }
}

/**
 * The source a connection is counted against: its IPv4 address (IPv4-mapped IPv6 spelled
 * as IPv4), or for IPv6 its /64, which one host or site usually gets whole (RFC 6177), so
 * hopping through addresses of one prefix does not escape the per-source cap.
 */
export function sourceOf(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress)?.[1];
  if (mapped !== undefined) return mapped;
  if (!isIPv6(remoteAddress)) return remoteAddress;
  return `${expandIPv6(remoteAddress).slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}
