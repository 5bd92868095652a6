// Tests run straight from TypeScript through tsx; `npm test` type-checks first with `tsc -b`.
import { cpus } from 'node:os';

// ava fails a file when no test has finished for `timeout`. A slow machine (CI: 2 cores,
// two files at once) gets longer, as the e2e bounds do (test/helpers/wait.ts TIME_SCALE).
const scale = Number(process.env.WELDR_TEST_TIME_SCALE) > 0 ? Number(process.env.WELDR_TEST_TIME_SCALE) : cpus().length <= 2 ? 2 : 1;

export default {
  files: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx', '--conditions=@weldr/source'],
  workerThreads: false, // on Node 20 the tsx hooks are not applied inside worker_threads
  timeout: `${60 * scale}s`,
};
