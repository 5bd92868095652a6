import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (the folder whose package.json is named "weldr"), from src or dist alike. */
export const REPO_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'weldr') return dir;
    } catch {
      // not here
    }
    dir = dirname(dir);
  }
  throw new Error('cannot find the weldr repository root');
})();

/**
 * How to run `weldr`: the shipped CLI on the compiled dist (`npm test` builds it first),
 * or with WELDR_E2E_FROM_SOURCE=1 the TypeScript sources through tsx (no build needed,
 * slower to start).
 */
export const WELDR_COMMAND: readonly string[] =
  process.env.WELDR_E2E_FROM_SOURCE === '1'
    ? ['--import=tsx', '--conditions=@weldr/source', join(REPO_ROOT, 'packages', 'node', 'src', 'main.ts')]
    : [join(REPO_ROOT, 'packages', 'node', 'bin', 'weldr.js')];
