// weldr status page. Plain ES module, no dependencies, no build step: it reads the same
// admin API an operator's scripts do (GET /cluster, /stats, /stats/detail, /stats/history,
// /events, /audit, /node) with the same token rules, and polls it every second.
//
// Honesty rules (docs/admin-api.md › Status page): show only what the node reported,
// say "—" where it does not know, and when the node cannot be reached say so and how old
// the figures still on screen are.

const TOKEN_KEY = 'weldr.adminToken';
const FAST_MS = 1000;
// History, events, audit and settings change slowly: every fifth poll.
const SLOW_EVERY = 5;
// A pool larger than this is a large answer for the node to build and the page to draw
// (10,000 busy origins: /stats/detail ~2.3 MB, /metrics ~31 MB): the per-origin table is
// fetched every LARGE_EVERY polls, and the per-origin latency (a whole /metrics scrape)
// not at all — Prometheus is the tool for that.
const LARGE_POOL = 500;
const LARGE_EVERY = 10;
const FETCH_TIMEOUT_MS = 3000;

const state = {
  cluster: null,
  stats: null,
  prevStats: null,
  detail: null,
  /** When the per-origin table was last fetched, and how many polls asked whether to (large pools). */
  detailAt: 0,
  detailPolls: 0,
  history: null,
  node: null,
  events: [],
  eventsNext: 0,
  audit: [],
  auditNext: 0,
  auditMissing: false,
  // /metrics scrapes of the per-origin latency histogram, for p50/p99 over the last minute.
  latencyScrapes: [],
  latency: new Map(),
  lastOkAt: 0,
  problem: null, // { kind: 'unreachable' | 'token' | 'error', message }
  polls: 0,
};

