// The core must stay pure: time, randomness, storage and network are injected.
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Source text with comments and string contents blanked, so prose cannot trip the scan. */
function code(src: string): string {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/(^|[^:])\/\/.*$/gm, '$1')
    .replace(/`(?:\\.|[^`\\])*`/g, '``');
}

const FORBIDDEN: [RegExp, string][] = [
  [/\bsetTimeout\b|\bsetInterval\b|\bsetImmediate\b|\bqueueMicrotask\b/, 'timer'],
  [/\bDate\b/, 'Date'],
  [/\bMath\.random\b/, 'Math.random'],
  [/\bperformance\b/, 'performance clock'],
  [/\bprocess\./, 'process'],
  [/\brequire\s*\(/, 'require'],
  [/\bcrypto\b/, 'crypto'],
];

function importsOf(src: string): string[] {
  const out: string[] = [];
  for (const m of src.matchAll(/(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of src.matchAll(/import\s*\(\s*['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of src.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) out.push(m[1]!);
  return out;
}

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

test('src/ imports no Node built-ins and uses no timers, Date or Math.random', (t) => {
  const all = files(SRC);
  t.true(all.length > 10, `scanned ${all.length} files`);
  const problems: string[] = [];
  for (const f of all) {
    const src = readFileSync(f, 'utf8');
    for (const spec of importsOf(src)) {
      if (builtins.has(spec) || spec.startsWith('node:')) problems.push(`${f}: imports ${spec}`);
      else if (!spec.startsWith('.')) problems.push(`${f}: imports package ${spec} (raft has no dependencies)`);
    }
    const body = code(src);
    for (const [re, what] of FORBIDDEN) if (re.test(body)) problems.push(`${f}: uses ${what}`);
  }
  t.deepEqual(problems, []);
});

test('the scan itself notices a forbidden use', (t) => {
  t.true(FORBIDDEN.some(([re]) => re.test(code('const x = Date.now();'))));
  t.false(FORBIDDEN.some(([re]) => re.test(code('// Date.now() in a comment'))));
  t.true(builtins.has('node:fs') && builtins.has('fs'));
});
