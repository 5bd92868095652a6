import { readdirSync } from 'node:fs';
import { cpus } from 'node:os';

// As in ava.config.js: a slow machine gets a longer inactivity timeout.
const scale = Number(process.env.WELDR_TEST_TIME_SCALE) > 0 ? Number(process.env.WELDR_TEST_TIME_SCALE) : cpus().length <= 2 ? 2 : 1;
const rewritePaths = { 'test/': 'dist/test/' };
for (const p of readdirSync('packages')) rewritePaths[`packages/${p}/`] = `packages/${p}/dist/`;
export default {
  files: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
  typescript: { rewritePaths, compile: false },
  nodeArguments: ['--enable-source-maps'],
  timeout: `${60 * scale}s`,
};
