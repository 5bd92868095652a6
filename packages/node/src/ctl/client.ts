// The operator commands' HTTP client for the admin API. Any member will do: a follower
// relays writes to the leader and serves linearizable reads itself, so the client only
// has to find *a* member that answers. It tries the endpoints in order, skips those it
// cannot reach, and while the cluster has no leader (503 with Retry-After: an election
// in progress) it retries — writes with one Idempotency-Key for the whole command, so a
// retry after an unseen success is answered from the first application, not applied twice.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';
import { CtlError, EXIT_REFUSED, EXIT_SERVER_ERROR, EXIT_UNREACHABLE, EXIT_USAGE_ERROR } from './errors.js';
import type { CommonOptions } from './common-options.js';

/**
 * One attempt may take at most this long while other endpoints are still untried: longer
 * than the server's own 5 s commit wait (so its 504 arrives as an answer), short enough
 * that a member that accepts connections but never answers (SIGSTOP) is skipped.
 */
export const ATTEMPT_LIMIT_MS = 6_000;
/** Pause between rounds when every member said "retry" (503) and Retry-After is absent. */
const RETRY_PAUSE_MS = 250;
/** 503 codes that mean "no leader right now": worth retrying until the deadline. */
const RETRYABLE = new Set(['NOT_LEADER', 'NO_QUORUM', 'STOPPED']);
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface ApiError {
  readonly code: string;
  readonly message: string;
  readonly field?: string;
  readonly leaderId?: string;
}

export interface Answer<T = unknown> {
  readonly status: number;
  readonly body: T;
  /** The body as received. */
  readonly text: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The endpoint that answered. */
  readonly endpoint: string;
}

export interface CallOptions {
  readonly body?: unknown;
  /** Sent on writes; one is generated per call when absent. */
  readonly idempotencyKey?: string;
  /** Ask exactly this endpoint, once: no failover, no retry (per-member queries). */
  readonly only?: string;
  /** Accept any status (the caller inspects it); connection failures still throw. */
  readonly anyStatus?: boolean;
}

export interface ClientDeps {
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Overrides ATTEMPT_LIMIT_MS (tests). */
  readonly attemptLimitMs?: number;
}

/** An endpoint that could not be reached, and why (for the error message). */
class Unreachable extends Error {
  constructor(
    message: string,
    readonly tls: boolean,
  ) {
    super(message);
  }
}

export class AdminClient {
  private readonly dispatcher: Agent;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** The endpoint that answered last: tried first next time. */
  private preferred: string | undefined;
  private readonly deadline: number;
  private readonly attemptLimitMs: number;

  constructor(
    private readonly options: Pick<CommonOptions, 'endpoints' | 'token' | 'cacert' | 'timeoutMs'>,
    deps: ClientDeps = {},
  ) {
    this.now = deps.now ?? Date.now;
    this.sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.attemptLimitMs = deps.attemptLimitMs ?? ATTEMPT_LIMIT_MS;
    let ca: Buffer | undefined;
    if (options.cacert !== undefined) {
      try {
        ca = readFileSync(options.cacert);
      } catch (err) {
        throw new CtlError(EXIT_USAGE_ERROR, `cannot read --cacert ${options.cacert}: ${(err as Error).message}`, 'pass the PEM file of the CA that signed the admin listeners\' certificates');
      }
    }
    // One bound for the whole command (every endpoint, every retry), as etcdctl's
    // --command-timeout: a script never hangs on a cluster that cannot answer.
    this.deadline = this.now() + options.timeoutMs;
    this.dispatcher = new Agent({ connect: { timeout: Math.min(options.timeoutMs, 5_000), ...(ca === undefined ? {} : { ca }) }, keepAliveTimeout: 1_000 });
  }

