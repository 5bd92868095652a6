// Keeps docs/openapi.yaml and docs/admin-api.md in step with the routes the app serves.
import { readFile } from 'node:fs/promises';
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

/** Operations listed under `paths:` in the OpenAPI file (two-space path keys, four-space methods). */
function documentedOperations(yaml: string): string[] {
  const ops: string[] = [];
  let path: string | undefined;
  for (const line of yaml.split('\n')) {
    const pathMatch = /^ {2}(\/\S*):\s*$/.exec(line);
    if (pathMatch) path = pathMatch[1];
    else if (/^\S/.test(line)) path = undefined;
    const methodMatch = /^ {4}(get|post|put|patch|delete):\s*$/.exec(line);
    if (path !== undefined && methodMatch) ops.push(`${methodMatch[1]?.toUpperCase()} ${path}`);
  }
  return ops.sort();
}

test('openapi.yaml documents exactly the operations the app serves', async (t) => {
  const yaml = await readFile(new URL('openapi.yaml', docs), 'utf8');
  t.deepEqual(documentedOperations(yaml), servedOperations());
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
