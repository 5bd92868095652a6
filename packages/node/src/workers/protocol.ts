// Messages between the node process and its proxy workers (node:cluster's IPC channel,
// JSON). The node process alone runs Raft, the admin API, health checks and the roles;
// workers serve the proxy listeners with what they are told here.
import type { CheckResult, Health, OriginClientKind, ProxyLimits, ProxyTimeouts, TlsCertificate } from '@weldr/proxy';
import type { PoolSnapshot } from '@weldr/store';
import type { LogLevel } from '../config/options.js';
import type { CountersReport } from './counter-reports.js';
import type { PoolDelta, WireSnapshot } from './pool-mirror.js';

/** Everything a worker needs to build its proxy (sent once, right after fork). */
export interface WorkerInit {
  readonly type: 'init';
  /** 1-based worker number (stable across restarts of the same slot), for logs. */
  readonly slot: number;
  readonly nodeId: string;
  readonly logLevel: LogLevel;
  readonly timeouts: ProxyTimeouts;
  /** This worker's share of the node's limits (connections are counted per worker). */
  readonly limits: ProxyLimits;
  readonly maxHeaderSize: number;
  readonly maxRetries: number;
  readonly originTls: { ca?: string; servername?: string } | null;
  readonly originClient: OriginClientKind;
  readonly tls: { certificates: TlsCertificate[] } | null;
  readonly listen: { host: string; port: number };
  readonly listenTls: { host: string; port: number } | null;
  /** 'stdout', a file path, or null (off). */
  readonly accessLog: string | null;
  readonly snapshot: WireSnapshot;
  readonly health: { id: string; health: Health; lastCheck?: CheckResult }[];
}

/** `sync`: answer `synced` with this number once the change is applied (WorkerPool.synced). */
export type ToWorker =
  | WorkerInit
  | { readonly type: 'snapshot'; readonly snapshot: WireSnapshot; readonly sync?: number }
  | (PoolDelta & { readonly sync?: number })
  | { readonly type: 'health'; readonly id: string; readonly health: Health }
  /** `base`: the report the node holds from this worker (counter-reports.ts); absent: none. */
  | { readonly type: 'counters'; readonly seq: number; readonly base?: number }
  /** Answer `synced` once everything sent before this is applied (the channel is ordered). */
  | { readonly type: 'sync'; readonly seq: number }
  | { readonly type: 'tls'; readonly certificates: TlsCertificate[] }
  | { readonly type: 'reopen' }
  | { readonly type: 'shutdown'; readonly deadlineMs: number };

export type FromWorker =
  /** The worker listens for messages now (anything sent before would be lost): send init. */
  | { readonly type: 'hello' }
  | { readonly type: 'listening'; readonly listener: 'proxy' | 'proxy-tls'; readonly port: number }
  | { readonly type: 'ready' }
  | { readonly type: 'listen-error'; readonly listener: 'proxy' | 'proxy-tls'; readonly code: string | undefined; readonly message: string }
  | { readonly type: 'counters'; readonly seq: number; readonly data: CountersReport }
  | { readonly type: 'synced'; readonly seq: number };

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

export function isToWorker(m: unknown): m is ToWorker {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}
