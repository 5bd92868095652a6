// Bounded randomized sweep run by `npm test`. Deeper sweeps: `npm run sim -- --seeds N --steps M`.
import test from 'ava';
import { runSimulation } from './sim/simulator.js';

const SEEDS = 600;
const STEPS = 3000;

function sweep(from: number, count: number): string[] {
  const failures: string[] = [];
  for (let seed = from; seed < from + count; seed++) {
    const r = runSimulation({ seed, steps: STEPS });
    if (!r.ok) {
      const traced = runSimulation({ seed, steps: STEPS, trace: true });
      failures.push(
        `seed ${seed}: ${r.error}\n${(traced.trace ?? []).slice(-60).join('\n')}\n` +
          `replay: npm run sim -- --seed ${seed} --steps ${STEPS}`,
      );
      if (failures.length >= 3) break;
    }
  }
  return failures;
}

for (let part = 0; part < 3; part++) {
  const from = 1 + part * (SEEDS / 3);
  test(`simulation: seeds ${from}..${from + SEEDS / 3 - 1} x ${STEPS} steps keep every invariant`, (t) => {
    const failures = sweep(from, SEEDS / 3);
    t.deepEqual(failures, [], failures.join('\n\n'));
  });
}

test('simulation: a seed replays exactly', (t) => {
  const a = runSimulation({ seed: 4242, steps: 2000, trace: true });
  const b = runSimulation({ seed: 4242, steps: 2000, trace: true });
  t.true(a.ok);
  t.deepEqual(a.stats, b.stats);
});
