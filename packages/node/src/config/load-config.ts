// Resolves a NodeConfig from flags > environment > config file > defaults. Every
// problem becomes one ConfigError naming the flag, variable or key at fault.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { leaseHeartbeats, MIN_LEASE_HEARTBEATS, minElectionTimeoutMs } from '@weldr/cluster';
import { duplicateJsonKey } from '@weldr/store';
import { ConfigError } from './config-error.js';
import { OPTIONS, type ConfigKey, type NodeConfig } from './options.js';
import { rewordParseArgsError } from './parse-args-error.js';
import { formatDuration, formatHostPort, parseToken, ValueError, type HostPort } from './values.js';
import { checkSecurity } from './security-checks.js';

export { rewordParseArgsError } from './parse-args-error.js';

export type ConfigSource = 'flag' | 'env' | 'file' | 'default';

export interface LoadedConfig {
  readonly help: false;
  readonly config: NodeConfig;
  /** Where each value came from, for the startup log line. */
  readonly sources: Readonly<Record<ConfigKey, ConfigSource>>;
  readonly configFile: string | undefined;
  /**
   * WELDR_* variables that name no setting (a typo such as WELDR_ADMN would otherwise be
   * silently ignored). Logged as a warning, not refused: tools may set their own.
   */
  readonly unknownEnv: readonly string[];
}

/** `--help` short-circuits loading: nothing else is validated. */
export type LoadResult = LoadedConfig | { readonly help: true };

export interface LoadInputs {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Injected for tests; defaults to reading the file as UTF-8. */
  readonly readFile?: (path: string) => string;
}

/** Flags that are not settings. */
const CONFIG_FLAG = 'config';
const CONFIG_ENV = 'WELDR_CONFIG';

