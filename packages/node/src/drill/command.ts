// `weldr drill` as an operator command (ctl/run.ts dispatches it like the others).
import type { NounSpec } from '../ctl/context.js';
import { DRILL_FLAG_HELP, DRILL_FLAGS } from './options.js';

export const DRILL: NounSpec = {
  summary: 'run a failover drill against a running cluster and report the figures',
  defaultVerb: 'run',
  verbs: {
    run: {
      args: '',
      summary: 'inject a fault into the active node, round after round, under steady traffic, and report',
      details: `Kinds: transfer (planned hand-off), step-down (the active node abdicates abruptly, as
if it lost its quorum), isolate (it stops talking to its peers for --fault-duration),
kill (SIGKILL; its supervisor restarts it) and pause (SIGSTOP, then SIGCONT). step-down
and isolate need every member started with --fault-injection on; kill and pause signal
processes on this machine (the PIDs of 'weldr dev-cluster', or --pids).

While it runs: every member's GET /ready is sampled every 10 ms, proxied requests go to
the members' proxies (or --target / --vip), and admin writes go through the members in
turn. The drill refuses to start on an unhealthy cluster, and heals what it injected at
the end of each round and on Ctrl-C. --endpoints must name every member's admin API
unless the members report each other's; --timeout bounds only the initial discovery.

Report per round: time from the fault to a new active node, to the first proxied
request served through it and to the first acknowledged write; failed and slow
requests and writes; samples with two active nodes (must be 0); terms and leaders.
Exit status: 0 ok, 6 a threshold missed / a round failed / two active nodes seen,
130 interrupted (after healing), 2-5 as for every command.

Examples:
  weldr drill --kind kill --rounds 5 --endpoints 127.0.0.1:8687,127.0.0.1:8697,127.0.0.1:8707
  weldr drill --kind isolate --fault-duration 5s --max-failover 2s --json > drill.json
`,
      flags: DRILL_FLAGS,
      flagHelp: DRILL_FLAG_HELP,
      minArgs: 0,
      maxArgs: 0,
      async run(ctx) {
        return (await import('./run.js')).runDrill(ctx);
      },
    },
  },
};
