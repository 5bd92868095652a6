// /cluster/members and /cluster/snapshot: the cluster's membership as replicated state
// (add a learner, promote it, remove a member — one change at a time, through the
// leader like every write) and consistent backups of the replicated state.
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { validateMemberChange, validateMemberId, type AddMemberCommand } from '@weldr/store';
import { readJsonBody } from '../body.js';
import { AdminError, fromStoreError } from '../errors.js';
import type { AdminRouteContext, AdminState, ResolvedDeps } from '../context.js';
import type { MemberListView, MemberWriteOptions, MemberWriteResult, MembershipAdmin } from '../deps.js';
import { booleanQuery, idempotencyKey, INDEX_HEADER, requestOrigin, staleAllowed, withDeadline } from '../pool-access.js';
import { commandFromBody } from './command-body.js';

export function memberRoutes(router: Router<AdminState>, deps: ResolvedDeps, auth: Middleware<AdminState>): void {
  router.get('/cluster/members', async (ctx) => {
    const list = deps.members === undefined ? singleNodeList(deps) : await withDeadline(deps.members.list({ stale: staleAllowed(ctx), timeoutMs: deps.requestTimeoutMs }), deps.requestTimeoutMs, 'read');
    ctx.set(INDEX_HEADER, String(list.index));
    ctx.body = list;
  });

  router.post('/cluster/members', auth, async (ctx) => {
    const body = await readJsonBody(ctx.req, deps.bodyLimitBytes);
    let command: AddMemberCommand;
    try {
      command = validateMemberChange(commandFromBody('AddMember', body)) as AddMemberCommand;
    } catch (err) {
      throw fromStoreError(err, 'write');
    }
    const result = await write(ctx, deps, (members, options) => members.add(command, options));
    ctx.status = result.change === 'added' ? 201 : 200;
    if (result.change === 'added') ctx.set('Location', `/cluster/members/${result.member.id}`);
    ctx.body = { ...result.member, clusterId: result.clusterId };
  });

  router.post('/cluster/members/:id/promote', auth, async (ctx) => {
    const id = memberId(ctx);
    const result = await write(ctx, deps, (members, options) => members.promote(id, options));
    ctx.body = { ...result.member, clusterId: result.clusterId };
  });

  router.delete('/cluster/members/:id', auth, async (ctx) => {
    const id = memberId(ctx);
    await write(ctx, deps, (members, options) => members.remove(id, options));
    ctx.status = 204;
  });

  router.get('/cluster/snapshot', async (ctx) => {
    const members = deps.members;
    if (members === undefined) throw new AdminError(409, 'CONFLICT', 'this node keeps no replicated state to back up');
    const { index, document } = await withDeadline(members.snapshot({ stale: staleAllowed(ctx), timeoutMs: deps.requestTimeoutMs }), deps.requestTimeoutMs, 'read');
    ctx.set(INDEX_HEADER, String(index));
    ctx.set('Content-Disposition', `attachment; filename="weldr-snapshot-${index}.json"`);
    ctx.body = document;
  });
}

/** Runs a membership write with the request's Idempotency-Key, ?force and deadline. */
async function write(
  ctx: AdminRouteContext,
  deps: ResolvedDeps,
  run: (members: MembershipAdmin, options: MemberWriteOptions) => Promise<MemberWriteResult>,
): Promise<MemberWriteResult> {
  const requestId = idempotencyKey(ctx);
  const force = booleanQuery(ctx, 'force');
  const members = deps.members;
  if (members === undefined) {
    throw new AdminError(409, 'CONFLICT', 'a single node has no membership to change: start members with --peers to form a new cluster, or --join an existing one');
  }
  const options: MemberWriteOptions = { force, timeoutMs: deps.requestTimeoutMs, origin: requestOrigin(ctx, deps), ...(requestId === undefined ? {} : { requestId }) };
  const result = await withDeadline(run(members, options), deps.requestTimeoutMs, 'write');
  ctx.set(INDEX_HEADER, String(result.index));
  if (result.duplicate) ctx.set('Idempotent-Replayed', 'true');
  deps.log.info(
    { requestId: ctx.state.requestId, idempotencyKey: requestId, member: result.member.id, change: result.change, index: result.index, duplicate: result.duplicate, force },
    `membership: ${result.member.id} ${result.change}`,
  );
  return result;
}

function memberId(ctx: AdminRouteContext): string {
  try {
    return validateMemberId(ctx.params['id']);
  } catch (err) {
    throw fromStoreError(err, 'write');
  }
}

/** A node without membership (a single node) lists itself. */
function singleNodeList(deps: ResolvedDeps): MemberListView {
  const info = deps.cluster.info();
  return {
    clusterId: null,
    leaderId: info.leaderId,
    index: info.appliedIndex,
    members: info.members.map((m) => ({
      id: m.id,
      role: m.role,
      ...(m.address === undefined ? {} : { raftAddress: m.address }),
      autoPromote: false,
      addedIndex: 0,
      updatedIndex: 0,
    })),
  };
}
