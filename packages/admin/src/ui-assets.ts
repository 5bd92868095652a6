// The status page's files (packages/admin/ui): read once when the app is built and
// served from memory. They are plain HTML, CSS and an ES module — no build step, no
// external asset, so the page works on a host without Internet access.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface UiAsset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

const TYPES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'status.js': 'text/javascript; charset=utf-8',
  'status.css': 'text/css; charset=utf-8',
};

export const UI_ASSET_NAMES: readonly string[] = Object.keys(TYPES);

/**
 * The ui/ directory of this package: two levels up from src/ when run from the
 * sources, three from dist/src/ when built.
 */
export function uiDirectory(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'ui');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`the status page's files (packages/admin/ui) were not found near ${fileURLToPath(import.meta.url)}`);
}

export function loadUiAssets(dir: string = uiDirectory()): ReadonlyMap<string, UiAsset> {
  const assets = new Map<string, UiAsset>();
  for (const [name, type] of Object.entries(TYPES)) {
    const body = readFileSync(join(dir, name));
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}
