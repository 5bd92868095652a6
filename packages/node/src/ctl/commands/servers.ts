// `weldr servers list|add|remove|drain|export|import`: the replicated origin pool.
// Every change goes through POST /servers/batch, so a command naming several servers is
// applied all or nothing, in one log entry.
import { BOUNDS, parseIp, type PoolSettings, type ServerRecord } from '@weldr/store';
import { ConfigError } from '../../config/config-error.js';
import { formatAddress, parseServerAddress, type ServerAddress } from '../address.js';
import type { Answer } from '../client.js';
import { stringFlag } from '../common-options.js';
import type { CtlContext, NounSpec } from '../context.js';
import { CtlError, EXIT_SERVER_ERROR, EXIT_USAGE_ERROR } from '../errors.js';
import { parsePoolFile, POOL_FORMAT, type PoolFile, type PoolFileServer } from '../pool-file.js';
import { cell, json, table } from '../render.js';

const MAX_BATCH = BOUNDS.batchCommands.max;

type BatchCommand = Record<string, unknown> & { type: string };
interface BatchResult {
  readonly status: string;
  readonly server?: ServerRecord;
  readonly settings?: PoolSettings;
}
interface BatchAnswer {
  readonly index: number;
  readonly results: readonly BatchResult[];
}

/** POST /servers/batch; a refused sub-command is reported under the name the user typed. */
export async function sendBatch(ctx: CtlContext, commands: readonly BatchCommand[], names: readonly string[]): Promise<BatchAnswer> {
  if (commands.length > MAX_BATCH) {
    throw new ConfigError(`that is ${commands.length} changes; one atomic batch holds at most ${MAX_BATCH}: split the input`);
  }
  let answer: Answer<{ results: BatchResult[] }>;
  try {
    answer = await ctx.client.call<{ results: BatchResult[] }>('POST', '/servers/batch', { body: { commands } });
  } catch (err) {
    throw renameBatchError(err, names);
  }
  return { index: Number(answer.headers['x-weldr-index'] ?? NaN), results: answer.body.results };
}

function renameBatchError(err: unknown, names: readonly string[]): unknown {
  if (!(err instanceof CtlError) || err.body?.field === undefined) return err;
  const m = /^commands\[(\d+)\]\.?(.*)$/.exec(err.body.field);
  const name = m === null ? undefined : names[Number(m[1])];
  if (m === null || name === undefined) return err;
  // "404 NOT_FOUND: commands[1]: server 10.0.0.9:80 is not in the pool" → name the server once.
  const message = err.message.replace(/commands\[\d+\][.:]\s?/, (_) => '').replace(/^(\d{3} [A-Z_]+: )(.*)$/, (_, head: string, rest: string) => (rest.includes(name) ? `${head}${rest}` : `${head}${name}: ${rest}`));
  const hint = m[2] === '' ? undefined : `check ${m[2]} of ${name}`;
  return new CtlError(err.exitCode, message, hint, err.body, err.status);
}

function addresses(ctx: CtlContext): ServerAddress[] {
  return ctx.positionals.map((p) => parseServerAddress(p));
}

function weightFlag(ctx: CtlContext): number | undefined {
  const raw = stringFlag(ctx.values, 'weight');
  if (raw === undefined) return undefined;
  const n = Number(raw);
  const { min, max } = BOUNDS.weight;
  if (!/^[0-9]+$/.test(raw) || n < min || n > max) throw new ConfigError(`--weight must be an integer ${min}-${max}, got "${raw}"`);
  return n;
}

function printResults(ctx: CtlContext, answer: BatchAnswer, verb: (r: BatchResult) => string): void {
  if (ctx.common.json) {
    ctx.io.out(json(answer));
    return;
  }
  for (const r of answer.results) if (r.server !== undefined) ctx.io.out(`${r.server.id}: ${verb(r)}\n`);
  ctx.io.out(`(one atomic change at index ${answer.index})\n`);
}

function overrides(s: ServerRecord): string {
  const entries = Object.entries(s.healthCheck);
  if (entries.length === 0) return 'defaults';
  return entries.map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ');
}

/** The pool and the settings as one consistent state: both reads reflect the same index. */
async function readPool(ctx: CtlContext, stale: boolean): Promise<{ index: number; servers: ServerRecord[]; settings: PoolSettings }> {
  const query = stale ? '?stale=true' : '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const servers = await ctx.client.get<ServerRecord[]>(`/servers${query}`);
    // Same member, so both reads come from one replica's applied state.
    const settings = await ctx.client.get<PoolSettings>(`/settings${query}`, { only: servers.endpoint });
    const a = Number(servers.headers['x-weldr-index']);
    const b = Number(settings.headers['x-weldr-index']);
    if (a === b) return { index: a, servers: servers.body, settings: settings.body };
    // A write landed between the two reads: read again rather than mix two states.
  }
  throw new CtlError(EXIT_SERVER_ERROR, 'the pool kept changing between reading the servers and the settings', 'retry when the writes have settled');
}

