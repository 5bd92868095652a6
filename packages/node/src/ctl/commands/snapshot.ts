// `weldr snapshot save FILE`: a consistent backup of the replicated state (pool, settings,
// idempotency table, members) from a running cluster, as etcdctl snapshot save does.
// `weldr start --restore FILE` seeds a new cluster from it.
import { CtlError, EXIT_SERVER_ERROR, EXIT_USAGE_ERROR } from '../errors.js';
import type { NounSpec } from '../context.js';
import { json } from '../render.js';

interface SnapshotDoc {
  readonly format?: unknown;
  readonly index?: unknown;
  readonly takenBy?: unknown;
  readonly clusterId?: unknown;
}

export const SNAPSHOT: NounSpec = {
  summary: 'backups of the replicated state',
  verbs: {
    save: {
      args: 'FILE',
      summary: 'write a consistent backup of the replicated state to FILE',
      details: "The backup reflects every write acknowledged before the command (a linearizable read).\nRestore it into a new cluster with 'weldr start --restore FILE'.\n",
      flags: { stale: { type: 'boolean' } },
      flagHelp: "  --stale     back up the member's local state (no leader needed; may lag, still consistent)\n",
      minArgs: 1,
      maxArgs: 1,
      async run(ctx) {
        const file = ctx.positionals[0]!;
        const answer = await ctx.client.get<SnapshotDoc>(`/cluster/snapshot${ctx.values['stale'] === true ? '?stale=true' : ''}`);
        const doc = answer.body;
        if (doc === null || typeof doc !== 'object' || doc.format !== 'weldr-snapshot') {
          throw new CtlError(EXIT_SERVER_ERROR, `${answer.endpoint} did not answer with a weldr snapshot`, 'is every member running the same weldr version?');
        }
        try {
          // The bytes as the member sent them: the file is exactly what it served.
          ctx.io.writeFile(file, answer.text);
        } catch (err) {
          throw new CtlError(EXIT_USAGE_ERROR, `cannot write ${file}: ${(err as Error).message}`);
        }
        const summary = { file, index: doc.index, takenBy: doc.takenBy, clusterId: doc.clusterId, bytes: Buffer.byteLength(answer.text) };
        ctx.io.out(ctx.common.json ? json(summary) : `saved the state at index ${String(doc.index)} (taken by ${String(doc.takenBy)}) to ${file}, ${summary.bytes} bytes\n`);
      },
    },
  },
};
