// `weldr drill`: inject a fault into the active node, round after round, while steady
// proxied traffic and admin writes run and every member's /ready is sampled every 10 ms;
// then report how long the cluster took to recover (docs/operations.md#failover-drills).
//
// The drill heals whatever it injected — at the end of each round, on an error, and on
// Ctrl-C/SIGTERM: a paused member is continued (and a detached watchdog continues it
// even if the drill dies), an isolated member heals by itself on its own timer and is
// also told to heal at once; a killed member is restarted by its supervisor (dev-cluster,
// systemd, Kubernetes) and the drill waits for it to be back.
import { adminCall, adminAgent, errorCode, failureName, sleep, type AdminAccess } from './http.js';
import type { CtlContext } from '../ctl/context.js';
import { CtlError, EXIT_OK, EXIT_REFUSED, EXIT_SERVER_ERROR } from '../ctl/errors.js';
import { json } from '../ctl/render.js';
import { discoverMembers, unhealthy } from './members.js';
import { AdminWrites, ClusterPoller, ProxyTraffic, ReadySampler, type DrillMember } from './observers.js';
import { parseDrillOptions, seededRandom, type DrillOptions } from './options.js';
import { alive, continueLater, readPids } from './pids.js';
import { buildReport, renderReport, roundReport, type Observations, type RoundRecord } from './report.js';

/** The drill ran and missed a threshold, failed a round, or saw two active nodes. */
export const EXIT_DRILL_FAILED = 6;
/** Interrupted (Ctrl-C / SIGTERM) after healing what it had injected. */
export const EXIT_DRILL_INTERRUPTED = 130;

/** How long the drill waits for a healthy cluster before the first round. */
const START_HEALTH_MS = 5_000;
/** How long the drill keeps probing a traffic target before it refuses to start. */
const PROBE_WINDOW_MS = 10_000;

interface Fault {
  /** Lift the fault now (synchronous part first: a paused process is continued at once). */
  heal(): Promise<void>;
  /** Resolves once the fault is lifted by itself or by heal(). */
  readonly healed: Promise<void>;
  readonly transferTo?: string;
  /** Set when the injection itself failed. */
  error?: string;
}

/** How long a drill waits for members' records to show their proxy addresses (see runDrill). */
const PROXY_RECORD_WAIT_MS = 5000;

