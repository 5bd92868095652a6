// A worker's figures, sent to the node process as what changed since the report the
// node last took in. With 10,000 origins in traffic a worker's full figures are ~2.3 MB
// of JSON, and the node process — the one that runs Raft — parses each of them on its
// only thread, for every /stats, /metrics and the refresh every 5 s: ~120 ms held at a
// time with two workers. Once traffic moves on, a report carries only the origins whose
// figures moved.
//
// The node names, in each question, the report it holds from that worker (`base`); the
// worker answers with what changed since it if that is the last one it sent, and with
// everything otherwise (a worker just started, an answer the node gave up waiting for).
// Answers arrive in the order the questions left (one ordered channel per worker).
import type { DataPlaneCounters, OriginCounters } from '@weldr/proxy';

export interface CountersReport extends DataPlaneCounters {
  /** This report's number (per worker, from 1). */
  readonly report: number;
  /** The report these figures add to; null: they are every origin's (a full report). */
  readonly base: number | null;
  /** Origins listed before and absent now (removed from the pool, or idle again). */
  readonly gone: readonly string[];
}

/** Everything an origin's figures hold, as one string: equal strings, equal figures. */
function signature(o: OriginCounters): string {
  const f = o.failures;
  return `${o.success},${o.failed},${o.active},${o.ejectedUntil},${o.connected},${o.queued},${o.duration.count},${o.duration.sum},${o.byClass.join(',')},${f.refused},${f.reset},${f.timeout},${f.bad_response}`;
}

/** The worker's side: remembers what its last report said. */
export class ReportWriter {
  #last = 0;
  #sent = new Map<string, string>();

  /** The report of `figures` (every origin the worker lists) for a node that holds report `base`. */
  report(figures: DataPlaneCounters, base: number | undefined): CountersReport {
    const sent = new Map<string, string>();
    for (const o of figures.origins) sent.set(o.id, signature(o));
    const delta = base !== undefined && base === this.#last && this.#last > 0;
    const previous = this.#sent;
    this.#sent = sent;
    this.#last++;
    if (!delta) return { ...figures, report: this.#last, base: null, gone: [] };
    const origins = figures.origins.filter((o) => previous.get(o.id) !== sent.get(o.id));
    const gone: string[] = [];
    for (const id of previous.keys()) if (!sent.has(id)) gone.push(id);
    return { counters: figures.counters, failOpen: figures.failOpen, origins, report: this.#last, base, gone };
  }
}

/** The node's side, one per worker: rebuilds the worker's full figures from its reports. */
export class ReportReader {
  #report = 0;
  readonly #origins = new Map<string, OriginCounters>();

  /** The report held (0: none): what the next question names as its base. */
  get base(): number {
    return this.#report;
  }

  /**
   * The worker's full figures after `r`, or null when `r` adds to a report this reader
   * does not hold (then the next question asks for everything).
   */
  apply(r: CountersReport): DataPlaneCounters | null {
    if (r.base === null) {
      this.#origins.clear();
    } else if (r.base !== this.#report) {
      this.#report = 0;
      return null;
    }
    for (const id of r.gone) this.#origins.delete(id);
    for (const o of r.origins) this.#origins.set(o.id, o);
    this.#report = r.report;
    return { counters: r.counters, failOpen: r.failOpen, origins: [...this.#origins.values()] };
  }
}
