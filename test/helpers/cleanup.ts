import type { Teardown } from './process.js';

/**
 * A Teardown for fixtures shared by the tests of one file (started in test.before):
 * ava runs a hook's own t.teardown() as soon as the hook ends, so shared processes
 * register here and `test.after.always(() => cleanup.run())` stops them.
 */
export class Cleanup implements Teardown {
  private readonly steps: (() => void | Promise<void>)[] = [];

  teardown(fn: () => void | Promise<void>): void {
    this.steps.push(fn);
  }

  log(...values: unknown[]): void {
    process.stderr.write(`${values.map(String).join(' ')}\n`);
  }

  /** Runs the steps in reverse order of registration; every step runs even if one fails. */
  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }
}
