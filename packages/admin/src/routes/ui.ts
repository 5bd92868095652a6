// The status page at / and /ui/, and its two assets. Open without the admin token even
// with --admin-auth-reads: the files hold no data; the page asks the operator for the
// token and sends it with each API read (never in a URL).
import type Router from '@koa/router';
import { AdminError } from '../errors.js';
import type { AdminContext, AdminState } from '../context.js';
import { loadUiAssets, UI_ASSET_NAMES, type UiAsset } from '../ui-assets.js';

/** Paths of the page and its assets: no token needed to fetch them. */
export const UI_PATHS: readonly string[] = ['/', '/ui', '/ui/', ...UI_ASSET_NAMES.map((n) => `/ui/${n}`)];

// Everything the page loads comes from this origin; it is never framed (clickjacking
// of the token form) and sends no Referer.
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

export function uiRoutes(router: Router<AdminState>): void {
  const assets = loadUiAssets();
  const page = (ctx: AdminContext): void => send(ctx, assets.get('index.html')!);
  router.get('/', page);
  router.get('/ui', page); // and /ui/: a trailing slash is ignored
  router.get('/ui/:asset', (ctx) => {
    const asset = assets.get(ctx.params['asset'] ?? '');
    if (asset === undefined || ctx.params['asset'] === 'index.html') throw new AdminError(404, 'NOT_FOUND', `no status page asset ${ctx.params['asset']}`);
    send(ctx, asset);
  });
}

function send(ctx: AdminContext, asset: UiAsset): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) ctx.set(name, value);
  // Revalidated on every load (a node upgrade changes the files), answered 304 when unchanged.
  ctx.set('Cache-Control', 'no-cache');
  ctx.set('ETag', asset.etag);
  ctx.status = 200;
  if (ctx.fresh) {
    ctx.status = 304;
    return;
  }
  ctx.type = asset.type;
  ctx.body = asset.body;
}
