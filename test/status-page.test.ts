// The status page in a real browser (Debian's Chromium through playwright-core) against
// real weldr processes: it renders the cluster and the pool, follows an origin going down
// and a failover, works with the admin token, and says so when the node is unreachable.
import anyTest, { type TestFn } from 'ava';
import type { Page } from 'playwright-core';
import { adminCall, addOrigin } from './helpers/admin.js';
import { browserUnavailable, openBrowser, openPage } from './helpers/browser.js';
import { startCluster } from './helpers/cluster.js';
import { startNode, type WeldrNode } from './helpers/node.js';
import { deadPort } from './helpers/ports.js';
import { startOrigin } from './helpers/origins.js';
import { eventually, scaled } from './helpers/wait.js';

const unavailable = browserUnavailable();
if (unavailable !== undefined) console.log(`status page browser tests skipped: ${unavailable}`);
// Each test runs a browser and several processes: one at a time.
const test = (unavailable === undefined ? anyTest.serial : anyTest.skip) as TestFn;

// Checks every 200 ms, down after one failure: the page is tested on what the node
// reports, so the node should report quickly.
const FAST_CHECKS = { healthCheck: { intervalMs: 200, timeoutMs: 150, healthyThreshold: 1, unhealthyThreshold: 1, jitterMs: 0 } };

// Run in the page (not a string: the page's CSP forbids eval). This file is compiled
// without the DOM's types, hence the narrow casts.
interface PageGlobals {
  readonly document: { querySelector(selector: string): { readonly textContent: string | null } | null };
  readonly sessionStorage: { getItem(key: string): string | null };
}
function shows([selector, source, flags]: readonly [string, string, string]): boolean {
  const e = (globalThis as unknown as PageGlobals).document.querySelector(selector);
  return e !== null && new RegExp(source, flags).test(e.textContent ?? '');
}

/** Waits until `selector`'s text matches; the failure message says what it showed instead. */
async function waitForText(page: Page, selector: string, pattern: RegExp, ms = 10_000): Promise<string> {
  try {
    await page.waitForFunction(shows, [selector, pattern.source, pattern.flags] as const, { timeout: scaled(ms), polling: 100 });
  } catch (err) {
    const shown = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => '(no such element)');
    throw new Error(`${selector} did not show ${pattern} within ${scaled(ms)} ms; it shows: ${JSON.stringify(shown)} (${(err as Error).message.split('\n')[0]})`);
  }
  return (await page.locator(selector).first().textContent()) ?? '';
}

async function patchSettings(node: WeldrNode, body: unknown): Promise<void> {
  const r = await adminCall(node, 'PATCH', '/settings', body);
  if (r.status !== 200) throw new Error(`PATCH /settings: ${r.status} ${JSON.stringify(r.body)}`);
}

test('renders the cluster, the pool with each origin\'s health, and the node\'s settings', async (t) => {
  const node = await startNode(t, { store: 'memory' });
  const origin = await startOrigin(t, 'up');
  const dead = await deadPort();
  await patchSettings(node, FAST_CHECKS);
  await addOrigin(node, origin);
  t.is((await adminCall(node, 'POST', '/servers', { ip: '127.0.0.1', port: dead })).status, 201);

  const browser = await openBrowser(t);
  const { page, errors } = await openPage(t, browser, `${node.adminUrl}/`);
  await waitForText(page, '#node-role', /^active$/);
  await waitForText(page, '#cluster tr[data-member="n1"] .raft-role', /leader/);
  t.regex(await page.locator('#cluster tr[data-member="n1"]').textContent() ?? '', /this node/);
  await waitForText(page, `#pool tr[data-origin="127.0.0.1:${origin.port}"] .health`, /^healthy$/);
  await waitForText(page, `#pool tr[data-origin="127.0.0.1:${dead}"] .health`, /^unhealthy$/);
  await waitForText(page, `#pool tr[data-origin="127.0.0.1:${dead}"] .last-check`, /failed ECONNREFUSED/);
  t.true((await page.locator(`#pool tr[data-origin="127.0.0.1:${dead}"] .checks i.fail`).count()) > 0, 'the failed checks are drawn');
  await waitForText(page, '#settings [data-setting="listening on admin"]', new RegExp(`^127\\.0\\.0\\.1:${node.adminPort}$`));
  await waitForText(page, '#settings [data-setting="admin"]', /^127\.0\.0\.1:0$/);
  await waitForText(page, '#events', /single node: active/);
  // The audit log: the changes made above, with the node that received them.
  await waitForText(page, '#audit', new RegExp(`add server 127\\.0\\.0\\.1:${dead}.*via n1 from 127\\.0\\.0\\.1`));
  t.regex((await page.locator('#audit').textContent()) ?? '', /update settings: healthCheck/);
  t.true(await page.locator('#banner').isHidden());
  t.deepEqual(errors, []);
});

