// A cluster whose membership changes while it runs: seed members started with
// --peers, members added with --join, removed, killed, wiped and replaced. Every member
// is a real `weldr start` process on fixed loopback ports (reservedPort: peers and
// joiners must know them before the process starts) with its own data directory.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { isReady } from './active-watch.js';
import { makeTempDir } from './node.js';
import { reservedPort } from './ports.js';
import { Relay } from './relay.js';
import { spawnWeldr, type RunningProcess, type Teardown } from './process.js';
import { eventually, sleep } from './wait.js';

export const CLUSTER_TOKEN = 'e2e-cluster-secret-0123456789';

export interface Member {
  readonly id: string;
  readonly raftPort: number;
  /** With relays: where every peer reaches this member (its advertised Raft address). */
  readonly relay: Relay | null;
  readonly adminPort: number;
  readonly proxyPort: number;
  readonly dataDir: string;
  proc: RunningProcess | null;
}

export interface Reply<T = unknown> {
  readonly status: number;
  readonly json: T;
  readonly headers: Record<string, string | string[] | undefined>;
}

export interface ClusterView {
  readonly nodeId: string;
  readonly leaderId: string | null;
  readonly appliedIndex: number;
  readonly clusterId?: string | null;
  readonly members: { id: string; role: string; address?: string; adminAddress?: string; proxyAddress?: string; live?: boolean }[];
}

export class MemberCluster {
  readonly members = new Map<string, Member>();
  readonly seeds: string[];
  private readonly dir: string;

  private constructor(
    private readonly t: Teardown,
    seeds: string[],
    private readonly extraArgs: readonly string[],
    private readonly relayed: boolean,
  ) {
    this.seeds = seeds;
    this.dir = makeTempDir(t, 'weldr-members-');
  }

  /**
   * Seed members n1..nN of a new cluster, all started and one of them active. With
   * `relayed`, every member is reached through a Relay (test/helpers/relay.ts).
   */
  static async seed(t: Teardown, size = 3, extraArgs: readonly string[] = [], options: { relayed?: boolean } = {}): Promise<MemberCluster> {
    const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    const c = new MemberCluster(t, ids, extraArgs, options.relayed === true);
    for (const id of ids) await c.define(id);
    await Promise.all(ids.map((id) => c.startSeed(id)));
    await c.active();
    return c;
  }

  /** No member yet: members come with --restore or --join. */
  static empty(t: Teardown, extraArgs: readonly string[] = []): MemberCluster {
    return new MemberCluster(t, [], extraArgs, false);
  }

  async define(id: string): Promise<Member> {
    const raftPort = await reservedPort();
    const relay = this.relayed ? await Relay.start(this.t, id, raftPort) : null;
    const m: Member = { id, raftPort, relay, adminPort: await reservedPort(), proxyPort: await reservedPort(), dataDir: join(this.dir, id), proc: null };
    this.members.set(id, m);
    return m;
  }

