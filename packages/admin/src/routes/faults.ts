// Fault injection for failover drills (`weldr drill`, docs/operations.md#failover-drills).
// Off unless the node was started with --fault-injection on; writes need the admin token
// when one is set; every request is logged at warn level. These routes act on the node
// that receives them and are never relayed to the leader (runtime/admin-forward.ts).
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { readJsonBody } from '../body.js';
import { AdminError } from '../errors.js';
import type { AdminContext, AdminState, ResolvedDeps } from '../context.js';
import type { FaultRefusal } from '../deps.js';

/** The longest isolation accepted (the cluster package enforces the same bound). */
const MAX_ISOLATION_MS = 600_000;

export function faultRoutes(router: Router<AdminState>, deps: ResolvedDeps, auth: Middleware<AdminState>): void {
  router.get('/faults', (ctx) => {
    ctx.body = deps.faults?.status() ?? { enabled: false, isolated: false };
  });

  router.post('/faults/step-down', auth, async (ctx) => {
    const faults = enabled(deps, ctx, 'step-down');
    await emptyBody(ctx, deps);
    const result = await faults.stepDown();
    if (!result.ok) throw refusal(result);
    ctx.body = { steppedDown: true, term: result.term };
  });

  router.post('/faults/isolate', auth, async (ctx) => {
    const faults = enabled(deps, ctx, 'isolate');
    const body = await readJsonBody(ctx.req, deps.bodyLimitBytes);
    for (const key of Object.keys(body)) {
      if (key !== 'durationMs') throw new AdminError(400, 'INVALID_COMMAND', `unknown field "${key}" (the body is {"durationMs": N})`, { field: key });
    }
    const ms = body['durationMs'];
    if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 1 || ms > MAX_ISOLATION_MS) {
      throw new AdminError(400, 'INVALID_COMMAND', `durationMs must be a whole number of milliseconds in [1, ${MAX_ISOLATION_MS}]`, { field: 'durationMs' });
    }
    const result = faults.isolate(ms);
    if (!result.ok) throw refusal(result);
    ctx.body = faults.status();
  });

  router.post('/faults/heal', auth, async (ctx) => {
    const faults = enabled(deps, ctx, 'heal');
    await emptyBody(ctx, deps);
    const result = faults.heal();
    if (!result.ok) throw refusal(result);
    ctx.body = { healed: result.healed };
  });
}

function enabled(deps: ResolvedDeps, ctx: AdminContext, what: string): NonNullable<ResolvedDeps['faults']> {
  const faults = deps.faults;
  const on = faults?.status().enabled === true;
  deps.log.warn({ event: 'fault_request', fault: what, enabled: on, requestId: ctx.state.requestId, remote: ctx.req.socket.remoteAddress }, `fault injection requested: ${what}${on ? '' : ' (refused: off on this node)'}`);
  if (faults === undefined || !on) {
    throw new AdminError(403, 'FAULT_INJECTION_DISABLED', 'fault injection is off on this node: start every member with --fault-injection on to run step-down and isolate drills');
  }
  return faults;
}

/** These routes take no body; an unexpected one is refused rather than ignored. */
async function emptyBody(ctx: AdminContext, deps: ResolvedDeps): Promise<void> {
  const length = ctx.req.headers['content-length'];
  if (ctx.req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return;
  const body = await readJsonBody(ctx.req, deps.bodyLimitBytes);
  const key = Object.keys(body)[0];
  if (key !== undefined) throw new AdminError(400, 'INVALID_COMMAND', `unknown field "${key}" (this endpoint takes no body)`, { field: key });
}

function refusal(r: FaultRefusal): AdminError {
  if (r.reason === 'disabled') return new AdminError(403, 'FAULT_INJECTION_DISABLED', r.message);
  return new AdminError(409, 'CONFLICT', r.message, r.leaderId === undefined || r.leaderId === null ? {} : { leaderId: r.leaderId });
}
