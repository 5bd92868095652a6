// Keeps docs/openapi.yaml and docs/admin-api.md in step with the routes the app serves.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse } from '@readme/openapi-parser';
import test from 'ava';
import type Router from '@koa/router';
import { Registry } from 'prom-client';
import { MemoryPoolStore } from '@weldr/store/testing';
import { createAdminApp, silentLogger } from '../src/index.js';
import { fakeClusterInfo, fakeStats } from './harness.js';

const docs = new URL('../../../docs/', import.meta.url);

/** "GET /servers/{ip}/{port}" for every route the app registers (HEAD is implied by GET). */
function servedOperations(): string[] {
  const app = createAdminApp({
    pool: new MemoryPoolStore(),
    stats: { stats: fakeStats },
    cluster: { info: fakeClusterInfo, isActive: () => true },
    metrics: new Registry(),
    log: silentLogger,
  });
  // router.routes() returns a dispatch function that carries its router.
  const dispatch = app.middleware.find((m) => (m as { router?: unknown }).router !== undefined) as { router: Router } | undefined;
  const ops: string[] = [];
  for (const layer of dispatch?.router.stack ?? []) {
    const path = layer.path.toString().replace(/:(\w+)/g, '{$1}');
    for (const method of layer.methods) if (method !== 'HEAD') ops.push(`${method} ${path}`);
  }
  return ops.sort();
}

/** Operations listed under `paths:` in the OpenAPI file, as the validator's parser reads it. */
async function documentedOperations(): Promise<string[]> {
  const doc = (await parse(fileURLToPath(new URL('openapi.yaml', docs)))) as { paths?: Record<string, Record<string, unknown>> };
  const ops: string[] = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of ['get', 'put', 'post', 'patch', 'delete']) if (item[method] !== undefined) ops.push(`${method.toUpperCase()} ${path}`);
  }
  return ops.sort();
}

test('openapi.yaml documents exactly the operations the app serves', async (t) => {
  t.deepEqual(await documentedOperations(), servedOperations());
});

test('admin-api.md covers every operation and every error code', async (t) => {
  const md = await readFile(new URL('admin-api.md', docs), 'utf8');
  for (const op of servedOperations()) {
    const [method, path] = op.split(' ');
    t.true(md.includes(`| \`${method}\` | \`${path}\` |`), `${op} is in the endpoint table`);
  }
  const codes = await readFile(new URL('../packages/admin/src/errors.ts', docs), 'utf8');
  const union = /export type AdminErrorCode =([^;]+);/.exec(codes)?.[1] ?? '';
  const yaml = await readFile(new URL('openapi.yaml', docs), 'utf8');
  for (const [, code] of union.matchAll(/'([A-Z_]+)'/g)) {
    t.true(md.includes(`\`${code}\``), `${code} is in admin-api.md`);
    t.true(yaml.includes(`- ${code}\n`), `${code} is in the openapi ErrorBody enum`);
  }
});