test('a large pool (more than 500 origins): the table is fetched every 10 s, /metrics is not scraped, and the page says so', async (t) => {
  const node = await startNode(t, { store: 'memory' });
  // Nothing is checked or proxied to: the origins are only records.
  await patchSettings(node, { healthCheck: { enabled: false } });
  const commands = Array.from({ length: 501 }, (_, i) => ({ type: 'AddServer', ip: '127.0.3.1', port: 10_000 + i }));
  const added = await adminCall(node, 'POST', '/servers/batch', { commands });
  t.is(added.status, 200, JSON.stringify(added.body));

  const browser = await openBrowser(t);
  const asked: string[] = [];
  browser.on('request', (r) => asked.push(new URL(r.url()).pathname));
  const { page, errors } = await openPage(t, browser, `${node.adminUrl}/`);
  await waitForText(page, '#pool-note', /^501 origins · a large pool: this table is refreshed every 10 s \(last .* ago\)/);
  t.is(await page.locator('#pool tbody tr').count(), 501);
  const from = asked.length;
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const since = asked.slice(from);
  const count = (path: string) => since.filter((p) => p === path).length;
  t.true(count('/stats') >= 2, `the page kept polling (${count('/stats')} × /stats in 5 s)`);
  t.true(count('/stats/detail') <= 1, `the table was fetched ${count('/stats/detail')} times in 5 s`);
  t.is(asked.filter((p) => p === '/metrics').length, 0, 'no /metrics scrape for a large pool');
  t.deepEqual(errors, []);
});