  get endpoints(): readonly string[] {
    return this.options.endpoints;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  async get<T>(path: string, options: CallOptions = {}): Promise<Answer<T>> {
    return this.call<T>('GET', path, options);
  }

  /**
   * Sends the request to the first endpoint that answers. Answers 2xx (or anything with
   * `anyStatus`); throws CtlError otherwise, with the exit code the failure deserves.
   */
  async call<T>(method: string, path: string, options: CallOptions = {}): Promise<Answer<T>> {
    const key = WRITES.has(method) ? (options.idempotencyKey ?? `weldr-cli-${randomUUID()}`) : undefined;
    const unreachable = new Map<string, Unreachable>();
    // The last "no leader right now" answer: reported if --timeout runs out before a leader answers.
    let lastRetryable: { answer: Answer<unknown>; retryAfterMs: number } | undefined;
    for (;;) {
      let retryRound = false;
      const order = options.only !== undefined ? [options.only] : this.order();
      for (const [i, endpoint] of order.entries()) {
        const remaining = this.deadline - this.now();
        if (remaining <= 0) break;
        const limit = i < order.length - 1 ? Math.min(remaining, this.attemptLimitMs) : remaining;
        let answer: Answer<unknown>;
        try {
          answer = await this.attempt(endpoint, method, path, options.body, key, limit);
        } catch (err) {
          if (!(err instanceof Unreachable)) throw err;
          unreachable.set(endpoint, err);
          continue;
        }
        unreachable.delete(endpoint);
        const error = apiError(answer.body);
        if (answer.status === 503 && error !== undefined && RETRYABLE.has(error.code) && options.only === undefined && !options.anyStatus) {
          lastRetryable = { answer, retryAfterMs: retryAfter(answer.headers) };
          retryRound = true;
          continue;
        }
        this.preferred = endpoint;
        if (options.anyStatus || (answer.status >= 200 && answer.status < 300)) return answer as Answer<T>;
        throw httpError(method, path, answer);
      }
      const remaining = this.deadline - this.now();
      // Only members that said "no leader right now" are worth another round; a cluster
      // that nobody answers for is reported at once, as etcdctl does.
      if (!retryRound || lastRetryable === undefined || remaining <= 0) break;
      await this.sleep(Math.min(lastRetryable.retryAfterMs, remaining));
    }
    if (lastRetryable !== undefined) throw httpError(method, path, lastRetryable.answer, true);
    throw unreachableError(options.only !== undefined ? [options.only] : this.options.endpoints, unreachable, this.options.timeoutMs);
  }

  private order(): string[] {
    const list = [...this.options.endpoints];
    if (this.preferred === undefined) return list;
    return [this.preferred, ...list.filter((e) => e !== this.preferred)];
  }

  private async attempt(endpoint: string, method: string, path: string, body: unknown, key: string | undefined, limitMs: number): Promise<Answer<unknown>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token !== undefined) headers['authorization'] = `Bearer ${this.options.token}`;
    if (key !== undefined) headers['idempotency-key'] = key;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Dispatcher.ResponseData;
    let text: string;
    const signal = AbortSignal.timeout(limitMs);
    try {
      res = await request(`${endpoint}${path}`, {
        method: method as Dispatcher.HttpMethod,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        dispatcher: this.dispatcher,
        signal,
      });
      text = await res.body.text();
    } catch (err) {
      throw describeConnectionError(err, limitMs, signal.aborted);
    }
    let parsed: unknown = text;
    const type = String(res.headers['content-type'] ?? '');
    if (type.startsWith('application/json')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new Unreachable(`answered ${res.statusCode} with a malformed JSON body: not a weldr admin API?`, false);
      }
    } else if (res.statusCode !== 204) {
      // The proxy port, or something else entirely, in --endpoints.
      throw new Unreachable(`answered ${res.statusCode} ${type === '' ? 'without a content type' : `with ${type.split(';')[0]}`}: not a weldr admin API (the proxy port? the admin API is on --admin, default 127.0.0.1:8687)`, false);
    }
    return { status: res.statusCode, body: parsed, text, headers: res.headers, endpoint };
  }
}

function apiError(body: unknown): ApiError | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const error = (body as { error?: unknown }).error;
  if (error === null || typeof error !== 'object') return undefined;
  const e = error as Record<string, unknown>;
  if (typeof e['code'] !== 'string' || typeof e['message'] !== 'string') return undefined;
  return e as unknown as ApiError;
}

function retryAfter(headers: Answer['headers']): number {
  const raw = headers['retry-after'];
  const seconds = Number(Array.isArray(raw) ? raw[0] : raw);
  // Bounded: a server's "come back in an hour" is not a reason to sleep past --timeout.
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds * 1000, 5_000) : RETRY_PAUSE_MS;
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|EPROTO/;