export const SERVERS: NounSpec = {
  summary: 'the replicated origin pool',
  verbs: {
    list: {
      args: '',
      summary: 'list the servers in the pool',
      flags: { stale: { type: 'boolean' } },
      flagHelp: "  --stale     answer from the member's local state (no leader needed; may lag)\n",
      minArgs: 0,
      maxArgs: 0,
      async run(ctx) {
        const answer = await ctx.client.get<ServerRecord[]>(`/servers${ctx.values['stale'] === true ? '?stale=true' : ''}`);
        if (ctx.common.json) return ctx.io.out(json(answer.body));
        if (answer.body.length === 0) {
          ctx.io.out("the pool is empty: add origins with 'weldr servers add IP:PORT'\n");
          return;
        }
        ctx.io.out(table(['server', 'weight', 'draining', 'health check'], answer.body.map((s) => [s.id, String(s.weight), cell(s.draining), overrides(s)])));
      },
    },
    add: {
      args: 'IP:PORT…',
      summary: 'add servers (or update the weight of ones already there)',
      details: 'Several servers are added in one atomic change. Adding a server that is already in the pool\nis not an error: its weight is set when --weight is given.\n\nExamples:\n  weldr servers add 10.0.0.1:80 10.0.0.2:80\n  weldr servers add [::1]:8081 --weight 3\n',
      flags: { weight: { type: 'string' } },
      flagHelp: `  --weight N  relative weight for weighted balancers, ${BOUNDS.weight.min}-${BOUNDS.weight.max} (default 1)\n`,
      minArgs: 1,
      maxArgs: MAX_BATCH,
      async run(ctx) {
        const weight = weightFlag(ctx);
        const list = addresses(ctx);
        const answer = await sendBatch(ctx, list.map((a) => ({ type: 'AddServer', ...a, ...(weight === undefined ? {} : { weight }) })), ctx.positionals);
        printResults(ctx, answer, (r) => (r.status === 'created' ? 'added' : r.status === 'updated' ? `already in the pool; weight set to ${r.server?.weight}` : 'already in the pool'));
      },
    },
    remove: {
      args: 'IP:PORT…',
      summary: 'remove servers (requests in flight to them finish)',
      minArgs: 1,
      maxArgs: MAX_BATCH,
      async run(ctx) {
        const answer = await sendBatch(ctx, addresses(ctx).map((a) => ({ type: 'RemoveServer', ...a })), ctx.positionals);
        printResults(ctx, answer, () => 'removed');
      },
    },
    drain: {
      args: 'IP:PORT…',
      summary: 'stop sending new requests to servers (they stay in the pool); --undo resumes',
      flags: { undo: { type: 'boolean' } },
      flagHelp: '  --undo      send requests to the servers again\n',
      minArgs: 1,
      maxArgs: MAX_BATCH,
      async run(ctx) {
        const draining = ctx.values['undo'] !== true;
        const answer = await sendBatch(ctx, addresses(ctx).map((a) => ({ type: 'UpdateServer', ...a, draining })), ctx.positionals);
        printResults(ctx, answer, (r) => (r.status === 'unchanged' ? (draining ? 'was already draining' : 'was not draining') : draining ? 'draining' : 'serving again'));
      },
    },
    export: {
      args: '[FILE]',
      summary: 'write the pool and the settings as JSON (to FILE, or stdout)',
      details: `The file reproduces the pool and the settings exactly when given to 'weldr servers import'
(on this cluster or another one). Format: {"format":"${POOL_FORMAT}","index":N,
"settings":{…},"servers":[{"ip","port","weight","healthCheck","draining"},…]}.
`,
      flags: { stale: { type: 'boolean' } },
      flagHelp: "  --stale     export the member's local state (no leader needed; may lag)\n",
      minArgs: 0,
      maxArgs: 1,
      async run(ctx) {
        const pool = await readPool(ctx, ctx.values['stale'] === true);
        const doc: PoolFile = {
          format: POOL_FORMAT,
          index: pool.index,
          settings: pool.settings,
          servers: pool.servers.map((s) => ({ ip: s.ip, port: s.port, weight: s.weight, healthCheck: s.healthCheck, draining: s.draining })),
        };
        const file = ctx.positionals[0];
        if (file === undefined || file === '-') return ctx.io.out(json(doc));
        try {
          ctx.io.writeFile(file, json(doc));
        } catch (err) {
          throw new CtlError(EXIT_USAGE_ERROR, `cannot write ${file}: ${(err as Error).message}`);
        }
        ctx.io.out(ctx.common.json ? json({ file, index: pool.index, servers: doc.servers.length }) : `wrote ${doc.servers.length} servers and the settings (index ${pool.index}) to ${file}\n`);
      },
    },
    import: {
      args: 'FILE',
      summary: 'apply a pool file as one atomic change (a weldr export, or IP:PORT lines)',
      details: `FILE ('-' for stdin) is either a 'weldr servers export' file — its settings and servers are
applied as they are — or a plain list, one server per line: "10.0.0.1:80", "10.0.0.1:80
weight=5", an HAProxy "server NAME ADDR [weight N] [disabled] …" line or an nginx
"server ADDR [weight=N] [down] …;" line (disabled/down become draining; other parameters
are ignored with a warning; host names are refused). Servers already in the pool and not
in the file stay, unless --replace is given. Everything is one batch: all or nothing.
`,
      flags: { replace: { type: 'boolean' }, 'dry-run': { type: 'boolean' } },
      flagHelp: '  --replace   also remove the servers that are not in the file\n  --dry-run   print the batch that would be sent, change nothing\n',
      minArgs: 1,
      maxArgs: 1,
      async run(ctx) {
        const file = ctx.positionals[0]!;
        let text: string;
        try {
          text = ctx.io.readFile(file === '-' ? '/dev/stdin' : file);
        } catch (err) {
          throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
        }
        const parsed = parsePoolFile(text, file === '-' ? 'stdin' : file);
        for (const line of parsed.ignored) ctx.io.err(`weldr servers import: ${line}\n`);
        const current = await readPool(ctx, false);
        const { commands, names } = importCommands(parsed.servers, parsed.settings, current.servers, ctx.values['replace'] === true);
        if (ctx.values['dry-run'] === true) {
          ctx.io.out(json({ commands }));
          return;
        }
        const answer = await sendBatch(ctx, commands, names);
        if (ctx.common.json) return ctx.io.out(json(answer));
        const count = (status: string): number => answer.results.filter((r, i) => r.status === status && commands[i]?.type !== 'UpdateServer').length;
        const settings = parsed.settings === undefined ? '' : '; settings applied';
        ctx.io.out(`imported ${parsed.servers.length} servers from ${file} in one atomic change at index ${answer.index}: ${count('created')} added, ${count('updated')} updated, ${count('unchanged')} unchanged, ${count('removed')} removed${settings}\n`);
      },
    },
  },
};

