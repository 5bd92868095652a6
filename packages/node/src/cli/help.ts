// --help texts. The `start` options come from the option table so they cannot drift.
import { OPTIONS } from '../config/options.js';

export const MAIN_HELP = `weldr: HTTP/1.1 reverse proxy and load balancer with a Raft-replicated origin pool

Usage:
  weldr start [options]         run a node (proxy + admin API)
  weldr test-server [options]   run an origin server for tests, demos and benchmarks
  weldr certs init [options]    make a local CA and member certificates (peer and admin TLS)
  weldr help [command]          show help
  weldr --version               print the version

Run 'weldr <command> --help' for a command's options.
Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration.
Signals to 'weldr start': SIGTERM/SIGINT stop gracefully; SIGHUP re-reads the TLS certificates.
`;

export function startHelp(): string {
  const rows: [string, string][] = OPTIONS.map((o) => [`--${o.flag} ${o.valueName}`.trimEnd(), `${o.help} [${o.env}; default ${o.defaultText}]`]);
  rows.unshift(['--config FILE', 'JSON config file with the keys below in camelCase [WELDR_CONFIG]']);
  rows.push(['-h, --help', 'show this help']);
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return `Usage: weldr start [options]

Runs one node: the proxy listener, the admin API and the pool store.
Each option can also be given as an environment variable or a config-file key;
precedence is flags > environment > config file > defaults.
Durations: 500ms, 10s, 2m or a number of milliseconds.

Options:
${rows.map(([flag, text]) => `  ${flag.padEnd(width)}${text}`).join('\n')}
`;
}

export const TEST_SERVER_HELP = `Usage: weldr test-server [options]

An origin server for tests, demos and benchmarks. Prints one JSON line
{"event":"listening",...,"port":N} once it accepts connections.

Options:
  --port PORT   port to listen on, 0 for an ephemeral one (default 8081)
  --host HOST   address to listen on (default 127.0.0.1)
  --id ID       name reported in bodies and x-server-id (default test-server-<port>)
  -h, --help    show this help

Endpoints:
  GET /                 "hello from <id>"
  GET /large?size=N     N bytes (default 4 MiB, max 1 GiB) of a verifiable pattern
  GET /bytes/N          N bytes of 'x' (max 1 GiB), for benchmarks
  GET /chunked?n=N      a chunked response of N chunks (default 5)
  ANY /echo[/...]       the request (method, url, raw headers, body) as JSON
  ANY /status/CODE      that status (200-599)
  ANY /delay/MS         answers after MS milliseconds (max 60000)
  GET /health           200 "ok", or 503 after POST /health/fail (POST /health/ok restores)
  ANY /response-headers?NAME=VALUE&...   answers with those response headers
  GET /__requests       request counters {total, connections, paths}; POST resets them
  ANY /reset            drops the connection without answering
  ANY /truncate         sends 100 of a promised 1000 bytes, then drops the connection
  GET /ws               WebSocket echo (RFC 6455)
  anything else         404
`;
