// Deep simulation sweeps: `npm run sim -- --seeds N --steps M [--start S] [--seed X] [--trace]`.
// Prints progress, seeds/s and, for each failure, its seed and a readable trace
// (a failing seed is re-run with tracing; the run is deterministic).

import { runSimulation } from './simulator.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} needs a non-negative integer`);
  return v;
}

const single = process.argv.includes('--seed');
const start = single ? arg('seed', 1) : arg('start', 1);
const seeds = single ? 1 : arg('seeds', 1000);
const steps = arg('steps', 2000);
const maxFailures = arg('max-failures', 5);
const forceTrace = process.argv.includes('--trace');

const t0 = performance.now();
let failures = 0;
let done = 0;
let maxSettle = 0;
let lastReport = t0;
const totals = { messages: 0, acked: 0, reads: 0, crashes: 0, leaderGone: 0, retimed: 0, confChanges: 0, transfers: 0, snapshotsSent: 0, terms: 0 };
for (let seed = start; seed < start + seeds; seed++) {
  const r = runSimulation({ seed, steps, trace: forceTrace });
  for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r.stats[k];
  if (r.ok) maxSettle = Math.max(maxSettle, r.stats.settleTimeouts);
  if (!r.ok || forceTrace) {
    const traced = r.trace !== undefined ? r : runSimulation({ seed, steps, trace: true });
    if (!r.ok) {
      failures++;
      console.log(`\nFAIL seed ${seed}: ${r.error}`);
    }
    console.log((traced.trace ?? []).join('\n'));
    if (!r.ok) console.log(`FAIL seed ${seed} (replay: npm run sim -- --seed ${seed} --steps ${steps})`);
    if (failures >= maxFailures) break;
  }
  done++;
  const now = performance.now();
  if (now - lastReport > 10_000) {
    lastReport = now;
    console.log(`… ${done}/${seeds} seeds, ${(done / ((now - t0) / 1000)).toFixed(1)} seeds/s, ${failures} failures`);
  }
}
const secs = (performance.now() - t0) / 1000;
console.log(
  `seeds ${start}..${start + done - 1}: ${done} seeds x ${steps} steps in ${secs.toFixed(1)} s = ` +
    `${(done / secs).toFixed(1)} seeds/s; ${failures} failures`,
);
console.log(
  `covered: ${totals.messages} messages, ${totals.acked} acknowledged writes, ${totals.reads} linearizable reads, ` +
    `${totals.crashes} crashes (${totals.retimed} restarted with other timers; ${totals.leaderGone} waivers on a dead leader), ${totals.confChanges} membership changes, ${totals.transfers} transfers, ` +
    `${totals.snapshotsSent} snapshot chunks, ${totals.terms} terms (sum of final terms); ` +
    `slowest recovery after healing: ${maxSettle} election timeouts (bound 60)`,
);
process.exitCode = failures > 0 ? 1 : 0;
