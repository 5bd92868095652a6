// Three Raft drivers in one process, over real TCP on loopback and real LevelDB
// directories: election, replication, forwarding-free reads, leader loss, restart from
// disk, catch-up by snapshot, and never two active nodes.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Level } from 'level';
import { randomUUID } from 'node:crypto';
import { LevelRaftStorage, StoreError, type ApplyResult, type PoolCommand, type PoolDb, type PoolSnapshot } from '@weldr/store';
import { RaftDriver } from '../src/driver.js';
import { PoolReplica, RaftPoolStore } from '../src/raft-pool-store.js';
import { TcpTransport } from '../src/transport.js';
import { PORT_RANGES, portPicker } from './harness/ports.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const TICK_MS = 50;

/**
 * A port for a listener that other members must know before it starts. Taken below the
 * kernel's ephemeral range (32768+), so the outbound connections of the processes under
 * test, which get ephemeral ports, cannot take it between this check and the bind.
 */
const freePort = portPicker(PORT_RANGES.driver);

interface RunningNode {
  readonly id: string;
  readonly driver: RaftDriver<ApplyResult | null>;
  readonly store: RaftPoolStore;
  readonly replica: PoolReplica;
  readonly storage: LevelRaftStorage;
  readonly stop: () => Promise<void>;
}

interface Cluster {
  readonly ids: string[];
  readonly dirs: Map<string, string>;
  readonly ports: Map<string, number>;
  readonly nodes: Map<string, RunningNode>;
  start(id: string): Promise<RunningNode>;
  stop(id: string): Promise<void>;
}

async function cluster(t: ExecutionContext, size = 3, snapshotEvery = 1000): Promise<Cluster> {
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const dirs = new Map<string, string>();
  const ports = new Map<string, number>();
  for (const id of ids) {
    dirs.set(id, await mkdtemp(join(tmpdir(), `weldr-cluster-${id}-`)));
    ports.set(id, await freePort());
  }
  const nodes = new Map<string, RunningNode>();
  const c: Cluster = {
    ids,
    dirs,
    ports,
    nodes,
    async start(id) {
      const db = new Level<string, string>(dirs.get(id)!) as unknown as PoolDb;
      const storage = await LevelRaftStorage.open(db, { bootstrap: ids });
      const replica = await PoolReplica.open(db, { write: (ops) => storage.write(ops) });
      const driver = await RaftDriver.create<ApplyResult | null>({ id, storage, app: replica, log: silent, tickMs: TICK_MS, snapshotEvery, snapshotKeep: 5 });
      const peers = new Map(ids.filter((p) => p !== id).map((p) => [p, { host: '127.0.0.1', port: ports.get(p)! }]));
      const transport = new TcpTransport({
        id,
        listen: { host: '127.0.0.1', port: ports.get(id)! },
        peers,
        log: silent,
        onMessage: (m) => driver.receive(m),
        onUnreachable: (p) => driver.unreachable(p),
        reconnectMinMs: 10,
        reconnectMaxMs: 100,
      });
      await transport.start();
      driver.start(transport);
      const store = new RaftPoolStore(driver, replica, { timeoutMs: 3000 });
      const node: RunningNode = {
        id,
        driver,
        store,
        replica,
        storage,
        stop: async () => {
          await store.close();
          await driver.stop();
          await transport.close();
          await db.close();
        },
      };
      nodes.set(id, node);
      return node;
    },
    async stop(id) {
      const n = nodes.get(id);
      nodes.delete(id);
      await n?.stop();
    },
  };
  t.teardown(async () => {
    for (const id of [...nodes.keys()]) await c.stop(id);
    for (const d of dirs.values()) await rm(d, { recursive: true, force: true });
  });
  for (const id of ids) await c.start(id);
  return c;
}

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const activeNodes = (c: Cluster): string[] => [...c.nodes.values()].filter((n) => n.driver.isActive()).map((n) => n.id);

async function leaderOf(c: Cluster): Promise<RunningNode> {
  const id = await until('an active leader', () => activeNodes(c)[0], 15_000);
  return c.nodes.get(id)!;
}

/**
 * A client's write: to the current leader, retried there with the same request id when
 * leadership moves mid-call (the machine is shared and busy; elections happen).
 */
async function write(c: Cluster, command: PoolCommand, requestId: string = randomUUID()): Promise<ApplyResult> {
  for (let attempt = 0; ; attempt++) {
    const leader = await leaderOf(c);
    try {
      return await leader.store.propose(command, { requestId });
    } catch (err) {
      const code = (err as StoreError).code;
      if (attempt >= 20 || (code !== 'NOT_LEADER' && code !== 'TIMEOUT' && code !== 'NO_QUORUM')) throw err;
    }
  }
}