function describeConnectionError(err: unknown, limitMs: number, timedOut: boolean): Unreachable {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  const message = e.cause?.message ?? e.message ?? String(err);
  if (timedOut || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return new Unreachable(`no answer within ${formatMs(limitMs)}`, false);
  switch (code) {
    case 'ECONNREFUSED':
      return new Unreachable('connection refused', false);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new Unreachable('host name not found', false);
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return new Unreachable('connection timed out', false);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new Unreachable('host unreachable', false);
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
    case 'HPE_INVALID_CONSTANT':
      return new Unreachable(`the connection was closed without an answer (${message}; an https:// listener addressed as http://?)`, false);
  }
  if (TLS_CODES.test(code)) {
    if (/WRONG_VERSION_NUMBER|packet length too long/i.test(message)) return new Unreachable(`TLS failed (${message}): the endpoint does not speak TLS; use http://`, true);
    return new Unreachable(`TLS failed: ${message}`, true);
  }
  return new Unreachable(message, false);
}

function unreachableError(endpoints: readonly string[], failures: ReadonlyMap<string, Unreachable>, timeoutMs: number): CtlError {
  const reasons = endpoints.map((e) => `${e}: ${failures.get(e)?.message ?? `not tried within --timeout ${formatMs(timeoutMs)}`}`);
  const tls = [...failures.values()].some((f) => f.tls);
  const hint = tls
    ? "for https:// endpoints pass the CA that signed the admin certificate with --cacert FILE (or WELDR_CACERT)"
    : "is weldr running there? Check --endpoints (or WELDR_ENDPOINTS): any member's admin API will do, e.g. --endpoints http://127.0.0.1:8687,http://127.0.0.1:8697";
  const message = endpoints.length === 1 ? `cannot reach ${reasons[0]}` : `no endpoint answered — ${reasons.join('; ')}`;
  return new CtlError(EXIT_UNREACHABLE, message, hint);
}

/** A non-2xx answer as a CtlError: 4xx "refused" (exit 4), 5xx "server error" (exit 5). */
export function httpError(method: string, path: string, answer: Answer<unknown>, exhausted = false): CtlError {
  const error = apiError(answer.body) ?? { code: `HTTP_${answer.status}`, message: typeof answer.body === 'string' && answer.body !== '' ? answer.body.slice(0, 200) : `${method} ${path} answered ${answer.status}` };
  const what = `${answer.status} ${error.code}: ${error.message}`;
  const write = WRITES.has(method);
  if (answer.status >= 400 && answer.status < 500) {
    return new CtlError(EXIT_REFUSED, what, refusalHint(answer.status, error), error, answer.status);
  }
  let hint: string;
  if (answer.status === 504) {
    hint = write ? "the change may still be applied: look with 'weldr servers list' (or 'weldr cluster status') before repeating it" : 'retry, or add --stale to read this member\'s local state';
  } else if (answer.status === 503) {
    hint = `${exhausted ? 'still no leader when --timeout ran out; ' : ''}the cluster has no leader or no quorum: check 'weldr cluster status' — a majority of the members must be up and reach each other`;
  } else {
    hint = `see the log of the node at ${answer.endpoint}${typeof answer.headers['x-request-id'] === 'string' ? ` (request id ${answer.headers['x-request-id']})` : ''}`;
  }
  return new CtlError(EXIT_SERVER_ERROR, what, hint, error, answer.status);
}

function refusalHint(status: number, error: ApiError): string | undefined {
  switch (status) {
    case 401:
      return 'this cluster requires an admin token for writes: pass --token TOKEN or set WELDR_ADMIN_TOKEN';
    case 403:
      return 'the admin token was refused: check --token / WELDR_ADMIN_TOKEN (every node must run with the same --admin-token)';
    case 413:
      return 'the request is too large: split it into smaller parts';
    case 404:
    case 405:
      // The route itself is missing: a member running an older weldr.
      if (/^no route for|is not allowed on/.test(error.message)) return 'the member that answered runs a weldr without this API: upgrade it, or point --endpoints at an upgraded member';
      return undefined;
    default:
      return error.field === undefined ? undefined : `check ${error.field}`;
  }
}

export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
