// `weldr member list|add|remove|promote`: the cluster's membership, through the admin
// API's /cluster/members (docs/admin-api.md#membership). One change at a time; the
// cluster refuses a change that would leave no quorum of live voters unless --force.
import { ConfigError } from '../../config/config-error.js';
import { parseNodeId, ValueError } from '../../config/values.js';
import { stringFlag } from '../common-options.js';
import type { CtlContext, NounSpec } from '../context.js';
import { cell, json, table, UNKNOWN } from '../render.js';

interface MemberRecord {
  readonly id: string;
  readonly role: string;
  readonly raftAddress?: string;
  readonly adminAddress?: string;
  readonly proxyAddress?: string;
  readonly autoPromote?: boolean;
  readonly matchIndex?: number;
  readonly live?: boolean;
}

interface MembersView {
  readonly clusterId: string | null;
  readonly leaderId: string | null;
  readonly members: readonly MemberRecord[];
}

function memberId(ctx: CtlContext): string {
  const raw = ctx.positionals[0]!;
  try {
    return parseNodeId(raw);
  } catch (err) {
    if (err instanceof ValueError) throw new ConfigError(`member id "${raw}": ${err.message}`);
    throw err;
  }
}

const FORCE_HELP = '  --force     skip the check that a quorum of live voters remains (and, for promote, that\n              the learner has caught up): only to recover from lost members\n';

function forceQuery(ctx: CtlContext): string {
  return ctx.values['force'] === true ? '?force=true' : '';
}

function requiredFlag(ctx: CtlContext, name: string, example: string): string {
  const v = stringFlag(ctx.values, name);
  if (v === undefined || v === '') throw new ConfigError(`needs --${name} (e.g. --${name} ${example})`);
  return v;
}

export const MEMBER: NounSpec = {
  summary: 'cluster membership: add, promote and remove members',
  verbs: {
    list: {
      args: '',
      summary: 'list the members: id, role, addresses',
      flags: { stale: { type: 'boolean' } },
      flagHelp: "  --stale     answer from the member's local state (no leader needed; may lag)\n",
      minArgs: 0,
      maxArgs: 0,
      async run(ctx) {
        const answer = await ctx.client.get<MembersView>(`/cluster/members${ctx.values['stale'] === true ? '?stale=true' : ''}`);
        const view = answer.body;
        if (ctx.common.json) return ctx.io.out(json(view));
        ctx.io.out(
          table(
            ['id', 'role', 'raft address', 'admin address', 'proxy address', 'auto-promote', 'live'],
            view.members.map((m) => [m.id, m.role, m.raftAddress ?? UNKNOWN, m.adminAddress ?? UNKNOWN, m.proxyAddress ?? UNKNOWN, cell(m.autoPromote), cell(m.live)]),
          ),
        );
        ctx.io.out(`cluster ${view.clusterId ?? UNKNOWN}; leader: ${view.leaderId ?? 'none known'}${view.members.some((m) => m.live !== undefined) ? '' : '; live is reported only by the leader'}\n`);
      },
    },
    add: {
      args: 'ID',
      summary: 'add a member as a learner (promoted to voter once caught up)',
      details: `Then start the new node on an empty data directory with --join and the admin URL of any
member; it receives the configuration and a snapshot, and serves as passive once
promoted.

Example:
  weldr member add n4 --raft 10.0.0.4:8688 --admin 10.0.0.4:8687 --proxy 10.0.0.4:8080
`,
      flags: { raft: { type: 'string' }, admin: { type: 'string' }, proxy: { type: 'string' }, 'no-auto-promote': { type: 'boolean' } },
      flagHelp:
        '  --raft HOST:PORT       the new member\'s Raft peer address, as the others reach it (required)\n' +
        '  --admin HOST:PORT|URL  its admin API address (required)\n' +
        '  --proxy HOST:PORT      its proxy address (so it is never added to the pool as an origin)\n' +
        "  --no-auto-promote      keep it a learner until 'weldr member promote'\n",
      minArgs: 1,
      maxArgs: 1,
      async run(ctx) {
        const id = memberId(ctx);
        const proxy = stringFlag(ctx.values, 'proxy');
        const body = {
          id,
          raftAddress: requiredFlag(ctx, 'raft', '10.0.0.4:8688'),
          adminAddress: requiredFlag(ctx, 'admin', '10.0.0.4:8687'),
          ...(proxy === undefined ? {} : { proxyAddress: proxy }),
          ...(ctx.values['no-auto-promote'] === true ? { autoPromote: false } : {}),
        };
        const answer = await ctx.client.call<MemberRecord>('POST', '/cluster/members', { body });
        if (ctx.common.json) return ctx.io.out(json(answer.body));
        ctx.io.out(
          answer.status === 201
            ? `${id} added as a ${answer.body.role}. Start it on an empty data directory with --join ${answer.endpoint}\n`
            : `${id} is already a member with these addresses (${answer.body.role}); nothing changed\n`,
        );
      },
    },
    promote: {
      args: 'ID',
      summary: 'make a learner a voter',
      flags: { force: { type: 'boolean' } },
      flagHelp: FORCE_HELP,
      minArgs: 1,
      maxArgs: 1,
      async run(ctx) {
        const id = memberId(ctx);
        const answer = await ctx.client.call<MemberRecord>('POST', `/cluster/members/${encodeURIComponent(id)}/promote${forceQuery(ctx)}`);
        ctx.io.out(ctx.common.json ? json(answer.body) : `${id} is a ${answer.body.role}\n`);
      },
    },
    remove: {
      args: 'ID',
      summary: 'remove a member (also the leader, which hands off first)',
      details: 'A removed node that is running exits; its data directory cannot be used again (start it\nempty with --join to bring the host back).\n',
      flags: { force: { type: 'boolean' } },
      flagHelp: FORCE_HELP,
      minArgs: 1,
      maxArgs: 1,
      async run(ctx) {
        const id = memberId(ctx);
        const answer = await ctx.client.call('DELETE', `/cluster/members/${encodeURIComponent(id)}${forceQuery(ctx)}`);
        ctx.io.out(ctx.common.json ? json({ removed: id, index: Number(answer.headers['x-weldr-index'] ?? NaN) }) : `${id} removed\n`);
      },
    },
  },
};