/** Parses `weldr start` arguments (without the command name). */
export function loadConfig(inputs: LoadInputs): LoadResult {
  const flags = parseFlags(inputs.argv);
  if (flags.help) return { help: true };

  // An empty environment variable counts as unset, as in most shells' `${VAR:-default}`.
  const env = (name: string): string | undefined => {
    const v = inputs.env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  const configFile = flags.values[CONFIG_FLAG] ?? env(CONFIG_ENV);
  const file = configFile === undefined ? {} : readConfigFile(configFile, inputs.readFile);

  const config: Partial<Record<ConfigKey, unknown>> = {};
  const sources = {} as Record<ConfigKey, ConfigSource>;
  for (const option of OPTIONS) {
    const fromFlag = flags.values[option.flag];
    const fromEnv = env(option.env);
    let raw: unknown;
    let source: ConfigSource;
    let where: string;
    if (fromFlag !== undefined) [raw, source, where] = [fromFlag, 'flag', `--${option.flag}`];
    else if (fromEnv !== undefined) [raw, source, where] = [fromEnv, 'env', option.env];
    else if (Object.hasOwn(file, option.key)) [raw, source, where] = [file[option.key], 'file', `"${option.key}" in ${configFile}`];
    else {
      config[option.key] = option.defaultValue(config as Partial<NodeConfig>);
      sources[option.key] = 'default';
      continue;
    }
    try {
      config[option.key] = option.parse(raw);
    } catch (err) {
      if (err instanceof ValueError) throw new ConfigError(`invalid value for ${where}: ${err.message}`);
      throw err;
    }
    sources[option.key] = source;
  }
  readTokenFiles(config as Partial<Record<ConfigKey, unknown>>, sources, inputs.readFile);
  checkListenersDiffer(config as unknown as NodeConfig);
  checkTls(config as unknown as NodeConfig);
  if ((config as unknown as NodeConfig).originTlsServername !== undefined && (config as unknown as NodeConfig).originTls === undefined) {
    throw new ConfigError('--origin-tls-servername is for --origin-tls, which is not set');
  }
  checkSecurity(config as unknown as NodeConfig);
  checkRaftTimers(config as unknown as NodeConfig);
  return { config: config as unknown as NodeConfig, sources, configFile, unknownEnv: unknownEnvNames(inputs.env), help: false };
}

/**
 * --admin-token-file / --cluster-token-file: the token is read here, once, and checked
 * like one given directly (a trailing newline, as `echo` and editors leave, is dropped).
 * Giving both a token and its file is refused: which one was meant is unclear.
 */
function readTokenFiles(config: Partial<Record<ConfigKey, unknown>>, sources: Record<ConfigKey, ConfigSource>, readFile = (p: string) => readFileSync(p, 'utf8')): void {
  for (const [tokenKey, fileKey, flag] of [['adminToken', 'adminTokenFile', '--admin-token-file'], ['clusterToken', 'clusterTokenFile', '--cluster-token-file']] as const) {
    const path = config[fileKey];
    if (typeof path !== 'string') continue;
    if (config[tokenKey] !== undefined) throw new ConfigError(`${flag} and the token itself are both set; give one`);
    let text: string;
    try {
      text = readFile(path);
    } catch (err) {
      throw new ConfigError(`cannot read ${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      config[tokenKey] = parseToken(text.replace(/\r?\n$/, ''));
    } catch (err) {
      if (err instanceof ValueError) throw new ConfigError(`the token in ${flag} ${path} ${err.message}`);
      throw err;
    }
    sources[tokenKey] = sources[fileKey];
  }
}

/** Whether binding `a` takes the port on address `b` too ("::" is dual-stack on Linux). */
const covers = (a: string, b: string): boolean => a === b || a === '::' || (a === '0.0.0.0' && isIP(b) === 4);

/**
 * Two listeners on one address can never both bind; say so as a configuration error
 * (exit 2) rather than fail at run time with "address in use". The Raft listener is
 * bound only in cluster mode (another member in --peers).
 */
function checkListenersDiffer(config: NodeConfig): void {
  const listeners: [string, HostPort][] = [
    ['the proxy (listen', config.listen],
    ['the admin API (admin', config.admin],
  ];
  if (config.listenTls !== undefined) listeners.push(['the proxy\'s TLS listener (listen-tls', config.listenTls]);
  if (config.peers.some((p) => p.id !== config.id)) listeners.push(['the Raft transport (raft', config.raft]);
  for (let i = 0; i < listeners.length; i++) {
    for (let j = i + 1; j < listeners.length; j++) {
      const [aName, a] = listeners[i]!;
      const [bName, b] = listeners[j]!;
      if (a.port === 0 || a.port !== b.port || !(covers(a.host, b.host) || covers(b.host, a.host))) continue;
      throw new ConfigError(`${aName} ${formatHostPort(a)}) and ${bName} ${formatHostPort(b)}) cannot share port ${a.port}`);
    }
  }
}

/** --listen-tls, --tls-cert and --tls-key go together. */
function checkTls(config: NodeConfig): void {
  if (config.listenTls === undefined) {
    if (config.tlsCert.length !== 0 || config.tlsKey.length !== 0) throw new ConfigError('--tls-cert and --tls-key are for --listen-tls, which is not set');
    return;
  }
  if (config.tlsCert.length === 0 || config.tlsKey.length === 0) throw new ConfigError('--listen-tls needs --tls-cert and --tls-key');
  if (config.tlsCert.length !== config.tlsKey.length) {
    throw new ConfigError(`--tls-cert names ${config.tlsCert.length} file(s) and --tls-key ${config.tlsKey.length}: give one key per certificate, in the same order`);
  }
}

/**
 * The active role is fenced by a lease of leaseHeartbeats() heartbeats after each
 * acknowledged round (packages/raft README, "The lease"). Under two, /ready would
 * never answer 200 (zero) or drop to 503 at every tick (one) while writes still
 * replicate: refuse such settings here, with the shortest election timeout that works.
 */
function checkRaftTimers(config: NodeConfig): void {
  const lease = leaseHeartbeats(config.raftElectionTimeout, config.raftHeartbeat);
  if (lease >= MIN_LEASE_HEARTBEATS) return;
  const min = minElectionTimeoutMs(config.raftHeartbeat);
  throw new ConfigError(
    `--raft-election-timeout ${formatDuration(config.raftElectionTimeout)} with --raft-heartbeat ${formatDuration(config.raftHeartbeat)} ` +
      `gives the active node a lease of ${lease} heartbeat${lease === 1 ? '' : 's'}; it needs at least ${MIN_LEASE_HEARTBEATS}: ` +
      `use an election timeout of at least ${formatDuration(min)} (${(min / config.raftHeartbeat).toFixed(1)} heartbeats) or a shorter heartbeat`,
  );
}

// WELDR_STOP_WITH_PARENT is not a setting: a supervisor (dev-cluster) sets it to tie the
// process's life to its own (cli/signals.ts). WELDR_ENDPOINTS, WELDR_CACERT and
// WELDR_TIMEOUT are the operator CLI's (ctl/common-options.ts; docs/operations.md
// exports them for `weldr servers …`): not typos, so not worth a warning at every start.
const KNOWN_ENV = new Set<string>([CONFIG_ENV, 'WELDR_STOP_WITH_PARENT', 'WELDR_ENDPOINTS', 'WELDR_CACERT', 'WELDR_TIMEOUT', ...OPTIONS.map((o) => o.env)]);

function unknownEnvNames(env: Readonly<Record<string, string | undefined>>): string[] {
  return Object.keys(env)
    .filter((name) => name.startsWith('WELDR_') && !KNOWN_ENV.has(name) && env[name] !== undefined && env[name] !== '')
    .sort();
}

function parseFlags(argv: readonly string[]): { values: Record<string, string | undefined>; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    [CONFIG_FLAG]: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const option of OPTIONS) options[option.flag] = { type: option.boolean === true ? 'boolean' : 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new ConfigError(rewordParseArgsError(err));
  }
  const values: Record<string, string | undefined> = {};
  let help = false;
  for (const [name, value] of Object.entries(parsed.values)) {
    if (name === 'help') help = value === true;
    // A repeated flag: parseArgs keeps the last one, which is what people expect.
    else if (typeof value === 'string') values[name] = value;
    else if (value === true) values[name] = 'true';
  }
  return { values, help };
}

function readConfigFile(path: string, readFile = (p: string) => readFileSync(p, 'utf8')): Record<string, unknown> {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    // Editors on Windows save "UTF-8" with a byte order mark; JSON.parse calls it a bad token.
    parsed = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must contain a JSON object`);
  }
  const duplicate = duplicateJsonKey(text.replace(/^\uFEFF/, ''));
  if (duplicate !== undefined) throw new ConfigError(`key "${duplicate}" appears more than once in config file ${path}; which one was meant is unclear`);
  const known = new Set<string>(OPTIONS.map((o) => o.key));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) throw new ConfigError(`unknown key "${key}" in config file ${path} (known keys: ${[...known].join(', ')})`);
  }
  return parsed as Record<string, unknown>;
}
