// Every setting of `weldr start`, in one table: its config-file key, flag, environment
// variable, default and parser. The loader, `--help` and docs/operations.md all follow it.
import { DEFAULT_LIMITS, DEFAULT_TIMEOUTS } from '@weldr/proxy';
import { autoMaxConnections } from './fd-limit.js';
import type { BalancerKind } from '@weldr/store';
import { formatDuration, parseDnsName, parseCommand, parseDuration, parseToken, parseEnum, parseInteger, parseHostPort, parseNodeId, parsePath, parsePathList, parsePeers, type HostPort, type Peer } from './values.js';

export const STORE_KINDS = ['level', 'memory'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const BALANCERS: readonly BalancerKind[] = ['round-robin', 'weighted-round-robin', 'least-connections', 'power-of-two'];

/** The resolved configuration of one node. Durations are in milliseconds. */
export interface NodeConfig {
  readonly id: string;
  readonly listen: HostPort;
  /** The proxy's HTTPS listener (TLS termination), if any. */
  readonly listenTls: HostPort | undefined;
  /** Certificate files (PEM) for --listen-tls; the first is the default, SNI picks by their names. */
  readonly tlsCert: readonly string[];
  /** Their private keys, in the same order. */
  readonly tlsKey: readonly string[];
  readonly admin: HostPort;
  /** Bearer token required for admin writes (POST/PATCH/DELETE); reads stay open. */
  readonly adminToken: string | undefined;
  readonly raft: HostPort;
  readonly peers: readonly Peer[];
  /** Shared secret peers present to each other on the Raft transport. */
  readonly clusterToken: string | undefined;
  /** Raft heartbeat interval (one tick), ms. */
  readonly raftHeartbeat: number;
  /** Raft election timeout (randomized to [T, 2T)), ms. */
  readonly raftElectionTimeout: number;
  /** Shell command run when this node becomes active. */
  readonly onActive: string | undefined;
  /** Shell command run at start and whenever this node stops being active. */
  readonly onPassive: string | undefined;
  readonly data: string;
  readonly store: StoreKind;
  readonly logLevel: LogLevel;
  /** When set, the node makes the replicated balancer setting equal to it at start. */
  readonly balancer: BalancerKind | undefined;
  readonly shutdownTimeout: number;
  readonly clientHeadersTimeout: number;
  readonly clientRequestTimeout: number;
  readonly clientIdleTimeout: number;
  readonly clientBodyTimeout: number;
  readonly originConnectTimeout: number;
  readonly originResponseTimeout: number;
  readonly originIdleTimeout: number;
  /** Largest request (and origin response) header section, in bytes. */
  readonly maxHeaderSize: number;
  /** Further origins tried after a retryable failure. */
  readonly maxRetries: number;
  /** Client connections open at once (accept-and-close beyond). */
  readonly maxConnections: number;
  /** Client connections open at once from one source address; 0: no limit. */
  readonly maxConnectionsPerSource: number;
  /** Requests held per client connection (pipelining). */
  readonly maxPipelineDepth: number;
  /** Connections to each origin. */
  readonly originMaxConnections: number;
  /** Reach origins over HTTPS, verified against the system CAs or a CA bundle file; undefined: cleartext. */
  readonly originTls: 'system' | { readonly caFile: string } | undefined;
  /** The name origin certificates must carry (default: the origin's IP address). */
  readonly originTlsServername: string | undefined;
  /** Minimum request-body rate, bytes/s; 0: off. */
  readonly clientBodyMinRate: number;
  /** Waiting on a request body that is never held against its rate, ms. */
  readonly clientBodyRateGrace: number;
}

export type ConfigKey = keyof NodeConfig;

export interface OptionSpec<K extends ConfigKey> {
  readonly key: K;
  /** Long flag without the dashes. */
  readonly flag: string;
  readonly env: string;
  /** Placeholder in --help, e.g. HOST:PORT. */
  readonly valueName: string;
  readonly help: string;
  /** The default as shown to people. */
  readonly defaultText: string;
  readonly defaultValue: (partial: Partial<NodeConfig>) => NodeConfig[K];
  readonly parse: (raw: unknown) => NodeConfig[K];
}

type AnyOptionSpec = { [K in ConfigKey]: OptionSpec<K> }[ConfigKey];

const duration = (allowZero: boolean) => (raw: unknown) => parseDuration(raw, allowZero);
/** A whole number in [min, max], or `auto` for `auto()`. */
const integerOrAuto = (min: number, max: number, auto: () => number) => (raw: unknown) => (raw === 'auto' ? auto() : parseInteger(min, max)(raw));
const constant =
  <T>(value: T) =>
  (): T =>
    value;

/** Order matters: `data`'s default depends on `id`, so `id` comes first. */
export const OPTIONS: readonly AnyOptionSpec[] = [
  { key: 'id', flag: 'id', env: 'WELDR_ID', valueName: 'ID', help: 'node id, unique in the cluster', defaultText: 'n1', defaultValue: constant('n1'), parse: parseNodeId },
  { key: 'listen', flag: 'listen', env: 'WELDR_LISTEN', valueName: 'HOST:PORT', help: 'proxy listener (port 0: ephemeral)', defaultText: '0.0.0.0:8080', defaultValue: constant({ host: '0.0.0.0', port: 8080 }), parse: (raw) => parseHostPort(raw) },
  { key: 'listenTls', flag: 'listen-tls', env: 'WELDR_LISTEN_TLS', valueName: 'HOST:PORT', help: 'proxy HTTPS listener (TLS termination; needs --tls-cert and --tls-key)', defaultText: '(none)', defaultValue: constant(undefined), parse: (raw) => parseHostPort(raw) },
  { key: 'tlsCert', flag: 'tls-cert', env: 'WELDR_TLS_CERT', valueName: 'FILE,…', help: 'certificate chains (PEM) for --listen-tls: the first is the default, SNI picks by the names each carries; reread on SIGHUP', defaultText: '(none)', defaultValue: constant([]), parse: parsePathList },
  { key: 'tlsKey', flag: 'tls-key', env: 'WELDR_TLS_KEY', valueName: 'FILE,…', help: 'private keys (PEM) of the --tls-cert certificates, in the same order', defaultText: '(none)', defaultValue: constant([]), parse: parsePathList },
  { key: 'admin', flag: 'admin', env: 'WELDR_ADMIN', valueName: 'HOST:PORT', help: 'admin API listener', defaultText: '127.0.0.1:8687', defaultValue: constant({ host: '127.0.0.1', port: 8687 }), parse: (raw) => parseHostPort(raw) },
  { key: 'adminToken', flag: 'admin-token', env: 'WELDR_ADMIN_TOKEN', valueName: 'TOKEN', help: 'require Authorization: Bearer TOKEN for admin writes (prefer the variable: flags show in ps)', defaultText: '(none: writes are open)', defaultValue: constant(undefined), parse: parseToken },
  { key: 'raft', flag: 'raft', env: 'WELDR_RAFT', valueName: 'HOST:PORT', help: 'Raft peer transport listener (cluster mode)', defaultText: '127.0.0.1:8688', defaultValue: constant({ host: '127.0.0.1', port: 8688 }), parse: (raw) => parseHostPort(raw) },
  { key: 'peers', flag: 'peers', env: 'WELDR_PEERS', valueName: 'ID=HOST:PORT,…', help: 'the cluster members\' Raft addresses (this node\'s own entry is allowed); any other member turns on cluster mode', defaultText: '(none: single node)', defaultValue: constant([]), parse: parsePeers },
  { key: 'clusterToken', flag: 'cluster-token', env: 'WELDR_CLUSTER_TOKEN', valueName: 'TOKEN', help: 'shared secret the members present to each other (prefer the variable: flags show in ps)', defaultText: '(none)', defaultValue: constant(undefined), parse: parseToken },
  { key: 'raftHeartbeat', flag: 'raft-heartbeat', env: 'WELDR_RAFT_HEARTBEAT', valueName: 'DURATION', help: 'Raft heartbeat interval', defaultText: '50ms', defaultValue: constant(50), parse: duration(false) },
  { key: 'raftElectionTimeout', flag: 'raft-election-timeout', env: 'WELDR_RAFT_ELECTION_TIMEOUT', valueName: 'DURATION', help: 'Raft election timeout, randomized to [T, 2T); at least 2 heartbeats', defaultText: '500ms', defaultValue: constant(500), parse: duration(false) },
  { key: 'onActive', flag: 'on-active', env: 'WELDR_ON_ACTIVE', valueName: 'COMMAND', help: 'shell command run when this node becomes active (e.g. add the VIP, send gratuitous ARP)', defaultText: '(none)', defaultValue: constant(undefined), parse: parseCommand },
  { key: 'onPassive', flag: 'on-passive', env: 'WELDR_ON_PASSIVE', valueName: 'COMMAND', help: 'shell command run at start and whenever this node stops being active (e.g. remove the VIP)', defaultText: '(none)', defaultValue: constant(undefined), parse: parseCommand },
  { key: 'data', flag: 'data', env: 'WELDR_DATA', valueName: 'DIR', help: 'data directory (LevelDB)', defaultText: './data/<id>', defaultValue: (p) => `./data/${p.id ?? 'n1'}`, parse: parsePath },
  { key: 'store', flag: 'store', env: 'WELDR_STORE', valueName: 'level|memory', help: 'pool storage: level (survives restarts) or memory', defaultText: 'level', defaultValue: constant('level' as StoreKind), parse: parseEnum(STORE_KINDS) },
  { key: 'logLevel', flag: 'log-level', env: 'WELDR_LOG_LEVEL', valueName: 'LEVEL', help: LOG_LEVELS.join('|'), defaultText: 'info', defaultValue: constant('info' as LogLevel), parse: parseEnum(LOG_LEVELS) },
  { key: 'balancer', flag: 'balancer', env: 'WELDR_BALANCER', valueName: 'KIND', help: `set the cluster-wide balancer at start: ${BALANCERS.join('|')}`, defaultText: '(keep the replicated setting, initially round-robin)', defaultValue: constant(undefined), parse: parseEnum(BALANCERS) },
  { key: 'shutdownTimeout', flag: 'shutdown-timeout', env: 'WELDR_SHUTDOWN_TIMEOUT', valueName: 'DURATION', help: 'on SIGTERM/SIGINT, how long in-flight requests may take', defaultText: '10s', defaultValue: constant(10_000), parse: duration(true) },
  { key: 'clientHeadersTimeout', flag: 'client-headers-timeout', env: 'WELDR_CLIENT_HEADERS_TIMEOUT', valueName: 'DURATION', help: 'max time for a client to send the request head (then 408)', defaultText: formatDuration(DEFAULT_TIMEOUTS.clientHeadersMs), defaultValue: constant(DEFAULT_TIMEOUTS.clientHeadersMs), parse: duration(false) },
  { key: 'clientRequestTimeout', flag: 'client-request-timeout', env: 'WELDR_CLIENT_REQUEST_TIMEOUT', valueName: 'DURATION', help: 'max time to receive a whole client request, body included (then 408)', defaultText: formatDuration(DEFAULT_TIMEOUTS.clientRequestMs), defaultValue: constant(DEFAULT_TIMEOUTS.clientRequestMs), parse: duration(false) },
  { key: 'clientIdleTimeout', flag: 'client-idle-timeout', env: 'WELDR_CLIENT_IDLE_TIMEOUT', valueName: 'DURATION', help: 'keep-alive idle time between requests on a client connection', defaultText: formatDuration(DEFAULT_TIMEOUTS.clientIdleMs), defaultValue: constant(DEFAULT_TIMEOUTS.clientIdleMs), parse: duration(false) },
  { key: 'clientBodyTimeout', flag: 'client-body-timeout', env: 'WELDR_CLIENT_BODY_TIMEOUT', valueName: 'DURATION', help: 'max gap between request body bytes from a client (then 408); 0 turns it off', defaultText: formatDuration(DEFAULT_TIMEOUTS.clientBodyIdleMs), defaultValue: constant(DEFAULT_TIMEOUTS.clientBodyIdleMs), parse: duration(true) },
  { key: 'originConnectTimeout', flag: 'origin-connect-timeout', env: 'WELDR_ORIGIN_CONNECT_TIMEOUT', valueName: 'DURATION', help: 'max time to connect to an origin (then the next origin, or 504)', defaultText: formatDuration(DEFAULT_TIMEOUTS.originConnectMs), defaultValue: constant(DEFAULT_TIMEOUTS.originConnectMs), parse: duration(false) },
  { key: 'originResponseTimeout', flag: 'origin-response-timeout', env: 'WELDR_ORIGIN_RESPONSE_TIMEOUT', valueName: 'DURATION', help: 'max wait from request sent to origin response head (then 504)', defaultText: formatDuration(DEFAULT_TIMEOUTS.originResponseMs), defaultValue: constant(DEFAULT_TIMEOUTS.originResponseMs), parse: duration(false) },
  { key: 'originIdleTimeout', flag: 'origin-idle-timeout', env: 'WELDR_ORIGIN_IDLE_TIMEOUT', valueName: 'DURATION', help: 'max idle gap in an origin response body, or stall of a client not reading it', defaultText: formatDuration(DEFAULT_TIMEOUTS.originIdleMs), defaultValue: constant(DEFAULT_TIMEOUTS.originIdleMs), parse: duration(false) },
  { key: 'maxHeaderSize', flag: 'max-header-size', env: 'WELDR_MAX_HEADER_SIZE', valueName: 'BYTES', help: 'largest request or origin response header section (larger: 431 / 502)', defaultText: '16384', defaultValue: constant(16_384), parse: parseInteger(1024, 1_048_576) },
  { key: 'maxRetries', flag: 'max-retries', env: 'WELDR_MAX_RETRIES', valueName: 'N', help: 'further origins tried after a retryable failure', defaultText: '2', defaultValue: constant(2), parse: parseInteger(0, 10) },
  // Resource limits (issue 9 item 5): each refusal is counted in weldr_proxy_limit_refusals_total{limit}.
  { key: 'maxConnections', flag: 'max-connections', env: 'WELDR_MAX_CONNECTIONS', valueName: 'N|auto', help: 'client connections open at once; beyond, new ones are accepted and closed at once', defaultText: 'auto: (open-file limit - 256) / 2, at most 10000', defaultValue: () => autoMaxConnections(), parse: integerOrAuto(1, 1_000_000, () => autoMaxConnections()) },
  { key: 'maxConnectionsPerSource', flag: 'max-connections-per-source', env: 'WELDR_MAX_CONNECTIONS_PER_SOURCE', valueName: 'N', help: 'client connections open at once from one source address (accept-and-close beyond); 0: no limit', defaultText: 'a quarter of --max-connections', defaultValue: (p) => Math.max(1, Math.floor((p.maxConnections ?? autoMaxConnections()) / 4)), parse: parseInteger(0, 1_000_000) },
  { key: 'maxPipelineDepth', flag: 'max-pipeline-depth', env: 'WELDR_MAX_PIPELINE_DEPTH', valueName: 'N', help: 'pipelined requests held per client connection (forwarded one at a time; reading pauses at N, a request beyond it in the same burst gets 429)', defaultText: String(DEFAULT_LIMITS.maxPipelineDepth), defaultValue: constant(DEFAULT_LIMITS.maxPipelineDepth), parse: parseInteger(1, 1024) },
  { key: 'originMaxConnections', flag: 'origin-max-connections', env: 'WELDR_ORIGIN_MAX_CONNECTIONS', valueName: 'N', help: 'connections to each origin; further requests wait for one', defaultText: String(DEFAULT_LIMITS.originMaxConnections), defaultValue: constant(DEFAULT_LIMITS.originMaxConnections), parse: parseInteger(1, 65_535) },
  { key: 'originTls', flag: 'origin-tls', env: 'WELDR_ORIGIN_TLS', valueName: 'system|FILE', help: 'reach origins over HTTPS, verifying their certificates against the system CAs or the CA bundle FILE (PEM)', defaultText: '(none: cleartext HTTP/1.1)', defaultValue: constant(undefined), parse: (raw) => (raw === 'system' ? 'system' : { caFile: parsePath(raw) }) },
  { key: 'originTlsServername', flag: 'origin-tls-servername', env: 'WELDR_ORIGIN_TLS_SERVERNAME', valueName: 'NAME', help: 'with --origin-tls: the DNS name every origin certificate must carry (sent as SNI)', defaultText: "(the origin's IP address, which its certificate must list)", defaultValue: constant(undefined), parse: parseDnsName },
  { key: 'clientBodyMinRate', flag: 'client-body-min-rate', env: 'WELDR_CLIENT_BODY_MIN_RATE', valueName: 'BYTES/S', help: 'minimum average request-body rate once --client-body-rate-grace was waited (slower: 408 and close); 0 turns it off', defaultText: String(DEFAULT_LIMITS.clientBodyMinRate), defaultValue: constant(DEFAULT_LIMITS.clientBodyMinRate), parse: parseInteger(0, 1_000_000_000) },
  { key: 'clientBodyRateGrace', flag: 'client-body-rate-grace', env: 'WELDR_CLIENT_BODY_RATE_GRACE', valueName: 'DURATION', help: 'waiting on a request body that is never held against --client-body-min-rate', defaultText: formatDuration(DEFAULT_LIMITS.clientBodyRateGraceMs), defaultValue: constant(DEFAULT_LIMITS.clientBodyRateGraceMs), parse: duration(true) },
];
