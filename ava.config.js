// Tests run straight from TypeScript through tsx; `npm test` type-checks first with `tsc -b`.
export default {
  files: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx', '--conditions=@weldr/source'],
  workerThreads: false, // on Node 20 the tsx hooks are not applied inside worker_threads
  timeout: '60s',
};