/**
 * The batch that makes the pool hold exactly the file's servers (and settings): removals
 * first (--replace), then the settings, so new servers' overrides are checked against
 * the new defaults; then an upsert per server, and its draining state where it differs.
 */
export function importCommands(
  servers: readonly PoolFileServer[],
  settings: PoolSettings | undefined,
  current: readonly ServerRecord[],
  replace: boolean,
): { commands: BatchCommand[]; names: string[] } {
  const commands: BatchCommand[] = [];
  const names: string[] = [];
  const push = (command: BatchCommand, name: string): void => {
    commands.push(command);
    names.push(name);
  };
  // Canonical, so "0::1" in the file and "::1" in the pool are one server.
  const key = (ip: string, port: number | string): string => {
    const parsed = parseIp(ip);
    return `${parsed.ok ? parsed.value.ip : ip}|${Number(port)}`;
  };
  const wanted = new Set(servers.map((s) => key(s.ip, s.port)));
  if (replace) {
    for (const s of current) if (!wanted.has(key(s.ip, s.port))) push({ type: 'RemoveServer', ip: s.ip, port: s.port }, s.id);
  }
  if (settings !== undefined) push({ type: 'UpdateSettings', ...settings }, 'settings');
  const existing = new Map(current.map((s) => [key(s.ip, s.port), s]));
  for (const s of servers) {
    const name = formatAddress({ ip: s.ip, port: Number(s.port) });
    push({ type: 'AddServer', ip: s.ip, port: s.port, ...(s.weight === undefined ? {} : { weight: s.weight }), ...(s.healthCheck === undefined ? {} : { healthCheck: s.healthCheck }) }, name);
    const draining = s.draining ?? false;
    if (draining !== (existing.get(key(s.ip, s.port))?.draining ?? false)) push({ type: 'UpdateServer', ip: s.ip, port: s.port, draining }, name);
  }
  return { commands, names };
}
