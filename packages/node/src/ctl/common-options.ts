// The flags every operator command takes, parsed with node:util parseArgs together with
// the command's own flags. Environment variables fill what the flags leave out.
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config-error.js';
import { rewordParseArgsError } from '../config/parse-args-error.js';
import { parseDuration, ValueError } from '../config/values.js';
import { parseEndpoints } from './endpoints.js';

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:8687';
export const DEFAULT_TIMEOUT_MS = 15_000;

export interface CommonOptions {
  /** Admin API base URLs, in the order they are tried. */
  readonly endpoints: readonly string[];
  readonly token: string | undefined;
  /** PEM file of the CA that signed the admin listeners' certificates (https endpoints). */
  readonly cacert: string | undefined;
  readonly json: boolean;
  /** Bound on the whole command, every endpoint and retry included. */
  readonly timeoutMs: number;
}

type ParseArgsOptions = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

export const COMMON_FLAGS = {
  endpoints: { type: 'string' },
  token: { type: 'string' },
  cacert: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsOptions;

/** Help lines for the common flags, shown by every operator command's --help. */
export const COMMON_HELP = `Common options:
  --endpoints URL[,URL…]  admin API of any members, tried in order (a member that cannot be
                          reached is skipped) [WELDR_ENDPOINTS; default ${DEFAULT_ENDPOINT}]
  --token TOKEN           admin token, sent with every request (writes need it, reads too
                          with --admin-auth-reads) [WELDR_ADMIN_TOKEN]
  --cacert FILE           CA certificate (PEM) for https:// endpoints [WELDR_CACERT]
  --json                  machine-readable JSON on stdout instead of tables
  --timeout DURATION      give up after this long, retries included [WELDR_TIMEOUT; default 15s]
  -h, --help              show this help
`;

export type FlagValues = Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;

export interface ParsedCommand {
  readonly values: FlagValues;
  readonly positionals: readonly string[];
  readonly common: CommonOptions;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Parses `argv` (after the noun and verb) with the common flags plus `extra`. A mistake
 * is a ConfigError: the CLI prints it on one line and exits 2 without contacting anyone.
 */
export function parseCommand(argv: readonly string[], extra: ParseArgsOptions, env: Env): ParsedCommand {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...COMMON_FLAGS, ...extra }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError(rewordParseArgsError(err));
  }
  const values = parsed.values as FlagValues;
  const fromEnv = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);
  const str = (key: string): string | undefined => {
    const v = values[key];
    return typeof v === 'string' ? v : undefined;
  };
  const endpointsRaw = str('endpoints') ?? fromEnv('WELDR_ENDPOINTS') ?? DEFAULT_ENDPOINT;
  const endpoints = parseEndpoints(endpointsRaw, str('endpoints') === undefined && fromEnv('WELDR_ENDPOINTS') !== undefined ? 'WELDR_ENDPOINTS' : '--endpoints');
  const timeoutRaw = str('timeout') ?? fromEnv('WELDR_TIMEOUT');
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (timeoutRaw !== undefined) {
    try {
      timeoutMs = parseDuration(timeoutRaw);
    } catch (err) {
      if (err instanceof ValueError) throw new ConfigError(`invalid value for --timeout: ${err.message}`);
      throw err;
    }
  }
  const token = str('token') ?? fromEnv('WELDR_ADMIN_TOKEN');
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) throw new ConfigError('the admin token must be visible ASCII characters without spaces');
  return {
    values,
    positionals: parsed.positionals,
    common: { endpoints, token, cacert: str('cacert') ?? fromEnv('WELDR_CACERT'), json: values['json'] === true, timeoutMs },
  };
}

/** A string flag's value (the last one when repeated), or undefined. */
export function stringFlag(values: FlagValues, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}