export async function runDrill(ctx: CtlContext): Promise<number> {
  const opts = parseDrillOptions(ctx.values);
  const random = seededRandom(opts.seed);
  const origin = performance.now();
  const now = (): number => performance.now() - origin;
  const progress = (line: string): void => {
    if (!opts.quiet) ctx.io.err(`${line}\n`);
  };

  let members = await discoverMembers(ctx.client);
  // A cluster that has just started records its members' proxy addresses a moment after
  // its first election (each member tells the leader its own, which proposes the record):
  // a drill started right after `npm start` waits for them rather than refusing at once.
  for (let waited = 0; opts.target.kind === 'members' && members.some((m) => m.proxyUrl === undefined) && waited < PROXY_RECORD_WAIT_MS; waited += 250) {
    await sleep(250);
    members = await discoverMembers(ctx.client);
  }
  const access: AdminAccess = { token: ctx.common.token, dispatcher: adminAgent(ctx.common.cacert) };
  const ids = members.map((m) => m.id);
  const extraAgents: AdminAccess['dispatcher'][] = [];
  try {
    await preflight(opts, members, access);
    const targets = trafficTargets(opts, members);
    // Each observer on its own connections: writes waiting out an election must not
    // hold up the 10 ms /ready samples.
    const samplerAccess: AdminAccess = { token: access.token, dispatcher: adminAgent(ctx.common.cacert) };
    const pollerAccess: AdminAccess = { token: access.token, dispatcher: adminAgent(ctx.common.cacert) };
    extraAgents.push(samplerAccess.dispatcher, pollerAccess.dispatcher);
    const sampler = new ReadySampler(members, samplerAccess, now);
    const poller = new ClusterPoller(members, pollerAccess, now);
    // Default traffic goes where a load balancer following /ready would send it: the proxy
    // of the member seen active last (still the old one until the sampler sees the change).
    let next = 0;
    let lastActive = members[0]!;
    const pick =
      opts.target.kind === 'members'
        ? (): string => {
            const newest = sampler.newestActive();
            if (newest !== undefined) lastActive = members.find((m) => m.id === newest) ?? lastActive;
            return lastActive.proxyUrl!;
          }
        : (): string => targets[next++ % targets.length]!;
    const traffic = new ProxyTraffic(pick, opts.rate, now, opts.target.kind === 'vip');
    const writes = new AdminWrites(members, access, now, random);
    const rounds: RoundRecord[] = [];
    const observations = (): Observations => ({ samples: sampler.samples, requests: traffic.records, writes: writes.records, cluster: poller.observations, overlaps: sampler.overlaps, rounds });

    const interrupt = new AbortController();
    // The fault in place now (a holder: set and cleared inside the round function).
    const inPlace: { current: Fault | null } = { current: null };
    const onSignal = (signal: NodeJS.Signals): void => {
      if (interrupt.signal.aborted) {
        // Asked twice: lift the fault's synchronous part and go.
        void inPlace.current?.heal();
        process.exit(EXIT_DRILL_INTERRUPTED);
      }
      progress(`${signal}: healing what the drill injected, then stopping`);
      interrupt.abort();
      void inPlace.current?.heal();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    sampler.start();
    poller.start();
    try {
      const why = await waitHealthy(members, sampler, poller, START_HEALTH_MS, interrupt.signal);
      if (why !== null) {
        throw new CtlError(EXIT_SERVER_ERROR, `the cluster is not healthy: ${why}`, "the drill starts only on a healthy cluster (every member up, one active node, all agreeing); check 'weldr cluster status'");
      }
      for (const url of targets) {
        const bad = await probeTarget(traffic, url, interrupt.signal);
        if (bad !== null) throw new CtlError(EXIT_REFUSED, `the traffic target ${url} does not serve: ${bad}`, 'check --target / --vip, or that the members\' proxies have origins to route to');
      }
      progress(`drill: ${opts.kind}, ${opts.rounds} round${opts.rounds === 1 ? '' : 's'}, seed ${opts.seed}; members ${ids.join(', ')}; traffic to ${opts.target.kind === 'members' ? "the active member's proxy" : targets.join(', ')}`);
      traffic.start();
      writes.start();
      for (let n = 1; n <= opts.rounds && !interrupt.signal.aborted; n++) {
        const record = await runRound(n);
        rounds.push(record);
        const r = roundReport(opts.kind, record, observations(), opts.slowMs);
        progress(
          `round ${n}/${opts.rounds}: ${r.fault}: ` +
            (r.newActive === null ? 'no new active node' : `${r.newActive} active after ${r.failoverMs} ms, served after ${r.servedMs ?? '—'} ms, write after ${r.writeMs ?? '—'} ms`) +
            `; healed after ${r.healedMs ?? '—'} ms; ${r.requests.failed} requests and ${r.writes.failed} writes failed; two active: ${r.twoActive}${r.error === undefined ? '' : `; ${r.error}`}`,
        );
        if (record.error !== undefined && record.healedAt === undefined) break; // not healed: stop injecting
      }
    } finally {
      await inPlace.current?.heal();
      await Promise.all([traffic.stop(), writes.stop(), sampler.stop(), poller.stop()]);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    const report = buildReport({ kind: opts.kind, seed: opts.seed, members: ids, targets, slowMs: opts.slowMs, thresholds: opts.thresholds, interrupted: interrupt.signal.aborted }, observations());
    ctx.io.out(ctx.common.json ? json(report) : renderReport(report));
    if (interrupt.signal.aborted) return EXIT_DRILL_INTERRUPTED;
    return report.ok ? EXIT_OK : EXIT_DRILL_FAILED;

    // ---- one round ----------------------------------------------------------------

    async function runRound(n: number): Promise<RoundRecord> {
      // ±25 % jitter, seeded, so faults do not line up with the heartbeats.
      const pause = Math.round(opts.intervalMs * (0.75 + random() * 0.5));
      const ready = await waitHealthy(members, sampler, poller, opts.healTimeoutMs, interrupt.signal);
      if (ready !== null) return { round: n, target: '—', faultAt: now(), endAt: now(), error: `the cluster did not become healthy within ${opts.healTimeoutMs} ms: ${ready}` };
      await sleep(pause, interrupt.signal);
      // The fault goes in at the first moment after the pause with exactly one active node:
      // on a loaded machine the lease may dip for a sample or two (bounded by the heal timeout).
      let active = sampler.activeNow();
      const waitUntil = now() + opts.healTimeoutMs;
      while (active.length !== 1 && now() < waitUntil && !interrupt.signal.aborted) {
        await sleep(10, interrupt.signal);
        active = sampler.activeNow();
      }
      if (interrupt.signal.aborted) return { round: n, target: '—', faultAt: now(), endAt: now(), error: 'interrupted before the fault' };
      if (active.length !== 1) return { round: n, target: '—', faultAt: now(), endAt: now(), error: `expected one active node before the fault, saw ${active.length} for ${opts.healTimeoutMs} ms` };
      const target = members.find((m) => m.id === active[0])!;
      const faultAt = now();
      const fault = inject(target);
      inPlace.current = fault;
      // Wait for the failover to show: a new active node, a request served through it, a write.
      const deadline = faultAt + opts.roundTimeoutMs;
      let error = fault.error;
      for (;;) {
        if (interrupt.signal.aborted) {
          error = 'interrupted';
          break;
        }
        const r = roundReport(opts.kind, { round: n, target: target.id, faultAt, endAt: Number.POSITIVE_INFINITY }, observations(), opts.slowMs);
        if (r.newActive !== null && r.servedMs !== null && r.writeMs !== null) break;
        if (fault.error !== undefined && now() - faultAt > 2_000 && r.newActive === null) {
          error = fault.error;
          break;
        }
        if (now() > deadline) {
          error = r.newActive === null ? `no new active node within ${opts.roundTimeoutMs} ms` : r.servedMs === null ? `no request served through ${r.newActive} (or a node active after it) within ${opts.roundTimeoutMs} ms` : `no write acknowledged within ${opts.roundTimeoutMs} ms`;
          break;
        }
        await sleep(20);
      }
      if (interrupt.signal.aborted) await fault.heal();
      await fault.healed;
      inPlace.current = null;
      // Interrupted or not, the drill leaves only once the cluster is healthy again (bounded).
      const healthy = await waitHealthy(members, sampler, poller, opts.healTimeoutMs, new AbortController().signal);
      const endAt = now();
      if (healthy !== null) error = `${error === undefined ? '' : `${error}; `}not healthy again within ${opts.healTimeoutMs} ms: ${healthy}`;
      return { round: n, target: target.id, faultAt, endAt, ...(healthy === null ? { healedAt: endAt } : {}), ...(error === undefined ? {} : { error }), ...(fault.transferTo === undefined ? {} : { transferTo: fault.transferTo }) };
    }

    function inject(target: DrillMember): Fault {
      switch (opts.kind) {
        case 'transfer': {
          const others = members.filter((m) => m.id !== target.id);
          const to = others[Math.floor(random() * others.length)]!.id;
          const fault: Fault = { heal: async () => undefined, healed: Promise.resolve(), transferTo: to };
          adminCall(access, target.adminUrl, 'POST', '/cluster/transfer-leadership', { body: { to }, timeoutMs: 10_000 }).then(
            (r) => {
              if (r.status !== 200) fault.error = `transfer answered ${r.status} ${errorCode(r.body) ?? ''}`.trim();
            },
            (err: unknown) => (fault.error = `transfer failed: ${failureName(err)}`),
          );
          return fault;
        }
        case 'step-down': {
          const fault: Fault = { heal: async () => undefined, healed: Promise.resolve() };
          adminCall(access, target.adminUrl, 'POST', '/faults/step-down', { timeoutMs: 5_000 }).then(
            (r) => {
              if (r.status !== 200) fault.error = `step-down answered ${r.status} ${errorCode(r.body) ?? ''}`.trim();
            },
            (err: unknown) => (fault.error = `step-down failed: ${failureName(err)}`),
          );
          return fault;
        }
        case 'isolate': {
          let resolveHealed: () => void = () => undefined;
          const healed = new Promise<void>((resolve) => (resolveHealed = resolve));
          let lifted = false;
          // The member heals itself after faultMs; the drill checks, and asks again if needed.
          const heal = async (): Promise<void> => {
            if (lifted) return;
            lifted = true;
            clearTimeout(timer);
            for (let i = 0; i < 20; i++) {
              try {
                const r = await adminCall(access, target.adminUrl, 'POST', '/faults/heal', { timeoutMs: 2_000 });
                if (r.status === 200) break;
              } catch {
                // the member may be briefly busy; its own timer heals it anyway
              }
              await sleep(250);
            }
            resolveHealed();
          };
          const timer = setTimeout(() => void heal(), opts.faultMs);
          const fault: Fault = { heal, healed };
          adminCall(access, target.adminUrl, 'POST', '/faults/isolate', { body: { durationMs: opts.faultMs }, timeoutMs: 5_000 }).then(
            (r) => {
              if (r.status !== 200) fault.error = `isolate answered ${r.status} ${errorCode(r.body) ?? ''}`.trim();
            },
            (err: unknown) => (fault.error = `isolate failed: ${failureName(err)}`),
          );
          return fault;
        }
        case 'kill':
        case 'pause': {
          const pid = readPids(opts.pids!).get(target.id);
          if (pid === undefined || !alive(pid)) {
            return { heal: async () => undefined, healed: Promise.resolve(), error: `no live PID for ${target.id} (${pid === undefined ? 'not in --pids' : `${pid} is gone`})` };
          }
          if (opts.kind === 'kill') {
            process.kill(pid, 'SIGKILL');
            return { heal: async () => undefined, healed: Promise.resolve() };
          }
          process.kill(pid, 'SIGSTOP');
          const cancelWatchdog = continueLater(pid, opts.faultMs + 2_000);
          let resolveHealed: () => void = () => undefined;
          const healed = new Promise<void>((resolve) => (resolveHealed = resolve));
          const heal = async (): Promise<void> => {
            clearTimeout(timer);
            try {
              process.kill(pid, 'SIGCONT');
            } catch {
              // gone
            }
            cancelWatchdog();
            resolveHealed();
          };
          const timer = setTimeout(() => void heal(), opts.faultMs);
          return { heal, healed };
        }
      }
    }
  } finally {
    for (const d of [access.dispatcher, ...extraAgents]) await (d as { close(): Promise<void> }).close();
  }
}

async function preflight(opts: DrillOptions, members: readonly DrillMember[], access: AdminAccess): Promise<void> {
  if (opts.kind === 'step-down' || opts.kind === 'isolate') {
    const off: string[] = [];
    await Promise.all(
      members.map(async (m) => {
        try {
          const r = await adminCall<{ enabled?: boolean }>(access, m.adminUrl, 'GET', '/faults', { timeoutMs: 2_000 });
          if (r.status !== 200 || r.body?.enabled !== true) off.push(m.id);
        } catch {
          off.push(m.id);
        }
      }),
    );
    if (off.length > 0) throw new CtlError(EXIT_REFUSED, `fault injection is off on ${off.sort().join(', ')}`, `a ${opts.kind} drill needs every member started with --fault-injection on (and --admin-token off loopback)`);
  }
  if (opts.kind === 'kill' || opts.kind === 'pause') {
    const pids = readPids(opts.pids!);
    const bad = members.filter((m) => {
      const pid = pids.get(m.id);
      return pid === undefined || !alive(pid);
    });
    if (bad.length > 0) {
      throw new CtlError(EXIT_REFUSED, `no live PID for ${bad.map((m) => m.id).join(', ')} in ${opts.pids!.kind === 'file' ? opts.pids!.path : '--pids'}`, `a ${opts.kind} drill signals the members' processes on this machine: run it next to 'weldr dev-cluster' (npm start) or give --pids ID=PID,… or a PID file`);
    }
  }
}

function trafficTargets(opts: DrillOptions, members: readonly DrillMember[]): string[] {
  if (opts.target.kind === 'vip') return [opts.target.url];
  if (opts.target.kind === 'urls') return [...opts.target.urls];
  const missing = members.filter((m) => m.proxyUrl === undefined).map((m) => m.id);
  if (missing.length > 0) throw new CtlError(EXIT_REFUSED, `${missing.join(', ')} do not report their proxy address`, 'give the traffic target with --target URL or --vip ADDRESS (or upgrade those members)');
  return members.map((m) => m.proxyUrl!);
}

/**
 * A traffic target serves when one of a few probes within PROBE_WINDOW_MS is answered: a
 * single probe that times out on a loaded machine (or while a VIP's neighbour entry is
 * refreshed) says nothing about the target. Null when it served, else the last reason.
 */
async function probeTarget(traffic: ProxyTraffic, url: string, signal: AbortSignal): Promise<string | null> {
  const deadline = performance.now() + PROBE_WINDOW_MS;
  let why: string | null = 'not probed';
  while (!signal.aborted) {
    why = await traffic.probe(url);
    if (why === null || performance.now() > deadline) return why;
    await sleep(500, signal);
  }
  return why;
}

/** Polls until the cluster is healthy; null when it is, else the last reason (after `timeoutMs` or an interrupt). */
async function waitHealthy(members: readonly DrillMember[], sampler: ReadySampler, poller: ClusterPoller, timeoutMs: number, signal: AbortSignal): Promise<string | null> {
  const deadline = performance.now() + timeoutMs;
  let why: string | null = 'not observed yet';
  // Healthy twice in a row, 100 ms apart: one poll round can straddle a change.
  let streak = 0;
  for (;;) {
    why = unhealthy(members, sampler, poller);
    streak = why === null ? streak + 1 : 0;
    if (streak >= 2) return null;
    if (performance.now() > deadline || signal.aborted) return why ?? 'interrupted';
    await sleep(100);
  }
}