/** A linearizable read on `n`, retried when leadership moves mid-read. */
async function read(n: RunningNode): Promise<PoolSnapshot> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await n.store.linearizableSnapshot();
    } catch (err) {
      const code = (err as StoreError).code;
      if (attempt >= 20 || (code !== 'NOT_LEADER' && code !== 'TIMEOUT')) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

test.serial('a leader is elected; a write through it is applied on every node; a follower refuses writes naming the leader', async (t) => {
  const c = await cluster(t);
  const r = await write(c, { type: 'AddServer', ip: '10.0.0.1', port: 80 });
  t.like(r.outcome, { ok: true });
  const leader = await leaderOf(c);
  for (const n of c.nodes.values()) {
    await until(`${n.id} applies the write`, () => n.store.snapshot().servers.length === 1);
  }
  const follower = [...c.nodes.values()].find((n) => n.id !== leader.id)!;
  const err = await t.throwsAsync(follower.store.propose({ type: 'AddServer', ip: '10.0.0.2', port: 80 }), { instanceOf: StoreError });
  t.is((err as StoreError).code, 'NOT_LEADER');
  t.true(activeNodes(c).length <= 1);
});

test.serial('a linearizable read on a follower sees every write acknowledged before it (ReadIndex through the leader)', async (t) => {
  const c = await cluster(t);
  const leader = await leaderOf(c);
  const follower = [...c.nodes.values()].find((n) => n.id !== leader.id)!;
  for (let port = 1; port <= 20; port++) {
    await write(c, { type: 'AddServer', ip: '10.0.0.1', port });
    const snap = await read(follower);
    t.true(snap.servers.some((s) => s.port === port), `read after write ${port}`);
  }
});

test.serial('losing the leader: another node becomes active, acknowledged writes survive, never two active nodes at once', async (t) => {
  const c = await cluster(t);
  const first = await leaderOf(c);
  for (let port = 1; port <= 10; port++) await write(c, { type: 'AddServer', ip: '10.0.0.1', port });
  // Sample the active set continuously while the leader goes away.
  let overlap: string[] | null = null;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const a = activeNodes(c);
      if (a.length > 1) overlap = a;
      await new Promise((r) => setImmediate(r));
    }
  })();
  const stoppedAt = Date.now();
  const firstId = (await leaderOf(c)).id;
  await c.stop(firstId);
  const second = await leaderOf(c);
  const failoverMs = Date.now() - stoppedAt;
  t.not(second.id, firstId);
  t.true(failoverMs < 5000, `failover took ${failoverMs} ms`);
  t.log(`failover: ${failoverMs} ms (tick ${TICK_MS} ms)`);
  t.is((await read(second)).servers.length, 10, 'every acknowledged write is on the new leader');
  await write(c, { type: 'AddServer', ip: '10.0.0.2', port: 1 });
  // The old leader restarts from its data directory and catches up.
  const back = await c.start(firstId);
  await until('the restarted node catches up', () => back.store.snapshot().servers.length === 11);
  sampling = false;
  await sampler;
  t.is(overlap, null, `two active nodes at once: ${overlap}`);
});

test.serial('a node that missed many writes catches up by snapshot; states are identical', async (t) => {
  const c = await cluster(t, 3, 10);
  const lagger = c.ids.find((id) => id !== activeNodes(c)[0])!;
  const laggerLast = c.nodes.get(lagger)!.storage.lastIndex();
  await c.stop(lagger);
  for (let port = 1; port <= 60; port++) await write(c, { type: 'AddServer', ip: '10.0.0.9', port });
  await write(c, { type: 'RemoveServer', ip: '10.0.0.9', port: 7 });
  const leader = await leaderOf(c);
  t.true(leader.storage.firstIndex() > laggerLast + 1, 'the leader compacted past what the lagging node has: only a snapshot can catch it up');
  const back = await c.start(lagger);
  const target = (await read(leader)).index;
  await until('the lagging node catches up', () => back.store.snapshot().index >= target, 15_000);
  t.deepEqual((await read(back)).servers, (await read(leader)).servers);
  t.true(back.replica.appliedIndex >= 60);
});

test.serial('a full-cluster restart keeps every acknowledged write', async (t) => {
  const c = await cluster(t);
  for (let port = 1; port <= 15; port++) await write(c, { type: 'AddServer', ip: '10.1.0.1', port }, `w${port}`);
  for (const id of c.ids) await c.stop(id);
  for (const id of c.ids) await c.start(id);
  const again = await leaderOf(c);
  t.is((await read(again)).servers.length, 15);
  // A retried request id is answered from the idempotency table, not applied twice.
  const retry = await write(c, { type: 'AddServer', ip: '10.1.0.1', port: 3 }, 'w3');
  t.true(retry.duplicate);
  t.is((await read(again)).servers.length, 15);
});