test('follows an origin going down and a failover within seconds', async (t) => {
  t.timeout(scaled(90_000));
  const members = await startCluster(t);
  const origin = await startOrigin(t, 'o1');
  const asNode = (m: (typeof members)[number]): WeldrNode => ({ proc: m.proc, proxyPort: m.proxyPort, proxyTlsPort: undefined, adminPort: m.adminPort, proxyUrl: m.proxyUrl, adminUrl: m.adminUrl, dataDir: m.dataDir });
  const clusterOf = async (m: (typeof members)[number]) => (await adminCall<{ leaderId: string | null; term: number }>(asNode(m), 'GET', '/cluster')).body;
  const firstLeader = await eventually('a leader', async () => (await clusterOf(members[0]!)).leaderId ?? undefined);
  const watched = members.find((m) => m.id !== firstLeader)!;
  // Writes through the follower the page watches: relayed to the leader.
  await eventually('settings written', async () => ((await adminCall(asNode(watched), 'PATCH', '/settings', FAST_CHECKS)).status === 200 ? true : undefined));
  await eventually('origin added', async () => ((await adminCall(asNode(watched), 'POST', '/servers', { ip: '127.0.0.1', port: origin.port })).status < 300 ? true : undefined));

  const browser = await openBrowser(t);
  const { page, errors } = await openPage(t, browser, `${watched.adminUrl}/`);
  // An election at start-up may still move the leadership: go by what the page shows.
  let leaderId = await waitForText(page, '#summary [data-field="leader"]', /^n\d$/);
  if (leaderId === watched.id) {
    await adminCall(asNode(watched), 'POST', '/cluster/transfer-leadership', {});
    leaderId = await waitForText(page, '#summary [data-field="leader"]', new RegExp(`^(?!${watched.id}$)n\\d$`));
  }
  await waitForText(page, '#node-role', /^passive$/);
  await waitForText(page, `#pool tr[data-origin="127.0.0.1:${origin.port}"] .health`, /^healthy$/);

  // The origin dies: the page shows it down within a few seconds.
  origin.proc.signal('SIGKILL');
  await waitForText(page, `#pool tr[data-origin="127.0.0.1:${origin.port}"] .health`, /^unhealthy$/, 5_000);

  // The active node dies: the page names the new leader and shows the old one as gone.
  // The leader and its term are taken together from the watched node just before the
  // kill (on a loaded host the leadership may have moved since the page first showed it).
  const before = await eventually('the leader and its term', async () => {
    const c = await clusterOf(watched);
    return c.leaderId !== null && c.leaderId !== watched.id ? { leaderId: c.leaderId, term: c.term } : undefined;
  });
  const victim = members.find((m) => m.id === before.leaderId)!;
  victim.proc.signal('SIGKILL');
  const newLeader = await waitForText(page, '#summary [data-field="leader"]', new RegExp(`^(?!${victim.id}$)n\\d$`), 10_000);
  t.not(newLeader, victim.id);
  t.true(Number(await page.locator('#summary [data-field="term"]').textContent()) > before.term);
  await waitForText(page, `#cluster tr[data-member="${victim.id}"] .reachable`, /^no$/, 5_000);
  t.notRegex((await page.locator(`#cluster tr[data-member="${victim.id}"] .raft-role`).textContent()) ?? '', /leader|follower/, 'a killed member is not shown in a role');
  const term = Number(await page.locator('#summary [data-field="term"]').textContent());
  await waitForText(page, '#events li:first-child', new RegExp(`(following ${newLeader}|this node leads) \\(term ${term}\\)`), 5_000);
  t.deepEqual(errors, []);
});

test('with reads closed by the admin token, the page asks for it and then works; the token never goes into the URL', async (t) => {
  const token = 'status-page-token-0123456789';
  const node = await startNode(t, { store: 'memory', args: ['--admin-auth-reads'], env: { WELDR_ADMIN_TOKEN: token } });
  const browser = await openBrowser(t);
  const { page, errors } = await openPage(t, browser, `${node.adminUrl}/`);
  await waitForText(page, '#token-reason', /needs the admin token/);
  t.true(await page.locator('#token-form').isVisible());

  await page.fill('#token-input', 'wrong-token');
  await page.click('#token-form button[type=submit]');
  await waitForText(page, '#token-reason', /refused/);

  await page.fill('#token-input', token);
  await page.click('#token-form button[type=submit]');
  await waitForText(page, '#cluster tr[data-member="n1"] .raft-role', /leader/);
  t.true(await page.locator('#token-form').isHidden());
  t.is(await page.evaluate(() => (globalThis as unknown as PageGlobals).sessionStorage.getItem('weldr.adminToken')), token);
  t.false(page.url().includes(token));
  t.deepEqual(errors, []);
});

test('when the node stops answering, a banner says so and how old the figures are', async (t) => {
  const node = await startNode(t, { store: 'memory' });
  const browser = await openBrowser(t);
  const { page, errors } = await openPage(t, browser, `${node.adminUrl}/`);
  await waitForText(page, '#node-role', /^active$/);
  t.true(await page.locator('#banner').isHidden());
  node.proc.signal('SIGKILL');
  const text = await waitForText(page, '#banner', /Cannot reach the weldr node/, 10_000);
  t.regex(text, new RegExp(`127\\.0\\.0\\.1:${node.adminPort}`));
  t.regex(text, /figures below are from \d\d:\d\d:\d\d/);
  // The last figures stay on screen, marked as old rather than cleared.
  t.regex((await page.locator('#cluster').textContent()) ?? '', /n1/);
  t.deepEqual(errors, []);
});