  member(id: string): Member {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  /** The port peers dial to reach `m`. */
  private reach(m: Member): number {
    return m.relay?.port ?? m.raftPort;
  }

  get peers(): string {
    return this.seeds.map((id) => `${id}=127.0.0.1:${this.reach(this.member(id))}`).join(',');
  }

  /** Hold back (or release) the appends with entries `from` sends to every other member. */
  holdAppends(from: string, on: boolean): void {
    for (const m of this.members.values()) if (m.id !== from) m.relay?.hold(from, on);
  }

  private args(m: Member): string[] {
    return [
      'start',
      '--id', m.id,
      '--listen', `127.0.0.1:${m.proxyPort}`,
      '--admin', `127.0.0.1:${m.adminPort}`,
      '--raft', `127.0.0.1:${m.raftPort}`,
      ...(m.relay === null ? [] : ['--raft-advertise', `127.0.0.1:${m.relay.port}`]),
      '--data', m.dataDir,
      ...this.extraArgs,
    ];
  }

  /** Spawns `weldr start` for `m` with `extra` flags; does not wait. */
  spawn(m: Member, extra: readonly string[]): RunningProcess {
    m.proc = spawnWeldr(this.t, `weldr ${m.id}`, [...this.args(m), ...extra], { WELDR_CONFIG: undefined, WELDR_LOG_LEVEL: 'debug', WELDR_CLUSTER_TOKEN: CLUSTER_TOKEN });
    return m.proc;
  }

  /** A seed member with its original flags (--peers). */
  async startSeed(id: string): Promise<void> {
    const proc = this.spawn(this.member(id), ['--peers', this.peers]);
    await proc.waitForLine('started', (l) => l.event === 'started', 30_000);
  }

  /** A new member that joins through `via`'s admin API; resolves once it runs as a voter everywhere. */
  async join(id: string, via: string, options: { waitVoter?: boolean } = {}): Promise<Member> {
    const m = this.members.get(id) ?? (await this.define(id));
    const proc = this.spawn(m, ['--join', `http://127.0.0.1:${this.member(via).adminPort}`]);
    await proc.waitForLine('joined', (l) => l.event === 'joined', 60_000);
    await proc.waitForLine('started', (l) => l.event === 'started', 30_000);
    if (options.waitVoter !== false) await this.untilConfig((conf) => conf.some((x) => x === `${id}:voter`));
    return m;
  }

  /** Restart a member from its data directory with `extra` flags (none: it is a member already). */
  async restart(id: string, extra: readonly string[] = []): Promise<void> {
    const proc = this.spawn(this.member(id), extra);
    await proc.waitForLine('started', (l) => l.event === 'started', 30_000);
  }

  /**
   * Stops `id` (SIGTERM) and starts it again on its data directory with new Raft, admin
   * and proxy ports, and no other flag: a member moved to another address.
   */
  async move(id: string): Promise<Member> {
    const old = this.member(id);
    old.proc?.signal('SIGTERM');
    await old.proc?.exited;
    const m: Member = { ...old, raftPort: await reservedPort(), adminPort: await reservedPort(), proxyPort: await reservedPort(), proc: null };
    this.members.set(id, m);
    const proc = this.spawn(m, []);
    await proc.waitForLine('started', (l) => l.event === 'started', 30_000);
    return m;
  }

  async kill(id: string): Promise<void> {
    const m = this.member(id);
    m.proc?.signal('SIGKILL');
    await m.proc?.exited;
  }

  wipe(id: string): void {
    rmSync(this.member(id).dataDir, { recursive: true, force: true });
  }

  running(): Member[] {
    return [...this.members.values()].filter((m) => m.proc !== null && m.proc.running);
  }

  async call<T = unknown>(id: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
    const r = await request(`http://127.0.0.1:${this.member(id).adminPort}${path}`, {
      method: method as 'GET',
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? null : JSON.stringify(body),
      headersTimeout: 20_000,
      bodyTimeout: 20_000,
    });
    const text = await r.body.text();
    return { status: r.statusCode, json: (text === '' ? null : JSON.parse(text)) as T, headers: r.headers };
  }

  /**
   * A read as a careful client makes it: retried while the answer is 503 (an election
   * on a loaded machine fails a linearizable read with NOT_LEADER / NO_QUORUM).
   */
  async read<T = unknown>(id: string, path: string): Promise<T> {
    return eventually(`GET ${path} on ${id}`, async () => {
      const r = await this.call<T>(id, 'GET', path);
      if (r.status === 503) return undefined;
      if (r.status !== 200) throw new Error(`GET ${path} on ${id}: ${r.status} ${JSON.stringify(r.json)}`);
      return r.json;
    }, 30_000);
  }

  /** Which running members answer /ready 200 now (one quick round). */
  /** The members answering /ready 200, asked all at once (one after another, a role that moves between two questions would look like two active nodes). */
  async activeNow(): Promise<string[]> {
    const running = this.running();
    const ready = await Promise.all(running.map((m) => isReady(`http://127.0.0.1:${m.adminPort}`, 300)));
    return running.filter((_, i) => ready[i]).map((m) => m.id);
  }

  async active(timeoutMs = 30_000): Promise<Member> {
    const id = await eventually('one active member', async () => {
      const a = await this.activeNow();
      return a.length === 1 ? a[0] : undefined;
    }, timeoutMs, 20);
    return this.member(id);
  }

  async view(id: string): Promise<ClusterView> {
    const r = await this.call<ClusterView>(id, 'GET', '/cluster');
    return r.json;
  }

  /**
   * Waits until every running member holds the same configuration ("id:role", sorted)
   * and it satisfies `ok`; returns it. No member with a stale configuration.
   */
  async untilConfig(ok: (conf: string[]) => boolean, timeoutMs = 60_000): Promise<string[]> {
    return eventually('every member to hold the same configuration', async () => {
      const confs = await Promise.all(this.running().map(async (m) => (await this.view(m.id)).members.map((x) => `${x.id}:${x.role}`).sort().join(',')));
      if (confs.length === 0 || !confs.every((c) => c === confs[0])) return undefined;
      const conf = confs[0]!.split(',');
      return ok(conf) ? conf : undefined;
    }, timeoutMs, 100);
  }

  /** The ports of the servers `id` holds (linearizable unless stale). */
  async ports(id: string, stale = false): Promise<number[]> {
    const servers = await this.read<{ port: number }[]>(id, `/servers${stale ? '?stale=true' : ''}`);
    return servers.map((s) => s.port).sort((a, b) => a - b);
  }
}

/**
 * Writes through every running member in turn, one logical write per port, each retried
 * with the same Idempotency-Key while its answer is indeterminate (503, 504, no answer),
 * as a careful client does across membership changes and failovers.
 */
export class Writer {
  readonly acked: number[] = [];
  readonly refused: { port: number; status: number; body: unknown }[] = [];
  private running = true;
  private readonly loops: Promise<void>[];
  private next: number;

