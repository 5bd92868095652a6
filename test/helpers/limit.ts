// At most N of a file's tests run at once. ava starts every non-serial test of a file
// together; when each starts weldr nodes and origins, a dozen tests are dozens of
// processes starting on one machine at the same moment, and on a loaded 2-core CI host
// their start-up alone outlasts a bound. A limit of 2 keeps some overlap (one test's
// waits hide behind another's work) without the stampede.
import type { ExecutionContext, TestFn } from 'ava';

export type LimitedTest<C> = (title: string, implementation: (t: ExecutionContext<C>) => Promise<void> | void) => void;

export function limitedTest<C>(test: TestFn<C>, concurrency: number): LimitedTest<C> {
  let running = 0;
  const waiting: (() => void)[] = [];
  const acquire = async (): Promise<void> => {
    if (running < concurrency) {
      running++;
      return;
    }
    // The releasing test hands its slot over directly (running stays the same).
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next !== undefined) next();
    else running--;
  };
  return (title, implementation) =>
    test(title, async (t) => {
      await acquire();
      try {
        await implementation(t);
      } finally {
        release();
      }
    });
}