class ApiError extends Error {
  constructor(kind, message, status) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const badge = (text, cls = text) => el('span', { class: `badge ${String(cls).replace(/[^a-z-]/gi, '')}` }, text);

// ---- the API ------------------------------------------------------------------------

async function apiText(path) {
  const headers = { accept: 'text/plain' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, { headers, cache: 'no-store', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  if (!res.ok) throw new ApiError(res.status === 401 || res.status === 403 ? 'token' : 'error', `HTTP ${res.status}`, res.status);
  return res.text();
}

// ---- latency from /metrics --------------------------------------------------------------
// The data plane exports each origin's request durations as a Prometheus histogram
// (weldr_proxy_origin_request_duration_seconds{server,le}); the page keeps the scrapes of
// the last minute and estimates p50/p99 from the difference of the newest and the oldest,
// the way Prometheus's histogram_quantile does (linear within a bucket).
const LATENCY = 'weldr_proxy_origin_request_duration_seconds_bucket';

/** server id → Map(le → cumulative count) */
function parseBuckets(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith(LATENCY)) continue;
    const m = /\{(.*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (labels.server === undefined || labels.le === undefined) continue;
    const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
    if (!out.has(labels.server)) out.set(labels.server, new Map());
    out.get(labels.server).set(le, Number(m[2]));
  }
  return out;
}

/** The q-quantile (seconds) of a cumulative histogram given as sorted [le, count]; undefined when empty. */
function quantile(q, buckets) {
  const total = buckets.length === 0 ? 0 : buckets[buckets.length - 1][1];
  if (!(total > 0)) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1e-9, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

function updateLatency(text) {
  const now = Date.now();
  state.latencyScrapes.push({ at: now, buckets: parseBuckets(text) });
  while (state.latencyScrapes.length > 2 && now - state.latencyScrapes[1].at >= 60_000) state.latencyScrapes.shift();
  const newest = state.latencyScrapes[state.latencyScrapes.length - 1];
  const oldest = state.latencyScrapes[0];
  state.latency = new Map();
  for (const [server, cur] of newest.buckets) {
    const before = oldest === newest ? new Map() : oldest.buckets.get(server) ?? new Map();
    const diff = [...cur.entries()].sort((a, b) => a[0] - b[0]).map(([le, c]) => [le, Math.max(0, c - (before.get(le) ?? 0))]);
    const p50 = quantile(0.5, diff);
    if (p50 === undefined) continue; // no request in the window: unknown, not zero
    state.latency.set(server, { p50Ms: p50 * 1000, p99Ms: quantile(0.99, diff) * 1000 });
  }
}

async function api(path) {
  const headers = { accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, { headers, cache: 'no-store', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (err) {
    const reason = err && err.name === 'TimeoutError' ? `no answer within ${FETCH_TIMEOUT_MS / 1000} s` : 'the connection failed';
    throw new ApiError('unreachable', reason);
  }
  let body = null;
  if ((res.headers.get('content-type') || '').startsWith('application/json')) body = await res.json().catch(() => null);
  if (res.ok) return body;
  const message = body && body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`;
  if (res.status === 401 || res.status === 403) throw new ApiError('token', message, res.status);
  throw new ApiError('error', message, res.status);
}

function isLargePool() {
  return state.detail !== null && state.detail.length > LARGE_POOL;
}

async function poll() {
  const slow = state.polls % SLOW_EVERY === 0;
  state.polls++;
  try {
    const wantDetail = !isLargePool() || state.detailPolls++ % LARGE_EVERY === 0;
    const [cluster, stats, detail] = await Promise.all([api('/cluster'), api('/stats'), wantDetail ? api('/stats/detail') : Promise.resolve(state.detail)]);
    state.prevStats = state.stats === null ? null : { at: state.stats.at, value: state.stats.value };
    state.stats = { at: Date.now(), value: stats };
    state.cluster = cluster;
    state.detail = detail;
    if (wantDetail) state.detailAt = Date.now();
    state.lastOkAt = Date.now();
    state.problem = null;
    if (slow) await pollSlow();
  } catch (err) {
    state.problem = err instanceof ApiError ? { kind: err.kind, message: err.message } : { kind: 'error', message: String(err) };
    if (state.problem.kind !== 'token') state.polls = 0; // the first good poll afterwards refreshes everything
  }
  render();
  setTimeout(poll, FAST_MS);
}

async function pollSlow() {
  const [history, node, events] = await Promise.all([api('/stats/history'), api('/node'), api(`/events?since=${state.eventsNext}`)]);
  state.history = history;
  state.node = node;
  if (events.next < state.eventsNext) state.events = []; // the node restarted
  state.events = [...state.events, ...events.events].slice(-100);
  state.eventsNext = events.next;
  try {
    if (isLargePool()) state.latency = new Map();
    else updateLatency(await apiText('/metrics'));
  } catch {
    // Latency is a nicety: a node without the histogram, or a failed scrape, shows "—".
  }
  try {
    // Replicated, read from this node's copy: the page must work without a quorum.
    const audit = await api(`/audit?stale=true&since=${state.auditNext}`);
    state.audit = [...state.audit, ...audit.entries].slice(-100);
    state.auditNext = audit.next;
    state.auditMissing = false;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) state.auditMissing = true;
    else throw err;
  }
}

// ---- formatting -----------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, '0');
function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function ago(ms) {
  if (ms < 0) ms = 0;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s ago`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s ago`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min ago`;
  return `${Math.round(ms / 3_600_000)} h ago`;
}
function rate(n) {
  if (!Number.isFinite(n)) return '—';
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}
function ms(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '—';
  return v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(1)} ms`;
}
const dash = (v) => (v === undefined || v === null ? '—' : v);

// ---- rendering ------------------------------------------------------------------------

function render() {
  renderBanner();
  if (state.cluster !== null) renderHeader();
  if (state.cluster !== null) renderCluster();
  if (state.detail !== null) renderPool();
  renderRates();
  renderEvents();
  renderAudit();
  if (state.node !== null) renderSettings();
  $('forget-token').hidden = sessionStorage.getItem(TOKEN_KEY) === null;
}

function renderBanner() {
  const banner = $('banner');
  const form = $('token-form');
  const p = state.problem;
  form.hidden = !(p && p.kind === 'token');
  if (p && p.kind === 'token') {
    const had = sessionStorage.getItem(TOKEN_KEY) !== null;
    $('token-reason').textContent = had
      ? `The admin token in use was refused (${p.message}). Enter the right one.`
      : `This node needs the admin token for reads (${p.message}).`;
  }
  if (!p || p.kind === 'token') {
    banner.hidden = true;
    banner.textContent = '';
    return;
  }
  banner.hidden = false;
  banner.className = 'banner error';
  banner.dataset.kind = p.kind;
  const since = state.lastOkAt === 0 ? 'Nothing has been received from it yet.' : `The figures below are from ${clock(state.lastOkAt)} (${ago(Date.now() - state.lastOkAt)}); they may be out of date.`;
  banner.textContent =
    p.kind === 'unreachable'
      ? `Cannot reach the weldr node at ${location.host}: ${p.message}. ${since} Retrying every second.`
      : `The weldr node at ${location.host} answered with an error: ${p.message}. ${since} Retrying every second.`;
}

function renderHeader() {
  const c = state.cluster;
  document.title = `weldr ${c.nodeId} — ${c.role}`;
  $('node-id').textContent = c.nodeId;
  const role = $('node-role');
  role.replaceChildren(document.createTextNode(c.role));
  role.className = `badge ${c.role}`;
  const summary = $('summary');
  summary.replaceChildren(
    ...[
      ['leader', c.leaderId ?? 'none known'],
      ['term', c.term],
      ['commit', c.commitIndex],
      ['applied', c.appliedIndex],
      ...(c.clusterId ? [['cluster', c.clusterId]] : []),
    ].flatMap(([k, v]) => [el('dt', {}, k), el('dd', { dataset: { field: k } }, v)]),
  );
  $('updated').textContent = `updated ${clock(state.lastOkAt)}`;
}

function renderCluster() {
  const c = state.cluster;
  const rows = c.members.map((m) => {
    const self = m.id === c.nodeId;
    const raftRole = m.raftRole ?? 'unknown';
    const reach = self ? 'self' : m.reachable === true ? 'yes' : m.reachable === false ? 'no' : '—';
    const contact = self ? '—' : typeof m.lastContactMs === 'number' ? ago(m.lastContactMs) : m.lastContactMs === null ? 'never' : '—';
    const lag = typeof m.matchIndex === 'number' ? Math.max(0, c.commitIndex - m.matchIndex) : undefined;
    const notes = [];
    if (m.condition && m.condition !== 'current') notes.push(m.condition);
    if (m.reason) notes.push(m.reason);
    else if (m.live === false) notes.push('the leader has not heard from it lately');
    return el(
      'tr',
      { class: self ? 'self' : '', dataset: { member: m.id } },
      el('td', {}, m.id, self ? ' (this node)' : ''),
      el('td', {}, m.role),
      el('td', { class: 'raft-role' }, badge(raftRole, raftRole.replace('-', ''))),
      el('td', {}, dash(m.address)),
      el('td', { class: 'reachable' }, reach === 'yes' || reach === 'no' ? badge(reach) : reach),
      el('td', { class: 'contact' }, contact),
      el('td', { class: 'num' }, dash(m.matchIndex)),
      el('td', { class: 'num lag' }, dash(lag)),
      el('td', {}, dash(m.replication)),
      el('td', { class: 'note' }, notes.join('; ')),
    );
  });
  $('cluster').tBodies[0].replaceChildren(...rows);
}

function renderPool() {
  const servers = state.detail;
  const now = Date.now();
  const large = servers.length > LARGE_POOL ? ` · a large pool: this table is refreshed every ${LARGE_EVERY} s (last ${ago(now - state.detailAt)}) and per-origin latency is not scraped` : '';
  $('pool-note').textContent = `${servers.length} origin${servers.length === 1 ? '' : 's'}${state.stats?.value?.failOpen ? ' · every origin unhealthy: failing open' : ''}${large}`;
  if (servers.length === 0) {
    $('pool').tBodies[0].replaceChildren(el('tr', {}, el('td', { colspan: 11, class: 'muted' }, 'No origins in the pool. Add one: weldr servers add IP:PORT')));
    return;
  }
  const rows = servers.map((s) => {
    const id = `${s.ip.includes(':') ? `[${s.ip}]` : s.ip}:${s.port}`;
    const checks = el('span', { class: 'checks', title: 'oldest → newest' }, (s.recentChecks ?? []).map((ok) => el('i', { class: ok ? 'pass' : 'fail' })));
    const last = s.lastCheck
      ? `${s.lastCheck.ok ? 'ok' : 'failed'} ${s.lastCheck.status ?? s.lastCheck.error ?? ''} · ${ago(now - s.lastCheck.at)}`
      : '—';
    const flags = [];
    if (s.draining) flags.push('draining');
    if (s.ejected) flags.push(typeof s.ejectedUntil === 'number' ? `ejected for ${Math.max(0, Math.ceil((s.ejectedUntil - now) / 1000))} s` : 'ejected');
    const latency = state.latency.get(s.id) ?? {};
    return el(
      'tr',
      { dataset: { origin: id } },
      el('td', {}, id),
      el('td', { class: 'num' }, s.weight),
      el('td', { class: 'health' }, badge(s.health)),
      el('td', {}, checks),
      el('td', { class: 'last-check' }, last),
      el('td', { class: 'num' }, s.active),
      el('td', { class: 'num' }, s.success),
      el('td', { class: 'num' }, s.failed),
      el('td', { class: 'num' }, ms(latency.p50Ms)),
      el('td', { class: 'num' }, ms(latency.p99Ms)),
      el('td', {}, flags.join(', ')),
    );
  });
  $('pool').tBodies[0].replaceChildren(...rows);
}

/** Rates between consecutive samples: [{at, requests, errors}] (per second). */
function rates(samples) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    const dt = (b.at - a.at) / 1000;
    if (dt <= 0) continue;
    const total = (x) => x.client.success + x.client.failed;
    const req = total(b) - total(a);
    const err = b.client.failed - a.client.failed;
    // Counters restart with the node: a negative difference is not a rate.
    if (req < 0 || err < 0) continue;
    out.push({ at: b.at, requests: req / dt, errors: err / dt });
  }
  return out;
}

function renderRates() {
  const cur = state.stats;
  const prev = state.prevStats;
  if (cur && prev && cur.at > prev.at) {
    const [r] = rates([
      { at: prev.at, client: prev.value.client },
      { at: cur.at, client: cur.value.client },
    ]);
    if (r) $('rates-now').textContent = `now: ${rate(r.requests)} req/s, ${rate(r.errors)} errors/s`;
  }
  const series = state.history ? rates(state.history.samples) : [];
  chart('chart-requests', series.map((p) => [p.at, p.requests]));
  chart('chart-errors', series.map((p) => [p.at, p.errors]));
}

function chart(id, points) {
  const svg = $(id);
  const W = 300;
  const H = 80;
  const max = Math.max(1, ...points.map((p) => p[1]));
  $(`${id}-max`).textContent = `max ${rate(max)}/s`;
  if (points.length < 2) {
    svg.replaceChildren();
    $(`${id}-span`).textContent = 'collecting samples…';
    return;
  }
  const t0 = points[0][0];
  const t1 = points[points.length - 1][0];
  const span = Math.max(1, t1 - t0);
  $(`${id}-span`).textContent = `last ${Math.max(1, Math.round(span / 60_000))} min`;
  const coords = points.map(([t, v]) => `${(((t - t0) / span) * W).toFixed(1)},${(H - 2 - (v / max) * (H - 4)).toFixed(1)}`).join(' ');
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', coords);
  svg.replaceChildren(line);
}

function renderEvents() {
  const list = $('events');
  const roles = state.events.filter((e) => e.kind === 'role' || e.kind === 'peer' || e.kind === 'node');
  if (roles.length === 0) {
    list.replaceChildren(el('li', { class: 'empty' }, 'Nothing yet.'));
    return;
  }
  list.replaceChildren(...roles.slice().reverse().map((e) => el('li', { dataset: { kind: e.kind } }, el('time', {}, clock(e.at)), e.message)));
}

/** One line for an audit entry's command. */
function describe(command) {
  if (!command || typeof command !== 'object') return 'unknown change';
  const at = (c) => `${String(c.ip).includes(':') ? `[${c.ip}]` : c.ip}:${c.port}`;
  const fields = (c, skip) => Object.keys(c).filter((k) => !skip.includes(k)).join(', ');
  switch (command.type) {
    case 'AddServer':
      return `add server ${at(command)}${command.weight !== undefined ? ` (weight ${command.weight})` : ''}`;
    case 'RemoveServer':
      return `remove server ${at(command)}`;
    case 'UpdateServer':
      return `update server ${at(command)}: ${fields(command, ['type', 'ip', 'port'])}`;
    case 'UpdateSettings':
      return `update settings: ${fields(command, ['type'])}`;
    case 'Batch': {
      // The audit log keeps a batch's first commands and counts the rest in `more`.
      const total = (command.commands?.length ?? 0) + (command.more ?? 0);
      return `batch of ${total}: ${(command.commands ?? []).slice(0, 3).map(describe).join('; ')}${total > 3 ? '; …' : ''}`;
    }
    case 'AddMember':
      return `add member ${command.id}${command.raftAddress ? ` at ${command.raftAddress}` : ''} as learner`;
    case 'PromoteMember':
      return `promote member ${command.id} to voter`;
    case 'RemoveMember':
      return `remove member ${command.id}`;
    case 'UpdateMember':
      return `update member ${command.id}: ${fields(command, ['type', 'id'])}`;
    case 'InitCluster':
      return `cluster id recorded: ${command.clusterId}`;
    default:
      return String(command.type);
  }
}

function renderAudit() {
  const list = $('audit');
  if (state.auditMissing) {
    list.replaceChildren(el('li', { class: 'empty' }, 'This node has no audit log (an older version).'));
    return;
  }
  if (state.audit.length === 0) {
    list.replaceChildren(el('li', { class: 'empty' }, 'No admin changes recorded.'));
    return;
  }
  list.replaceChildren(
    ...state.audit
      .slice()
      .reverse()
      .map((a) =>
        el(
          'li',
          { dataset: { index: a.index }, title: `index ${a.index}${a.idempotencyKey ? `, Idempotency-Key ${a.idempotencyKey}` : ''}` },
          el('time', {}, clock(a.at)),
          describe(a.command),
          el('span', { class: 'muted' }, ` — via ${a.nodeId ?? '?'}${a.client ? ` from ${a.client}` : ''}${a.result ? ` (${a.result})` : ''}`),
        ),
      ),
  );
}

/** A setting for people: host:port for addresses, id=host:port for peers, JSON otherwise. */
function settingText(v) {
  const hostPort = (a) => (a && typeof a === 'object' && 'host' in a && 'port' in a ? `${String(a.host).includes(':') ? `[${a.host}]` : a.host}:${a.port}` : undefined);
  if (Array.isArray(v)) return v.length === 0 ? '—' : v.map((x) => (x && typeof x === 'object' && 'id' in x && hostPort(x.address) ? `${x.id}=${hostPort(x.address)}` : settingText(x))).join(', ');
  if (v && typeof v === 'object') return hostPort(v) ?? JSON.stringify(v);
  return v;
}

function renderSettings() {
  const n = state.node;
  const entries = [
    ['id', n.id],
    ['version', n.version],
    ['pid', n.pid],
    ['started', n.startedAt ? `${new Date(n.startedAt).toISOString()} (${ago(Date.now() - n.startedAt)})` : undefined],
    ...Object.entries(n.listeners ?? {}).map(([k, v]) => [`listening on ${k}`, v]),
    ...Object.entries(n.settings ?? {})
      .filter(([k]) => k !== 'id')
      .map(([k, v]) => [k, settingText(v)]),
  ].filter(([, v]) => v !== undefined);
  $('settings').replaceChildren(...entries.map(([k, v]) => el('div', {}, el('dt', {}, k), el('dd', { dataset: { setting: k } }, String(v)))));
}

// ---- token ----------------------------------------------------------------------------

function setUp() {
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = $('token-input').value.trim();
    if (value === '') return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $('token-input').value = '';
    state.problem = null;
    state.polls = 0;
    render();
  });
  $('forget-token').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    render();
  });
  poll();
}

setUp();