  constructor(
    private readonly c: MemberCluster,
    private readonly ip: string,
    t: Teardown,
    first = 1,
    concurrency = 2,
  ) {
    this.next = first;
    this.loops = Array.from({ length: concurrency }, () => this.loop());
    // stop() reports a failed loop; until then a rejection is not "unhandled".
    for (const loop of this.loops) loop.catch(() => undefined);
    // A test that fails before stop() must not leave the loops running.
    t.teardown(async () => {
      this.running = false;
      this.aborted = true;
      await Promise.allSettled(this.loops);
    });
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const port = this.next++;
      for (let attempt = 0; ; attempt++) {
        // Bounded even when nothing answers: a test that failed must not leave this
        // loop (and so its worker) running for ever.
        if (this.aborted || attempt > 600) throw new Error(`write ${port} never got an answer`);
        const targets = this.c.running();
        if (targets.length === 0) {
          await sleep(50);
          continue;
        }
        const m = targets[(port + attempt) % targets.length]!;
        let status = -1;
        let body: unknown;
        try {
          const r = await request(`http://127.0.0.1:${m.adminPort}/servers`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': `${this.ip}-${port}` },
            body: JSON.stringify({ ip: this.ip, port }),
            headersTimeout: 20_000,
            bodyTimeout: 20_000,
          });
          status = r.statusCode;
          body = await r.body.json().catch(() => undefined);
        } catch {
          status = -1;
        }
        if (status === 201 || status === 200) {
          this.acked.push(port);
          break;
        }
        if (status !== 503 && status !== 504 && status !== -1) {
          this.refused.push({ port, status, body });
          break;
        }
        // Keep retrying this write even after stop(): its outcome must be known.
        await sleep(50);
      }
    }
  }

  private aborted = false;

  async stop(): Promise<number[]> {
    this.running = false;
    await Promise.all(this.loops);
    return [...this.acked].sort((a, b) => a - b);
  }
}
