// A cluster of real `weldr start --peers` processes on loopback for the security
// tests: fixed ports from reservedPort(), per-member flags and environment, and an
// admin client that speaks HTTPS (with the test CA and, optionally, a client
// certificate) when the members' admin API does.
import { join } from 'node:path';
import { Agent, request, type Dispatcher } from 'undici';
import { makeTempDir } from './node.js';
import { spawnWeldr, type RunningProcess, type Teardown } from './process.js';
import { reservedPort } from './ports.js';
import { eventually } from './wait.js';

export interface Member {
  readonly id: string;
  readonly raftPort: number;
  readonly adminPort: number;
  readonly proxyPort: number;
  readonly dataDir: string;
  proc: RunningProcess | null;
}

export interface ClusterOptions {
  readonly size?: number;
  /** Flags for a member on top of the listeners, peers and data directory. */
  readonly args?: (m: Member) => readonly string[];
  /** Environment for a member (WELDR_CONFIG is always unset). */
  readonly env?: (m: Member) => Record<string, string | undefined>;
  /** The members' admin API speaks HTTPS: the CA that signed its certificate, and an optional client certificate. */
  readonly adminTls?: { readonly ca: string; readonly cert?: string; readonly key?: string };
  /** Bearer token sent with every admin call made through call(). */
  readonly adminToken?: string;
}

export interface AdminAnswer {
  readonly status: number;
  readonly json: unknown;
  readonly headers: Record<string, string | string[] | undefined>;
}

export class TestCluster {
  readonly dispatcher: Dispatcher | undefined;

  private constructor(
    private readonly t: Teardown,
    readonly members: Member[],
    private readonly options: ClusterOptions,
  ) {
    const tls = options.adminTls;
    if (tls !== undefined) {
      const agent = new Agent({ connect: { ca: tls.ca, ...(tls.cert === undefined ? {} : { cert: tls.cert, key: tls.key }) } });
      t.teardown(() => agent.close());
      this.dispatcher = agent;
    }
  }

  /** Reserves ports for `size` members; `start` (or startAll) runs them. */
  static async prepare(t: Teardown, options: ClusterOptions = {}): Promise<TestCluster> {
    const dir = makeTempDir(t, 'weldr-sec-');
    const members: Member[] = [];
    for (let i = 1; i <= (options.size ?? 3); i++) {
      members.push({ id: `n${i}`, raftPort: await reservedPort(), adminPort: await reservedPort(), proxyPort: await reservedPort(), dataDir: join(dir, `n${i}`), proc: null });
    }
    return new TestCluster(t, members, options);
  }

  static async create(t: Teardown, options: ClusterOptions = {}): Promise<TestCluster> {
    const c = await TestCluster.prepare(t, options);
    await c.startAll();
    return c;
  }

  get peers(): string {
    return this.members.map((m) => `${m.id}=127.0.0.1:${m.raftPort}`).join(',');
  }

  async startAll(): Promise<void> {
    await Promise.all(this.members.map((m) => this.start(m)));
  }

  /** Spawns the member; resolves once it logged `started`. */
  async start(m: Member): Promise<void> {
    m.proc = this.spawn(m);
    await m.proc.waitForLine('started', (l) => l.event === 'started');
  }

  /** Spawns the member without waiting (for members expected to fail); `extraArgs` come after the cluster's own. */
  spawn(m: Member, extraArgs: readonly string[] = [], replaceArgs?: readonly string[]): RunningProcess {
    return spawnWeldr(
      this.t,
      `weldr ${m.id}`,
      [
        'start',
        '--id', m.id,
        '--listen', `127.0.0.1:${m.proxyPort}`,
        '--admin', `127.0.0.1:${m.adminPort}`,
        '--raft', `127.0.0.1:${m.raftPort}`,
        '--peers', this.peers,
        '--data', m.dataDir,
        ...(replaceArgs ?? this.options.args?.(m) ?? []),
        ...extraArgs,
      ],
      { WELDR_CONFIG: undefined, WELDR_LOG_LEVEL: 'debug', WELDR_CLUSTER_TOKEN: undefined, ...this.options.env?.(m) },
    );
  }

  member(id: string): Member {
    const m = this.members.find((x) => x.id === id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  adminUrl(m: Member): string {
    return `${this.options.adminTls === undefined ? 'http' : 'https'}://127.0.0.1:${m.adminPort}`;
  }

  async call(m: Member, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<AdminAnswer> {
    const r = await request(`${this.adminUrl(m)}${path}`, {
      method: method as 'GET',
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(this.options.adminToken === undefined ? {} : { authorization: `Bearer ${this.options.adminToken}` }),
        ...headers,
      },
      body: body === undefined ? null : JSON.stringify(body),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
      ...(this.dispatcher === undefined ? {} : { dispatcher: this.dispatcher }),
    });
    const text = await r.body.text();
    let json: unknown = text;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: r.statusCode, json, headers: r.headers };
  }

  /** The one member whose /cluster says it leads, once all running members agree on it (and it is not `not`). */
  async leader(timeoutMs = 15_000, not?: Member): Promise<Member> {
    const id = await eventually('one agreed leader', async () => {
      const seen = new Set<string | null>();
      for (const m of this.members) {
        if (m.proc === null || !m.proc.running) continue;
        const r = await this.call(m, 'GET', '/cluster?stale=true');
        if (r.status !== 200) return undefined;
        seen.add((r.json as { leaderId: string | null }).leaderId);
      }
      const [only] = [...seen];
      return seen.size === 1 && typeof only === 'string' && only !== not?.id ? only : undefined;
    }, timeoutMs, 50);
    return this.member(id);
  }

  /** A member's servers as ip:port strings, sorted (from its local state). */
  async servers(m: Member): Promise<string[]> {
    const r = await this.call(m, 'GET', '/servers?stale=true');
    if (r.status !== 200) throw new Error(`GET /servers on ${m.id}: ${r.status} ${JSON.stringify(r.json)}`);
    return (r.json as { ip: string; port: number }[]).map((s) => `${s.ip}:${s.port}`).sort();
  }
}
