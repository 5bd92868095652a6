// The access log (issue 14 item 4): one JSON line per finished client request, off by
// default. The request path pays for one string concatenation; lines are handed to the
// destination in one batch per event-loop turn (or every 64 KiB), never one write per
// request, and the destination (the node's stdout writer, or a file) does the I/O.

/** Where batches of lines go. `write` must not block the event loop (buffer, write asynchronously). */
export interface AccessLogSink {
  /** One or more complete lines, each ending in "\n"; false when they were dropped (the destination is behind). */
  write(lines: string): boolean;
}

/** A batch is handed over at the end of the event-loop turn, or earlier once this large. */
const BATCH_BYTES = 64 * 1024;

/** Characters that need JSON escaping in a request-target (llhttp lets `"` and `\` through). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;

/**
 * Formats access-log lines by hand (fixed field order, no object, no JSON.stringify
 * except for a target that needs escaping) and batches them.
 *
 * Fields: `event` ("access"), `node`, `time` (epoch ms at the end), `id` (request id:
 * this process's instance id and a sequence number, unique across the workers of a node),
 * `client` (address), `method`, `target` (as the client sent it), `status` (answered to
 * the client; 0 when the client left before any), `bytes` (response body bytes relayed),
 * `ms` (from request head to response end), `origin` (the last origin tried, or null),
 * `retries` (origins tried before it).
 */
export class AccessLog {
  readonly #sink: AccessLogSink;
  readonly #prefix: string;
  readonly #idPrefix: string;
  #seq = 0;
  #batch = '';
  #lines = 0;
  #scheduled = false;
  readonly #counters: { accessLogDropped: number };

  constructor(sink: AccessLogSink, nodeId: string, instance: string, counters: { accessLogDropped: number }) {
    this.#sink = sink;
    this.#counters = counters;
    this.#prefix = `{"event":"access","node":${JSON.stringify(nodeId)},"time":`;
    this.#idPrefix = `,"id":"${instance}-`;
  }

  record(method: string, target: string, status: number, bytes: number, ms: number, origin: string | null, retries: number, client: string): void {
    const t = NEEDS_ESCAPE.test(target) ? JSON.stringify(target) : `"${target}"`;
    this.#batch +=
      `${this.#prefix}${Date.now()}${this.#idPrefix}${(++this.#seq).toString(36)}","client":"${client}","method":"${method}","target":${t},` +
      `"status":${status},"bytes":${bytes},"ms":${Math.round(ms * 1000) / 1000},"origin":${origin === null ? 'null' : `"${origin}"`},"retries":${retries}}\n`;
    this.#lines++;
    if (this.#batch.length >= BATCH_BYTES) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(flushBatch, this);
    }
  }

  /** Hand what is batched to the sink now (also at close). */
  flush(): void {
    this.#scheduled = false;
    if (this.#batch.length === 0) return;
    const lines = this.#batch;
    const n = this.#lines;
    this.#batch = '';
    this.#lines = 0;
    if (!this.#sink.write(lines)) this.#counters.accessLogDropped += n;
  }
}

function flushBatch(log: AccessLog): void {
  log.flush();
}
