import { setFlagsFromString } from 'node:v8';

/**
 * V8 runs a function in its interpreter (and baseline code) until the function has used up
 * an "interrupt budget" of bytecode some number of times, then compiles it with its
 * optimizing compiler (TurboFan) on a background thread. The defaults suit a browser tab:
 * code that runs a few hundred times is not worth optimizing. A weldr node is the other
 * case: it runs the same request, Raft and apply paths for days, and a write costs every
 * member one pass through hundreds of functions — at a few hundred writes a second most
 * of them stay unoptimized for seconds after start, and each optimization then runs on
 * one of the host's cores beside the control plane.
 *
 * Measured on 3 members on loopback (2 cores, 1 client writing in sequence to the leader,
 * `--workers 0`, 1 s after the cluster's start, 2026-12-07): with the defaults 214
 * functions were still being optimized during the 4 s measured, V8's compiler threads
 * took 17 % of the leader's CPU, and a write cost the three members 3.4–3.6 ms of CPU at a
 * p50 of 2.1–2.3 ms; after a 15 s warm-up the same cluster measured 1.4 ms. With the two
 * settings below, alternating runs measured 1.58–1.66 ms p50 and 2.4–2.6 ms of CPU per
 * write 1 s after start, and the same as the defaults once warm (1.34–1.44 ms, 1.9–2.0 ms
 * of CPU); 32 clients on the leader +10 % (2,686 / 2,887 against 2,482 / 2,546 writes/s);
 * the pinned proxy bench (small body, 50 connections) +3 % (29.5–29.7k against
 * 27.7–29.0k req/s).
 *
 * Both are read when V8 next resets a function's budget, so setting them at start takes
 * effect for everything compiled after. An operator's own setting of either (node's
 * command line or NODE_OPTIONS) is left alone.
 */
export const TIERING_FLAGS: readonly string[] = ['--interrupt-budget=4096', '--minimum-invocations-after-ic-update=50'];

/** The TIERING_FLAGS the operator did not set on node's command line or in NODE_OPTIONS. */
export function tieringFlagsToSet(execArgv: readonly string[], nodeOptions: string): string[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].map((a) => a.replaceAll('_', '-'));
  return TIERING_FLAGS.filter((flag) => {
    const name = flag.slice(0, flag.indexOf('='));
    // V8 takes --name=value, --name value, and underscores for dashes.
    return !given.some((a) => a === name || a.startsWith(`${name}=`));
  });
}

let applied = false;

/** Sets, once per process, the TIERING_FLAGS the operator did not set; returns those it set. */
export function tierUpSooner(): string[] {
  if (applied) return [];
  applied = true;
  const set = tieringFlagsToSet(process.execArgv, process.env.NODE_OPTIONS ?? '');
  for (const flag of set) setFlagsFromString(flag);
  return set;
}
