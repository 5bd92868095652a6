import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { TIERING_FLAGS, tieringFlagsToSet } from '../src/runtime/v8-tiering.js';

test('every tiering flag is set when the operator gave none', (t) => {
  t.deepEqual(tieringFlagsToSet(['--import=tsx', '--interrupt-budget-for-feedback-allocation=10'], '--max-old-space-size=512'), [...TIERING_FLAGS]);
});

test("an operator's own setting of a flag, on node's command line or in NODE_OPTIONS, in either spelling, is left alone", (t) => {
  t.deepEqual(tieringFlagsToSet(['--interrupt-budget=100000'], ''), ['--minimum-invocations-after-ic-update=50']);
  t.deepEqual(tieringFlagsToSet(['--interrupt_budget', '100000'], ''), ['--minimum-invocations-after-ic-update=50']);
  t.deepEqual(tieringFlagsToSet([], ' --minimum_invocations_after_ic_update=7  '), ['--interrupt-budget=4096']);
  t.deepEqual(tieringFlagsToSet(['--minimum-invocations-after-ic-update=9'], '--interrupt-budget=1'), []);
});

function callsToOptimize(mode: 'tier' | 'default'): Promise<{ calls: number; set: string[] }> {
  const child = fork(fileURLToPath(new URL('./fixtures/tier-up-process.ts', import.meta.url)), [mode], {
    execArgv: [...process.execArgv, '--allow-natives-syntax', '--no-concurrent-recompilation'],
    stdio: 'inherit',
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as { calls: number; set: string[] }));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`fixture exited (${code}) without an answer`)));
  });
}

test('with the flags set at run time, a hot function is optimized after fewer calls', async (t) => {
  const [plain, tiered] = await Promise.all([callsToOptimize('default'), callsToOptimize('tier')]);
  t.deepEqual(plain.set, []);
  t.deepEqual(tiered.set, [...TIERING_FLAGS]);
  t.true(plain.calls < 100_000 && tiered.calls < 100_000, `optimized at all: ${plain.calls}, ${tiered.calls}`);
  t.true(tiered.calls * 1.5 < plain.calls, `calls until optimized: ${tiered.calls} with the flags, ${plain.calls} without`);
});
