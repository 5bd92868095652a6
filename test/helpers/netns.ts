// A small network of Linux network namespaces for the VIP drill: a switch namespace with
// a bridge, N node namespaces and a client namespace, each with one veth port on the
// bridge and an address in 10.213.0.0/24. Everything lives inside namespaces created
// here (the veth pairs are created directly in them): the host's interfaces, addresses
// and routes are never touched. destroy() deletes the namespaces (and with them every
// interface and address), also after a failure.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export const LAB_SUBNET = '10.213.0';

export interface LabHost {
  readonly ns: string;
  readonly ip: string;
}

function ip(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('ip', args, { timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1, stdout, stderr });
    });
  });
}

async function must(args: readonly string[]): Promise<string> {
  const r = await ip(args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Why namespaces cannot be used here, or null when they can (checked synchronously, at load). */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)';
  const probe = `wprobe-${randomBytes(3).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
  } catch (err) {
    return `'ip netns add' failed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
  try {
    execFileSync('ip', ['-n', probe, 'link', 'add', 'b0', 'type', 'bridge'], { stdio: 'pipe' });
  } catch (err) {
    return `bridges cannot be created: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  } finally {
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'pipe' });
  }
  return null;
}

export class NetnsLab {
  private readonly namespaces: string[] = [];

  private constructor(
    readonly prefix: string,
    readonly nodes: readonly LabHost[],
    readonly client: LabHost,
  ) {}

  /** Creates the switch, `n` node namespaces (.11, .12, …) and the client (.10). */
  static async create(n: number): Promise<NetnsLab> {
    const prefix = `wv${randomBytes(2).toString('hex')}`;
    const nodes = Array.from({ length: n }, (_, i) => ({ ns: `${prefix}-n${i + 1}`, ip: `${LAB_SUBNET}.${11 + i}` }));
    const client = { ns: `${prefix}-cl`, ip: `${LAB_SUBNET}.10` };
    const lab = new NetnsLab(prefix, nodes, client);
    const sw = `${prefix}-sw`;
    try {
      for (const ns of [sw, client.ns, ...nodes.map((h) => h.ns)]) {
        await must(['netns', 'add', ns]);
        lab.namespaces.push(ns);
        await must(['-n', ns, 'link', 'set', 'lo', 'up']);
      }
      await must(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
      await must(['-n', sw, 'link', 'set', 'br0', 'up']);
      for (const [i, host] of [client, ...nodes].entries()) {
        // Created directly in the two namespaces: nothing appears on the host.
        await must(['link', 'add', 'eth0', 'netns', host.ns, 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', sw]);
        await must(['-n', sw, 'link', 'set', `p${i}`, 'master', 'br0']);
        await must(['-n', sw, 'link', 'set', `p${i}`, 'up']);
        await must(['-n', host.ns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0']);
        await must(['-n', host.ns, 'link', 'set', 'eth0', 'up']);
      }
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  /** `ip netns exec NS` — prefix for a process to run inside a namespace. */
  static exec(ns: string): string[] {
    return ['ip', 'netns', 'exec', ns];
  }

  ip(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return ip(args);
  }

  /** Which node namespaces have `address` configured now (one `ip` call per namespace). */
  async holders(address: string): Promise<string[]> {
    const out = await Promise.all(this.nodes.map(async (h) => ((await ip(['-n', h.ns, '-o', '-4', 'addr', 'show', 'dev', 'eth0'])).stdout.includes(` ${address}/`) ? h.ns : null)));
    return out.filter((x): x is string => x !== null);
  }

  async destroy(): Promise<void> {
    for (const ns of this.namespaces.splice(0).reverse()) await ip(['netns', 'del', ns]);
  }
}

/** One namespace's address events, from `ip -n NS -ts -o monitor address`. */
export interface AddressEvent {
  readonly ns: string;
  /** Epoch ms (from ip's timestamp, microsecond resolution). */
  readonly at: number;
  readonly added: boolean;
}

/**
 * Follows address additions and removals of `address` in every namespace as the kernel
 * reports them (netlink), so that an overlap shorter than any polling interval is seen.
 */
export class AddressMonitor {
  readonly events: AddressEvent[] = [];
  private readonly procs: ReturnType<typeof execFile>[] = [];

  constructor(namespaces: readonly string[], address: string) {
    for (const ns of namespaces) {
      const child = execFile('ip', ['-n', ns, '-ts', '-o', 'monitor', 'address'], { maxBuffer: 64 << 20 });
      let partial = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        partial += chunk;
        let nl: number;
        while ((nl = partial.indexOf('\n')) >= 0) {
          const line = partial.slice(0, nl);
          partial = partial.slice(nl + 1);
          const m = /^\[([0-9T:.-]+)\] (Deleted )?\d+: \S+ +inet6? ([0-9a-f.:]+)\//.exec(line);
          if (m === null || m[3] !== address) continue;
          // ip prints local time with microseconds: "2026-12-06T07:00:05.841516".
          const ts = m[1]!;
          this.events.push({ ns, at: Date.parse(ts.slice(0, 23)) + Number(ts.slice(23) || '0') / 1000, added: m[2] === undefined });
        }
      });
      child.on('error', () => undefined);
      this.procs.push(child);
    }
  }

  stop(): void {
    for (const p of this.procs) p.kill('SIGTERM');
  }

  /** Moments at which the address was added in one namespace while another still held it. */
  overlaps(): { ns: readonly string[]; at: number }[] {
    const held = new Set<string>();
    const out: { ns: string[]; at: number }[] = [];
    for (const e of [...this.events].sort((a, b) => a.at - b.at)) {
      if (e.added) {
        for (const other of held) if (other !== e.ns) out.push({ ns: [other, e.ns], at: e.at });
        held.add(e.ns);
      } else {
        held.delete(e.ns);
      }
    }
    return out;
  }
}
