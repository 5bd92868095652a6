import { Readable } from 'node:stream';
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { readJsonBody } from '../body.js';
import { AdminError } from '../errors.js';
import type { AdminState, ResolvedDeps } from '../context.js';
import { INDEX_HEADER } from '../pool-access.js';

// prom-client writes a NaN sample (e.g. the event-loop lag before its first sample) as
// "Nan"; the exposition format spells it "NaN", and strict parsers refuse anything else.
const PROM_CLIENT_NAN = / Nan$/gm;

/** Node-level endpoints: liveness, readiness (active role), cluster view, metrics. */
export function nodeRoutes(router: Router<AdminState>, deps: ResolvedDeps, auth: Middleware<AdminState>): void {
  // Liveness: answers while the process can run JavaScript, whatever the cluster does.
  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  // Readiness = "send traffic here": only the active node, so an external load
  // balancer or VIP health check follows the active role.
  // The term says which active period answered: a drill that samples every member can
  // then tell two nodes active at once from two answers that only overlapped in transit.
  router.get('/ready', (ctx) => {
    if (!deps.cluster.isActive()) throw new AdminError(503, 'NOT_ACTIVE', 'this node is passive; the active node serves traffic');
    ctx.body = { status: 'ready', term: deps.cluster.term?.() ?? deps.cluster.info().term };
  });

  router.get('/cluster', (ctx) => {
    const info = deps.cluster.info();
    ctx.set(INDEX_HEADER, String(info.appliedIndex));
    ctx.body = info;
  });

  // Planned maintenance: move the leadership (and so the active role) before stopping the
  // leader's host. Sent to a follower, the write is relayed to the leader like any other.
  router.post('/cluster/transfer-leadership', auth, async (ctx) => {
    let to: string | undefined;
    const length = ctx.req.headers['content-length'];
    if (ctx.req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
      const body = await readJsonBody(ctx.req, deps.bodyLimitBytes);
      for (const key of Object.keys(body)) {
        if (key !== 'to') throw new AdminError(400, 'INVALID_COMMAND', `unknown field "${key}"`, { field: key });
      }
      if (body.to !== undefined) {
        if (typeof body.to !== 'string' || body.to.length === 0 || body.to.length > 63) {
          throw new AdminError(400, 'INVALID_COMMAND', '"to" must be a member id', { field: 'to' });
        }
        to = body.to;
      }
    }
    const transfer = deps.cluster.transferLeadership;
    if (transfer === undefined) throw new AdminError(409, 'CONFLICT', 'a single node has no other member to hand the leadership to');
    const result = await transfer.call(deps.cluster, to);
    if (result.ok) {
      ctx.body = { leaderId: result.leaderId };
      return;
    }
    if (result.reason === 'notLeader') {
      throw new AdminError(503, 'NOT_LEADER', 'this node is not the leader; retry', { headers: { 'retry-after': '1' }, ...(result.leaderId === null ? {} : { leaderId: result.leaderId }) });
    }
    if (result.reason === 'invalidTarget') throw new AdminError(400, 'INVALID_COMMAND', result.message, { field: 'to' });
    throw new AdminError(504, 'TIMEOUT', result.message, result.leaderId === null ? {} : { leaderId: result.leaderId });
  });

  router.get('/metrics', async (ctx) => {
    const registry = deps.metrics as typeof deps.metrics & Partial<ChunkedMetrics>;
    if (typeof registry.textChunks === 'function') {
      // Collected before the answer starts (a failure is still a 500), then streamed:
      // with 10,000 origins the text is ~30 MB.
      const chunks = await registry.textChunks();
      ctx.type = deps.metrics.contentType;
      ctx.body = Readable.from(spellNaN(chunks), { objectMode: false });
      return;
    }
    const text = await deps.metrics.metrics();
    ctx.type = deps.metrics.contentType;
    ctx.body = text.replace(PROM_CLIENT_NAN, ' NaN');
  });
}

/** A registry that gives its text in pieces (MetricsRegistry of @weldr/proxy). */
interface ChunkedMetrics {
  textChunks(): Promise<AsyncIterable<string>>;
}

/** Each piece ends at the end of a line, so the line-anchored replacement holds across them. */
async function* spellNaN(chunks: AsyncIterable<string>): AsyncGenerator<string> {
  // includes() first: a regular expression over megabytes of per-origin lines costs far more.
  for await (const chunk of chunks) yield chunk.includes(' Nan') ? chunk.replace(PROM_CLIENT_NAN, ' NaN') : chunk;
}
