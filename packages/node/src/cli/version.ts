import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The version in packages/node/package.json (found by walking up: src/ and dist/src/ differ in depth). */
export function weldrVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === '@weldr/node' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // no package.json at this level
    }
    dir = dirname(dir);
  }
  return 'unknown';
}
