// POST /servers/batch: several pool commands applied atomically — one Raft log entry
// holding the state machine's `Batch` command, so either every sub-command takes effect
// or none does (an import, a swap of origins, a settings change together with the
// servers that need it). Everything is validated before anything is proposed; the state
// machine still rejects, deterministically on every node, a sub-command that is invalid
// against the current state (removing a server that is not there), and then nothing of
// the batch is applied.
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { CommandOutcome } from '@weldr/store';
import { readJsonBody } from '../body.js';
import { AdminError } from '../errors.js';
import type { AdminState, ResolvedDeps } from '../context.js';
import { commit } from '../pool-access.js';
import { refuseOwnListener } from './own-listener.js';

/** Sub-commands a batch may carry (a Batch inside a Batch is refused by the validator too). */
const BATCHABLE = new Set(['AddServer', 'RemoveServer', 'UpdateServer', 'UpdateSettings']);

export function batchRoutes(router: Router<AdminState>, deps: ResolvedDeps, auth: Middleware<AdminState>): void {
  router.post('/servers/batch', auth, async (ctx) => {
    const body = await readJsonBody(ctx.req, deps.batchBodyLimitBytes);
    for (const key of Object.keys(body)) {
      if (key !== 'commands') throw new AdminError(400, 'INVALID_COMMAND', `${key} is not a known field here (the body is {"commands":[…]})`, { field: key });
    }
    const commands = body['commands'];
    if (!Array.isArray(commands)) throw new AdminError(400, 'INVALID_COMMAND', 'commands must be an array of commands, e.g. [{"type":"AddServer","ip":"10.0.0.1","port":80}]', { field: 'commands' });
    for (const [i, sub] of commands.entries()) {
      const type = sub !== null && typeof sub === 'object' ? (sub as Record<string, unknown>)['type'] : undefined;
      // The validator would say "Batch cannot be nested"; name the allowed types instead.
      if (typeof type === 'string' && !BATCHABLE.has(type)) {
        throw new AdminError(400, 'INVALID_COMMAND', `commands[${i}].type must be one of ${[...BATCHABLE].join(', ')}`, { field: `commands[${i}].type` });
      }
      if (type === 'AddServer') refuseOwnListener(deps, sub as Record<string, unknown>, `commands[${i}].`);
    }
    const { outcome } = await commit(ctx, deps, { type: 'Batch', commands });
    if (outcome.status !== 'batch') throw new AdminError(500, 'INTERNAL', `Batch answered ${outcome.status}`);
    ctx.body = { results: outcome.results.map(resultBody) };
  });
}

/** One sub-command's outcome as the API shows it: the same record a single write answers with. */
function resultBody(outcome: CommandOutcome): Record<string, unknown> {
  // A failed sub-command fails the whole batch (state-machine.ts), so none is here.
  if (!outcome.ok) throw new AdminError(500, 'INTERNAL', `a successful batch carried a failed result: ${outcome.message}`);
  switch (outcome.status) {
    case 'settings':
      return { status: outcome.status, settings: outcome.settings };
    case 'batch':
      return { status: outcome.status };
    case 'member':
    case 'cluster':
      // Membership commands are never part of a Batch (validate.ts refuses them).
      throw new AdminError(500, 'INTERNAL', `a batch carried a ${outcome.status} result`);
    default:
      return { status: outcome.status, ...(outcome.server === undefined ? {} : { server: outcome.server }) };
  }
}
