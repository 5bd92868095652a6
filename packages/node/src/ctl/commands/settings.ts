// `weldr settings get|set`: the cluster-wide balancer and health-check settings.
import { ConfigError } from '../../config/config-error.js';
import type { CtlContext, NounSpec } from '../context.js';
import { json } from '../render.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Dotted `key = value` lines, in the order the API gives them. */
export function flatten(value: Json, prefix = ''): [string, string][] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    // Settings are groups of values; a value that is itself an object (expectedStatus)
    // reads better whole, as it is also written: {"min":200,"max":399}.
    if (prefix.includes('.')) return [[prefix, JSON.stringify(value)]];
    return Object.entries(value).flatMap(([k, v]) => flatten(v, prefix === '' ? k : `${prefix}.${k}`));
  }
  return [[prefix, typeof value === 'string' ? value : JSON.stringify(value)]];
}

/**
 * `KEY=VALUE` arguments into a nested patch: `healthCheck.path=/healthz` becomes
 * {"healthCheck":{"path":"/healthz"}}. A value that parses as JSON (numbers, true/false,
 * {"min":200,"max":299}) is taken as such, anything else as a string.
 */
export function settingsPatch(args: readonly string[]): Record<string, Json> {
  const patch: Record<string, Json> = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new ConfigError(`"${arg}" is not KEY=VALUE (e.g. balancer=least-connections or healthCheck.intervalMs=5000)`);
    const path = arg.slice(0, eq).split('.');
    const raw = arg.slice(eq + 1);
    let value: Json;
    try {
      value = JSON.parse(raw) as Json;
    } catch {
      value = raw;
    }
    if (path.some((p) => p === '') || path.length > 2) throw new ConfigError(`"${arg.slice(0, eq)}" is not a setting name (e.g. balancer, healthCheck.path, passiveHealth.enabled)`);
    let target = patch;
    for (const part of path.slice(0, -1)) {
      const next = target[part];
      if (next !== undefined && (next === null || typeof next !== 'object' || Array.isArray(next))) throw new ConfigError(`${part} is given both as a value and as a group`);
      target = (target[part] ??= {}) as Record<string, Json>;
    }
    const last = path[path.length - 1]!;
    if (Object.hasOwn(target, last)) throw new ConfigError(`${arg.slice(0, eq)} is given twice`);
    target[last] = value;
  }
  return patch;
}

export const SETTINGS: NounSpec = {
  summary: 'cluster-wide balancer and health-check settings',
  verbs: {
    get: {
      args: '[KEY]',
      summary: 'show the settings (or one of them, e.g. healthCheck.path)',
      flags: { stale: { type: 'boolean' } },
      flagHelp: "  --stale     answer from the member's local state (no leader needed; may lag)\n",
      minArgs: 0,
      maxArgs: 1,
      async run(ctx: CtlContext) {
        const answer = await ctx.client.get<Json>(`/settings${ctx.values['stale'] === true ? '?stale=true' : ''}`);
        const key = ctx.positionals[0];
        let value: Json | undefined = answer.body;
        if (key !== undefined) {
          for (const part of key.split('.')) value = value !== null && typeof value === 'object' && !Array.isArray(value) ? value[part] : undefined;
          if (value === undefined) throw new ConfigError(`no setting "${key}"; 'weldr settings get' lists them`);
        }
        if (ctx.common.json) return ctx.io.out(json(value));
        if (key !== undefined && (value === null || typeof value !== 'object')) return ctx.io.out(`${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
        const lines = flatten(value, key ?? '');
        const width = Math.max(...lines.map(([k]) => k.length));
        ctx.io.out(lines.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join(''));
      },
    },
    set: {
      args: 'KEY=VALUE…',
      summary: 'change settings (one atomic change; the others keep their values)',
      details: `Keys: balancer, healthCheck.{enabled,method,path,intervalMs,timeoutMs,expectedStatus,
healthyThreshold,unhealthyThreshold,jitterMs}, passiveHealth.{enabled,consecutiveFailures,
baseEjectionMs,maxEjectionMs} (docs/admin-api.md#settings has the bounds).

Examples:
  weldr settings set balancer=least-connections
  weldr settings set healthCheck.path=/healthz healthCheck.intervalMs=5000 healthCheck.timeoutMs=2000
  weldr settings set 'healthCheck.expectedStatus={"min":200,"max":299}'
`,
      minArgs: 1,
      maxArgs: 50,
      async run(ctx: CtlContext) {
        const answer = await ctx.client.call<Json>('PATCH', '/settings', { body: settingsPatch(ctx.positionals) });
        if (ctx.common.json) return ctx.io.out(json(answer.body));
        const lines = flatten(answer.body);
        const width = Math.max(...lines.map(([k]) => k.length));
        ctx.io.out(lines.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join(''));
        ctx.io.out(`(applied at index ${String(answer.headers['x-weldr-index'])})\n`);
      },
    },
  },
};
