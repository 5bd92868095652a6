import { readdirSync } from 'node:fs';
const rewritePaths = { 'test/': 'dist/test/' };
for (const p of readdirSync('packages')) rewritePaths[`packages/${p}/`] = `packages/${p}/dist/`;
export default {
  files: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
  typescript: { rewritePaths, compile: false },
  nodeArguments: ['--enable-source-maps'],
  timeout: '60s',
};
