// Every setting of `weldr start`, in one table: its config-file key, flag, environment
// variable, default and parser. The loader, `--help` and docs/operations.md all follow it.
import { DEFAULT_LIMITS, DEFAULT_TIMEOUTS, ORIGIN_CLIENTS, type OriginClientKind } from '@weldr/proxy';
import { availableParallelism } from 'node:os';
import { autoMaxConnections } from './fd-limit.js';
import type { BalancerKind } from '@weldr/store';
import { formatDuration, parseAdminUrl, parseBoolean, parseCommand, parseDnsName, parseDuration, parseFile, parseToken, parseEnum, parseInteger, parseHostPort, parseNodeId, parsePath, parsePathList, parsePeers, type HostPort, type Peer } from './values.js';
import { parseInterfaceName, parseOnOff, parseVip, type VipAddress } from './vip-values.js';

export const STORE_KINDS = ['level', 'memory'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const BALANCERS: readonly BalancerKind[] = ['round-robin', 'weighted-round-robin', 'least-connections', 'power-of-two'];
export const SERVE_MODES = ['active-passive', 'all'] as const;
export type ServeMode = (typeof SERVE_MODES)[number];
export const QUORUM_LOSS = ['stop', 'keep-serving'] as const;
export type QuorumLoss = (typeof QUORUM_LOSS)[number];

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
  /** Bearer token required for admin writes (POST/PATCH/DELETE), and reads with adminAuthReads. */
  readonly adminToken: string | undefined;
  /** A file holding the admin token (Docker and Kubernetes secrets, systemd credentials). */
  readonly adminTokenFile: string | undefined;
  /** Reads (pool, cluster, stats, metrics) need the admin token too; /health and /ready stay open. */
  readonly adminAuthReads: boolean;
  /** The admin API speaks HTTPS with this certificate (chain) and key (PEM files). */
  readonly adminCert: string | undefined;
  readonly adminKey: string | undefined;
  /** Admin clients must present a certificate issued by a CA in this bundle. */
  readonly adminClientCa: string | undefined;
  /** Open admin connections, at most, in total and from one source address. */
  readonly adminMaxConnections: number;
  readonly adminMaxConnectionsPerSource: number;
  readonly adminMaxWrites: number;
  readonly adminMaxQueuedWrites: number;
  readonly raft: HostPort;
  /** Where peers reach this node's Raft listener, when that is not --raft (NAT, a relay, a wildcard). */
  readonly raftAdvertise: HostPort | undefined;
  readonly peers: readonly Peer[];
  /** Shared secret peers prove to each other on the Raft transport (it never travels). */
  readonly clusterToken: string | undefined;
  /** Admin URL of a member: an empty data directory asks that cluster to add this node. */
  readonly join: string | undefined;
  /** A backup (GET /cluster/snapshot) an empty data directory seeds a new cluster from. */
  readonly restore: string | undefined;
  /** A file holding the cluster token. */
  readonly clusterTokenFile: string | undefined;
  /** Peer TLS: this member's certificate (naming weldr://node/<id>), key, and the cluster CA. */
  readonly peerCert: string | undefined;
  readonly peerKey: string | undefined;
  readonly peerCa: string | undefined;
  /** Cluster mode without peer authentication, allowed only when every member is on loopback. */
  readonly insecurePeers: boolean;
  /** Raft connections not yet authenticated, at most, in total and from one source. */
  readonly raftMaxPending: number;
  readonly raftMaxPendingPerSource: number;
  /** Raft heartbeat interval (one tick), ms. */
  readonly raftHeartbeat: number;
  /** Raft election timeout (randomized to [T, 2T)), ms. */
  readonly raftElectionTimeout: number;
  /** Elect a new leader at once on evidence that the leader's process is gone (connections closed, Raft port refusing). */
  readonly raftFastFailover: boolean;
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
  readonly originKeepaliveTimeout: number;
  /** Largest request (and origin response) header section, in bytes. */
  readonly maxHeaderSize: number;
  /** Further origins tried after a retryable failure. */
  readonly maxRetries: number;
  /** Who serves client traffic: the active node only, or every node with a current pool. */
  readonly serve: ServeMode;
  /** --serve all: a pool not confirmed by a leader for this long is stale (ms). */
  readonly serveStaleLimit: number;
  /** What a node does when it loses the quorum: stop serving, or keep serving its last pool. */
  readonly quorumLoss: QuorumLoss;
  /** The admin API's /faults routes work (failover drills). */
  readonly faultInjection: boolean;
  /** Virtual IP the active node holds (added with ip, announced with gratuitous ARP / unsolicited NA). */
  readonly vip: VipAddress | undefined;
  /** The interface the VIP goes on. */
  readonly vipInterface: string | undefined;
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
  /** The HTTP/1.1 client that talks to origins: native (node's llhttp) or undici. */
  readonly originClient: OriginClientKind;
  /** Minimum request-body rate, bytes/s; 0: off. */
  readonly clientBodyMinRate: number;
  /** Waiting on a request body that is never held against its rate, ms. */
  readonly clientBodyRateGrace: number;
  /**
   * Proxy worker processes serving the proxy listeners; 0: the node process serves them
   * itself. `auto` resolves to the cores this process may use.
   */
  readonly workers: number;
  /** Access log destination: 'stdout' or a file path; undefined: off. */
  readonly accessLog: string | undefined;
  /** Raft driver: writes and reads that may wait behind a disk write (beyond: 503 OVERLOADED). */
  readonly raftMaxQueue: number;
  /** Raft driver: linearizable reads in flight (beyond: 503 OVERLOADED). */
  readonly raftMaxPendingReads: number;
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
  /** A flag without a value (`--insecure-peers`); the variable and file key take true/false. */
  readonly boolean?: true;
  /** A credential: never logged, never echoed. */
  readonly secret?: true;
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
  { key: 'adminToken', flag: 'admin-token', env: 'WELDR_ADMIN_TOKEN', valueName: 'TOKEN', help: 'require Authorization: Bearer TOKEN for admin writes; needed when --admin is not loopback (prefer the variable: flags show in ps)', defaultText: '(none: writes are open on loopback)', defaultValue: constant(undefined), parse: parseToken, secret: true },
  { key: 'adminTokenFile', flag: 'admin-token-file', env: 'WELDR_ADMIN_TOKEN_FILE', valueName: 'FILE', help: 'read the admin token from this file (e.g. a mounted secret); instead of --admin-token', defaultText: '(none)', defaultValue: constant(undefined), parse: parseFile },
  { key: 'adminAuthReads', flag: 'admin-auth-reads', env: 'WELDR_ADMIN_AUTH_READS', valueName: '', help: 'reads (servers, cluster, stats, metrics) need the admin token too; /health and /ready stay open', defaultText: 'false', defaultValue: constant(false), parse: parseBoolean, boolean: true },
  { key: 'adminCert', flag: 'admin-cert', env: 'WELDR_ADMIN_CERT', valueName: 'FILE', help: 'serve the admin API over HTTPS with this PEM certificate (chain); reloaded on SIGHUP and change', defaultText: '(none: plain HTTP)', defaultValue: constant(undefined), parse: parseFile },
  { key: 'adminKey', flag: 'admin-key', env: 'WELDR_ADMIN_KEY', valueName: 'FILE', help: 'the PEM private key of --admin-cert', defaultText: '(none)', defaultValue: constant(undefined), parse: parseFile },
  { key: 'adminClientCa', flag: 'admin-client-ca', env: 'WELDR_ADMIN_CLIENT_CA', valueName: 'FILE', help: 'admin clients must present a certificate from a CA in this PEM bundle (needs --admin-cert; /health and /ready stay open)', defaultText: '(none)', defaultValue: constant(undefined), parse: parseFile },
  { key: 'adminMaxConnections', flag: 'admin-max-connections', env: 'WELDR_ADMIN_MAX_CONNECTIONS', valueName: 'N', help: 'open admin connections, at most; more are answered 503 and closed', defaultText: '256', defaultValue: constant(256), parse: parseInteger(1, 1_000_000) },
  { key: 'adminMaxConnectionsPerSource', flag: 'admin-max-connections-per-source', env: 'WELDR_ADMIN_MAX_CONNECTIONS_PER_SOURCE', valueName: 'N', help: 'open admin connections, at most, from one client address (IPv6: one /64)', defaultText: '64', defaultValue: constant(64), parse: parseInteger(1, 1_000_000) },
  { key: 'adminMaxWrites', flag: 'admin-max-writes', env: 'WELDR_ADMIN_MAX_WRITES', valueName: 'N', help: 'admin writes handled at once on this node; more wait in a queue', defaultText: '32', defaultValue: constant(32), parse: parseInteger(1, 1_000_000) },
  { key: 'adminMaxQueuedWrites', flag: 'admin-max-queued-writes', env: 'WELDR_ADMIN_MAX_QUEUED_WRITES', valueName: 'N', help: 'admin writes waiting for a place, at most; more are answered 429 at once', defaultText: '256', defaultValue: constant(256), parse: parseInteger(0, 1_000_000) },
  { key: 'raft', flag: 'raft', env: 'WELDR_RAFT', valueName: 'HOST:PORT', help: 'Raft peer transport listener (cluster mode)', defaultText: '127.0.0.1:8688', defaultValue: constant({ host: '127.0.0.1', port: 8688 }), parse: (raw) => parseHostPort(raw) },
  { key: 'raftAdvertise', flag: 'raft-advertise', env: 'WELDR_RAFT_ADVERTISE', valueName: 'HOST:PORT', help: 'the Raft address other members reach this node at, as recorded in its member record (NAT, port forwarding, a relay)', defaultText: "(its own --peers entry, else --raft; a wildcard --raft: the host name)", defaultValue: constant(undefined), parse: (raw) => parseHostPort(raw, false) },
  { key: 'peers', flag: 'peers', env: 'WELDR_PEERS', valueName: 'ID=HOST:PORT,…', help: 'seeds a NEW cluster: the seed members\' Raft addresses, the same on every seed (this node\'s own entry is allowed); any other member turns on cluster mode; once the data directory holds a Raft log, only a second address to try for a member its record\'s address does not reach (a moved cluster)', defaultText: '(none: single node)', defaultValue: constant([]), parse: parsePeers },
  { key: 'join', flag: 'join', env: 'WELDR_JOIN', valueName: 'URL', help: 'admin URL of any member: an empty data directory asks that cluster to add this node (as a learner, promoted once caught up); ignored once the node is a member', defaultText: '(none)', defaultValue: constant(undefined), parse: parseAdminUrl },
  { key: 'restore', flag: 'restore', env: 'WELDR_RESTORE', valueName: 'FILE', help: 'a backup (GET /cluster/snapshot, weldr snapshot save): an empty data directory seeds a new one-member cluster from it; the others --join it', defaultText: '(none)', defaultValue: constant(undefined), parse: parsePath },
  { key: 'clusterToken', flag: 'cluster-token', env: 'WELDR_CLUSTER_TOKEN', valueName: 'TOKEN', help: 'shared secret the members prove to each other (challenge-response: it never travels); the same on every member (prefer the variable: flags show in ps)', defaultText: '(none)', defaultValue: constant(undefined), parse: parseToken, secret: true },
  { key: 'clusterTokenFile', flag: 'cluster-token-file', env: 'WELDR_CLUSTER_TOKEN_FILE', valueName: 'FILE', help: 'read the cluster token from this file (e.g. a mounted secret); instead of --cluster-token', defaultText: '(none)', defaultValue: constant(undefined), parse: parseFile },
  { key: 'peerCert', flag: 'peer-cert', env: 'WELDR_PEER_CERT', valueName: 'FILE', help: 'peer TLS: this member\'s PEM certificate, naming weldr://node/<id>; reloaded on SIGHUP and change', defaultText: '(none: no peer TLS)', defaultValue: constant(undefined), parse: parseFile },
  { key: 'peerKey', flag: 'peer-key', env: 'WELDR_PEER_KEY', valueName: 'FILE', help: 'peer TLS: the PEM private key of --peer-cert', defaultText: '(none)', defaultValue: constant(undefined), parse: parseFile },
  { key: 'peerCa', flag: 'peer-ca', env: 'WELDR_PEER_CA', valueName: 'FILE', help: 'peer TLS: the cluster CA bundle (PEM) members\' certificates must chain to', defaultText: '(none)', defaultValue: constant(undefined), parse: parseFile },
  { key: 'insecurePeers', flag: 'insecure-peers', env: 'WELDR_INSECURE_PEERS', valueName: '', help: 'cluster mode without peer authentication (no token, no TLS); only when --raft and every --peers address are loopback', defaultText: 'false', defaultValue: constant(false), parse: parseBoolean, boolean: true },
  { key: 'raftMaxPending', flag: 'raft-max-pending', env: 'WELDR_RAFT_MAX_PENDING', valueName: 'N', help: 'Raft connections waiting to authenticate, at most, in total; more are closed at once', defaultText: '64', defaultValue: constant(64), parse: parseInteger(1, 100_000) },
  { key: 'raftMaxPendingPerSource', flag: 'raft-max-pending-per-source', env: 'WELDR_RAFT_MAX_PENDING_PER_SOURCE', valueName: 'N', help: 'Raft connections waiting to authenticate, at most, from one address (IPv6: one /64)', defaultText: '8', defaultValue: constant(8), parse: parseInteger(1, 100_000) },
  { key: 'raftHeartbeat', flag: 'raft-heartbeat', env: 'WELDR_RAFT_HEARTBEAT', valueName: 'DURATION', help: 'Raft heartbeat interval', defaultText: '50ms', defaultValue: constant(50), parse: duration(false) },
  { key: 'raftElectionTimeout', flag: 'raft-election-timeout', env: 'WELDR_RAFT_ELECTION_TIMEOUT', valueName: 'DURATION', help: 'Raft election timeout, randomized to [T, 2T); at least 3.5 heartbeats (the active lease must last 2)', defaultText: '500ms', defaultValue: constant(500), parse: duration(false) },
  { key: 'raftFastFailover', flag: 'raft-fast-failover', env: 'WELDR_RAFT_FAST_FAILOVER', valueName: 'on|off', help: "elect a new leader at once when the leader's process is gone (its peer connections closed and its Raft port refuses connections); off where a partition can refuse connections while the leader lives (TCP resets, REJECT rules, relays)", defaultText: 'on', defaultValue: constant(true), parse: parseOnOff },
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
  { key: 'originKeepaliveTimeout', flag: 'origin-keepalive-timeout', env: 'WELDR_ORIGIN_KEEPALIVE_TIMEOUT', valueName: 'DURATION', help: 'how long an idle connection to an origin is kept for reuse (a shorter Keep-Alive hint from the origin wins); raise it for large pools', defaultText: formatDuration(DEFAULT_TIMEOUTS.originKeepAliveMs), defaultValue: constant(DEFAULT_TIMEOUTS.originKeepAliveMs), parse: duration(false) },
  { key: 'maxHeaderSize', flag: 'max-header-size', env: 'WELDR_MAX_HEADER_SIZE', valueName: 'BYTES', help: 'largest request or origin response header section (larger: 431 / 502)', defaultText: '16384', defaultValue: constant(16_384), parse: parseInteger(1024, 1_048_576) },
  { key: 'serve', flag: 'serve', env: 'WELDR_SERVE', valueName: 'MODE', help: 'who serves client traffic: active-passive (the active node only: a VIP) or all (every node whose pool is current: behind a load balancer)', defaultText: 'active-passive', defaultValue: constant('active-passive' as ServeMode), parse: parseEnum(SERVE_MODES) },
  { key: 'serveStaleLimit', flag: 'serve-stale-limit', env: 'WELDR_SERVE_STALE_LIMIT', valueName: 'DURATION', help: '--serve all: a node whose pool no leader confirmed for this long stops serving (unless --quorum-loss keep-serving)', defaultText: '5s', defaultValue: constant(5_000), parse: duration(false) },
  { key: 'quorumLoss', flag: 'quorum-loss', env: 'WELDR_QUORUM_LOSS', valueName: 'stop|keep-serving', help: 'without a quorum: stop serving (safe), or keep serving the last pool (split-brain risk, see the docs)', defaultText: 'stop', defaultValue: constant('stop' as QuorumLoss), parse: parseEnum(QUORUM_LOSS) },
  { key: 'faultInjection', flag: 'fault-injection', env: 'WELDR_FAULT_INJECTION', valueName: 'on|off', help: 'allow failover drills to step this node down or isolate it through the admin API', defaultText: 'off', defaultValue: constant(false), parse: parseOnOff },
  { key: 'vip', flag: 'vip', env: 'WELDR_VIP', valueName: 'ADDRESS/PREFIX', help: 'virtual IP held by the active node (needs --vip-interface, CAP_NET_ADMIN and CAP_NET_RAW)', defaultText: '(none)', defaultValue: constant(undefined), parse: parseVip },
  { key: 'vipInterface', flag: 'vip-interface', env: 'WELDR_VIP_INTERFACE', valueName: 'IF', help: 'network interface for --vip', defaultText: '(none)', defaultValue: constant(undefined), parse: parseInterfaceName },
  { key: 'maxRetries', flag: 'max-retries', env: 'WELDR_MAX_RETRIES', valueName: 'N', help: 'further origins tried after a retryable failure', defaultText: '2', defaultValue: constant(2), parse: parseInteger(0, 10) },
  // Resource limits (issue 9 item 5): each refusal is counted in weldr_proxy_limit_refusals_total{limit}.
  { key: 'maxConnections', flag: 'max-connections', env: 'WELDR_MAX_CONNECTIONS', valueName: 'N|auto', help: 'client connections open at once; beyond, new ones are accepted and closed at once', defaultText: 'auto: (open-file limit - 256) / 2, at most 10000', defaultValue: () => autoMaxConnections(), parse: integerOrAuto(1, 1_000_000, () => autoMaxConnections()) },
  { key: 'maxConnectionsPerSource', flag: 'max-connections-per-source', env: 'WELDR_MAX_CONNECTIONS_PER_SOURCE', valueName: 'N', help: 'client connections open at once from one source address (accept-and-close beyond); 0: no limit', defaultText: 'a quarter of --max-connections', defaultValue: (p) => Math.max(1, Math.floor((p.maxConnections ?? autoMaxConnections()) / 4)), parse: parseInteger(0, 1_000_000) },
  { key: 'maxPipelineDepth', flag: 'max-pipeline-depth', env: 'WELDR_MAX_PIPELINE_DEPTH', valueName: 'N', help: 'pipelined requests held per client connection (forwarded one at a time; reading pauses at N, a request beyond it in the same burst gets 429)', defaultText: String(DEFAULT_LIMITS.maxPipelineDepth), defaultValue: constant(DEFAULT_LIMITS.maxPipelineDepth), parse: parseInteger(1, 1024) },
  { key: 'originMaxConnections', flag: 'origin-max-connections', env: 'WELDR_ORIGIN_MAX_CONNECTIONS', valueName: 'N', help: 'connections to each origin; further requests wait for one', defaultText: String(DEFAULT_LIMITS.originMaxConnections), defaultValue: constant(DEFAULT_LIMITS.originMaxConnections), parse: parseInteger(1, 65_535) },
  { key: 'originTls', flag: 'origin-tls', env: 'WELDR_ORIGIN_TLS', valueName: 'system|FILE', help: 'reach origins over HTTPS, verifying their certificates against the system CAs or the CA bundle FILE (PEM)', defaultText: '(none: cleartext HTTP/1.1)', defaultValue: constant(undefined), parse: (raw) => (raw === 'system' ? 'system' : { caFile: parsePath(raw) }) },
  { key: 'originTlsServername', flag: 'origin-tls-servername', env: 'WELDR_ORIGIN_TLS_SERVERNAME', valueName: 'NAME', help: 'with --origin-tls: the DNS name every origin certificate must carry (sent as SNI)', defaultText: "(the origin's IP address, which its certificate must list)", defaultValue: constant(undefined), parse: parseDnsName },
  { key: 'originClient', flag: 'origin-client', env: 'WELDR_ORIGIN_CLIENT', valueName: 'native|undici', help: "the HTTP/1.1 client that talks to origins: native (node's own llhttp on plain sockets) or undici (an undici Pool per origin, the client before 2026-12)", defaultText: 'native', defaultValue: constant('native' as OriginClientKind), parse: parseEnum(ORIGIN_CLIENTS) },
  { key: 'clientBodyMinRate', flag: 'client-body-min-rate', env: 'WELDR_CLIENT_BODY_MIN_RATE', valueName: 'BYTES/S', help: 'minimum average request-body rate once --client-body-rate-grace was waited (slower: 408 and close); 0 turns it off', defaultText: String(DEFAULT_LIMITS.clientBodyMinRate), defaultValue: constant(DEFAULT_LIMITS.clientBodyMinRate), parse: parseInteger(0, 1_000_000_000) },
  { key: 'clientBodyRateGrace', flag: 'client-body-rate-grace', env: 'WELDR_CLIENT_BODY_RATE_GRACE', valueName: 'DURATION', help: 'waiting on a request body that is never held against --client-body-min-rate', defaultText: formatDuration(DEFAULT_LIMITS.clientBodyRateGraceMs), defaultValue: constant(DEFAULT_LIMITS.clientBodyRateGraceMs), parse: duration(true) },
  { key: 'workers', flag: 'workers', env: 'WELDR_WORKERS', valueName: 'N|auto', help: 'proxy worker processes serving the proxy listeners (the node process keeps Raft, the admin API, health checks and the role); 0: the node process serves them itself; auto: one per core this process may use', defaultText: 'auto', defaultValue: () => autoWorkers(), parse: integerOrAuto(0, 256, () => autoWorkers()) },
  { key: 'accessLog', flag: 'access-log', env: 'WELDR_ACCESS_LOG', valueName: 'stdout|FILE', help: 'write one JSON line per proxied request to stdout or append it to FILE (reopened on SIGHUP)', defaultText: '(none: off)', defaultValue: constant(undefined), parse: (raw) => (raw === 'stdout' ? 'stdout' : parsePath(raw)) },
  { key: 'raftMaxQueue', flag: 'raft-max-queue', env: 'WELDR_RAFT_MAX_QUEUE', valueName: 'N', help: 'admin writes and reads that may wait behind a Raft disk write; more get 503 OVERLOADED', defaultText: '1024', defaultValue: constant(1024), parse: parseInteger(1, 1_000_000) },
  { key: 'raftMaxPendingReads', flag: 'raft-max-pending-reads', env: 'WELDR_RAFT_MAX_PENDING_READS', valueName: 'N', help: 'linearizable reads in flight; more get 503 OVERLOADED', defaultText: '1024', defaultValue: constant(1024), parse: parseInteger(1, 1_000_000) },
];

/** `--workers auto`: the cores this process may use (its CPU affinity and quota included). */
export function autoWorkers(): number {
  return Math.max(1, availableParallelism());
}
