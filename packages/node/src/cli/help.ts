// --help texts of the commands (`weldr start --help` is built from the option table, in start-help.ts).

export const MAIN_HELP = `weldr: HTTP/1.1 reverse proxy and load balancer with a Raft-replicated origin pool

Usage:
  weldr start [options]         run a node (proxy + admin API)
  weldr dev-cluster [options]   run a three-node cluster on this machine, with two origins
  weldr test-server [options]   run an origin server for tests, demos and benchmarks
  weldr certs init [options]    make a local CA and member certificates (peer and admin TLS)
  weldr help [command]          show help
  weldr --version               print the version

Operating a running cluster (any member's admin API; --endpoints, --token, --json):
  weldr servers list|add|remove|drain|export|import   the origin pool
  weldr cluster status|transfer                       members, leader, active node
  weldr member list|add|remove|promote                membership
  weldr settings get|set                              balancer and health checks
  weldr stats                                         a member's proxy counters
  weldr snapshot save FILE                            backup of the replicated state
  weldr drill --kind KIND [--rounds N]                a failover drill with a report

Run 'weldr <command> --help' for a command's options.
Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration; weldr start also
3 stopped by a failed write to the data directory, 4 data directory refused (damaged,
another node's); the operator commands 3 cluster unreachable, 4 operation refused,
5 cluster-side failure or timeout; weldr drill 6 threshold missed or round failed,
130 interrupted.
Signals to 'weldr start': SIGTERM/SIGINT stop gracefully; SIGHUP re-reads the TLS
certificates and reopens the --access-log file.
`;

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

export const DEV_CLUSTER_HELP = `Usage: weldr dev-cluster [options]

Runs a three-node weldr cluster and two origins on this machine (what \`npm start\` does):
members n1..n3 as \`weldr start --peers …\` processes, origins as \`weldr test-server\`,
registered in the pool through the admin API. Prints which member is active and what to
try; Ctrl-C (SIGINT) or SIGTERM stops every process it started. Data and logs stay in
--data, and the next run reuses them. For a single node, run \`weldr start\`.

Options:
  --data DIR                members' data in DIR/n1..n3, logs in DIR/<name>.log (default ./data)
  --proxy-ports P,P,P       proxy listeners, one per member (default 8080,8090,8100)
  --admin-ports P,P,P       admin API listeners (default 8687,8697,8707)
  --raft-ports P,P,P        Raft peer listeners (default 8688,8698,8708)
  --origin-ports P,…        test-server origins; 0 for any free port; empty for none (default 8081,8082)
  -h, --help                show this help

Every listener is on 127.0.0.1. The members share a cluster token kept in DIR/cluster-token
(or WELDR_CLUSTER_TOKEN); WELDR_ADMIN_TOKEN, when set, is used to register the origins.
`;
