// Pool snapshots for proxy workers, sent as what changed. Every applied command makes a
// new snapshot of the whole pool; sending it whole to every worker cost a write in
// proportion to the pool (10,000 servers: ~170 ms per write on 2 cores). The node
// process sends the servers that changed since the snapshot it sent last (the store's
// snapshots tell them at the cost of the change), and each worker keeps a mirror of the
// pool that it updates and hands to its proxy as a snapshot of its own — one that says,
// again, only what changed, so the proxy's own update costs the change too.
import { compareServers, ServerTable, type PoolSettings, type PoolSnapshot, type ServerChangeView, type ServerRecord } from '@weldr/store';

/** The part of a snapshot that crosses the IPC channel (never the audit log: workers do not read it). */
export interface WireSnapshot {
  readonly index: number;
  readonly servers: readonly ServerRecord[];
  readonly settings: PoolSettings;
}

export interface PoolDelta {
  readonly type: 'pool-delta';
  readonly index: number;
  /** Present only when the settings changed. */
  readonly settings?: PoolSettings;
  /** A server added or changed (`after`), or removed (no `after`). */
  readonly changes: readonly { readonly id: string; readonly after?: ServerRecord }[];
}

export function wireSnapshot(s: PoolSnapshot): WireSnapshot {
  return { index: s.index, servers: s.servers, settings: s.settings };
}

/** What to send for `next` when workers last got `sent`: a delta when the store can tell it, else the whole pool. */
export function poolMessage(sent: PoolSnapshot | null, next: PoolSnapshot): PoolDelta | { readonly type: 'snapshot'; readonly snapshot: WireSnapshot } {
  const changes = sent === null ? undefined : next.changesSince?.(sent);
  if (sent === null || changes === undefined) return { type: 'snapshot', snapshot: wireSnapshot(next) };
  return {
    type: 'pool-delta',
    index: next.index,
    ...(next.settings === sent.settings ? {} : { settings: next.settings }),
    changes: changes.map((c) => (c.after === undefined ? { id: c.id } : { id: c.id, after: c.after })),
  };
}

/**
 * A worker's copy of the pool. Deltas apply idempotently (a worker started from a newer
 * snapshot than the one a delta starts from ends in the same state), and the servers
 * keep the store's canonical order (a changed server keeps its place, a new one comes
 * last). The copy is the store's persistent ServerTable: a delta costs the change, not
 * the pool (a whole list per write was 10,000 records copied by every worker), and the
 * list is built only if the proxy reads it (it asks changesSince instead).
 */
export class PoolMirror {
  #table: ServerTable = ServerTable.EMPTY;
  #current!: PoolSnapshot;

  constructor(initial: WireSnapshot) {
    this.reset(initial);
  }

  get current(): PoolSnapshot {
    return this.#current;
  }

  reset(s: WireSnapshot): PoolSnapshot {
    this.#table = ServerTable.from([...s.servers].sort(compareServers));
    this.#current = view(s.index, this.#table, s.settings, undefined);
    return this.#current;
  }

  apply(delta: PoolDelta): PoolSnapshot {
    const prev = this.#current;
    let table = this.#table;
    const views: ServerChangeView[] = [];
    for (const c of delta.changes) {
      const before = table.get(c.id);
      if (c.after === undefined) {
        if (before === undefined) continue;
        table = table.without(c.id);
        views.push({ id: c.id, before, after: undefined });
      } else {
        table = table.with(c.after);
        views.push({ id: c.id, before, after: c.after });
      }
    }
    this.#table = table;
    this.#current = view(delta.index, table, delta.settings ?? prev.settings, (earlier) => (earlier === prev ? views : undefined));
    return this.#current;
  }
}

function view(index: number, table: ServerTable, settings: PoolSettings, changesSince: PoolSnapshot['changesSince']): PoolSnapshot {
  return {
    index,
    get servers(): readonly ServerRecord[] {
      return table.list();
    },
    settings,
    serverCount: table.size,
    ...(changesSince === undefined ? {} : { changesSince }),
  };
}
