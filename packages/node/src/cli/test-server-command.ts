// `weldr test-server`: parse flags, start the origin, print the listening line, stop on a signal.
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config-error.js';
import { rewordParseArgsError } from '../config/parse-args-error.js';
import { parseHostPort, parseNodeId, ValueError } from '../config/values.js';
import { startTestServer } from '../test-server/server.js';
import { ListenError } from '../runtime/listen.js';
import { TEST_SERVER_HELP } from './help.js';
import { untilShutdownSignal } from './signals.js';

export const DEFAULT_TEST_SERVER_PORT = 8081;

export interface TestServerArgs {
  readonly help: boolean;
  readonly host: string;
  readonly port: number;
  readonly id: string | undefined;
}

/** The flags of `weldr test-server`; a mistake is a ConfigError (exit 2). */
export function parseTestServerArgs(argv: readonly string[]): TestServerArgs {
  let values;
  try {
    values = parseArgs({
      args: [...argv],
      options: { port: { type: 'string' }, host: { type: 'string' }, id: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new ConfigError(rewordParseArgsError(err));
  }
  if (values.help) return { help: true, host: '', port: 0, id: undefined };
  const host = values.host ?? '127.0.0.1';
  let address;
  let id: string | undefined;
  try {
    address = parseHostPort(`${host.includes(':') ? `[${host}]` : host}:${values.port ?? DEFAULT_TEST_SERVER_PORT}`);
  } catch (err) {
    if (err instanceof ValueError) throw new ConfigError(`invalid --host/--port: ${err.message}`);
    throw err;
  }
  try {
    if (values.id !== undefined) id = parseNodeId(values.id);
  } catch (err) {
    if (err instanceof ValueError) throw new ConfigError(`invalid value for --id: ${err.message}`);
    throw err;
  }
  return { help: false, host: address.host, port: address.port, id };
}

export async function testServerCommand(argv: readonly string[]): Promise<number> {
  const args = parseTestServerArgs(argv);
  if (args.help) {
    process.stdout.write(TEST_SERVER_HELP);
    return 0;
  }
  const { host, port, id } = args;
  let server;
  try {
    server = await startTestServer({ host, port, ...(id === undefined ? {} : { id }) });
  } catch (err) {
    if (!(err instanceof ListenError)) throw err;
    // One line, as `weldr start` says it, not a stack.
    process.stderr.write(`weldr test-server: ${err.message}\n`);
    return 1;
  }
  const line = (event: string, extra: Record<string, unknown> = {}) =>
    process.stdout.write(JSON.stringify({ event, service: 'test-server', id: server.id, host: server.host, port: server.port, ...extra }) + '\n');
  line('listening', { pid: process.pid });
  const signal = await untilShutdownSignal();
  line('stopping', { signal });
  await server.close(5000);
  line('stopped');
  return 0;
}
