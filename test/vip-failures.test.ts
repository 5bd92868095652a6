// A VIP that cannot be configured or announced must not fail silently (issue 12: a hook
// with the wrong arping flags sent nothing and nobody noticed). Single nodes with --vip in
// a network namespace: one whose --vip-interface does not exist (the add fails), one with
// no arping on its PATH (the announcement fails). Each failure is logged at error level,
// shown in GET /cluster under `vip` and counted in weldr_vip_failures_total{op}.
//
// Needs root and `ip netns` (helpers/netns.ts); skipped with the reason otherwise.
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import test from 'ava';
import { LAB_SUBNET, netnsUnavailable, NetnsLab } from './helpers/netns.js';
import { makeTempDir } from './helpers/node.js';
import { spawnWeldr } from './helpers/process.js';
import { eventually } from './helpers/wait.js';

const VIP = `${LAB_SUBNET}.100`;
const skipReason = netnsUnavailable();

interface VipView {
  held: boolean;
  announcer: string | null;
  lastError: { op: string; message: string } | null;
  failures: { add: number; remove: number; announce: number };
}

/** GET inside a namespace (the test process is outside it). */
function getIn(ns: string, url: string): Promise<string> {
  const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) }).then(async (r) => process.stdout.write(await r.text()), (e) => { process.stderr.write(String(e)); process.exitCode = 1; })`;
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { timeout: 15_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => (err === null ? resolve(stdout) : reject(new Error(`${err.message}: ${stderr}`))));
  });
}

const failuresMetric = (metrics: string, op: string): number => Number(new RegExp(`^weldr_vip_failures_total\\{op="${op}",nodeId="n1"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? NaN);

if (skipReason !== null) {
  test.skip(`VIP failures visible in /cluster and metrics — skipped: ${skipReason}`, () => undefined);
} else {
  test.serial('a VIP on an interface that does not exist: the add fails, is retried, logged, shown in /cluster and counted', async (t) => {
    const lab = await NetnsLab.create(1);
    t.teardown(() => lab.destroy());
    const host = lab.nodes[0]!;
    const dir = makeTempDir(t, 'weldr-vip-fail-');
    const node = spawnWeldr(
      t,
      'weldr n1',
      ['start', '--id', 'n1', '--listen', `${host.ip}:8080`, '--admin', `${host.ip}:8687`, '--data', join(dir, 'n1'), '--vip', `${VIP}/24`, '--vip-interface', 'nosuch0', '--shutdown-timeout', '1s'],
      { WELDR_CONFIG: undefined, WELDR_ADMIN_TOKEN: 'vip-failures-admin-token-0123456789' },
      NetnsLab.exec(host.ns),
    );
    await node.waitForLine('started', (l) => l.event === 'started', 60_000);
    // A single node is active at once, so it tries to add the address, and retries.
    const failed = await node.waitForLine('vip_add_failed', (l) => l.event === 'vip_add_failed', 30_000);
    t.is(failed.level, 50, 'logged at error level');
    t.regex(String(failed['error']), /nosuch0|Cannot find device|does not exist/i);
    const view = await eventually('two failed adds (retried)', async () => {
      const v = (JSON.parse(await getIn(host.ns, `http://${host.ip}:8687/cluster`)) as { vip: VipView }).vip;
      return v.failures.add >= 2 ? v : undefined;
    }, 30_000, 200);
    t.false(view.held);
    t.is(view.lastError?.op, 'add');
    t.regex(view.lastError?.message ?? '', /nosuch0|Cannot find device|does not exist/i);
    const metrics = await getIn(host.ns, `http://${host.ip}:8687/metrics`);
    t.true(failuresMetric(metrics, 'add') >= 2, 'weldr_vip_failures_total{op="add"}');
    t.regex(metrics, /^weldr_vip_held\{nodeId="n1"\} 0$/m);
    t.deepEqual(await lab.holders(VIP), [], 'the address is nowhere');
  });

  test.serial('a VIP with no arping on the PATH: the address moves, the missing announcement is an error in the log, /cluster and metrics', async (t) => {
    const lab = await NetnsLab.create(1);
    t.teardown(() => lab.destroy());
    const host = lab.nodes[0]!;
    const dir = makeTempDir(t, 'weldr-vip-noarping-');
    // A PATH with `ip` and nothing else (the node itself runs from process.execPath).
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const ipPath = (process.env['PATH'] ?? '').split(':').map((d) => join(d, 'ip')).find((p) => existsSync(p));
    if (ipPath === undefined) throw new Error('ip is not on the PATH');
    symlinkSync(ipPath, join(bin, 'ip'));
    const node = spawnWeldr(
      t,
      'weldr n1',
      ['start', '--id', 'n1', '--listen', `${host.ip}:8080`, '--admin', `${host.ip}:8687`, '--data', join(dir, 'n1'), '--vip', `${VIP}/24`, '--vip-interface', 'eth0', '--shutdown-timeout', '1s'],
      { WELDR_CONFIG: undefined, WELDR_ADMIN_TOKEN: 'vip-failures-admin-token-0123456789', PATH: `${bin}:/nonexistent` },
      NetnsLab.exec(host.ns),
    );
    await node.waitForLine('started', (l) => l.event === 'started', 60_000);
    await eventually('the VIP on the node', async () => ((await lab.holders(VIP)).length === 1 ? true : undefined), 30_000, 50);
    const failed = await node.waitForLine('vip_announce_failed', (l) => l.event === 'vip_announce_failed', 30_000);
    t.is(failed.level, 50, 'logged at error level');
    const view = (JSON.parse(await getIn(host.ns, `http://${host.ip}:8687/cluster`)) as { vip: VipView }).vip;
    t.true(view.held);
    t.is(view.announcer, 'none');
    t.is(view.lastError?.op, 'announce');
    t.regex(view.lastError?.message ?? '', /arping/);
    t.true(view.failures.announce >= 1);
    const metrics = await getIn(host.ns, `http://${host.ip}:8687/metrics`);
    t.true(failuresMetric(metrics, 'announce') >= 1, 'weldr_vip_failures_total{op="announce"}');
    t.regex(metrics, /^weldr_vip_held\{nodeId="n1"\} 1$/m);
    // SIGTERM: the address goes with the node.
    await node.stop('SIGTERM', 15_000);
    t.deepEqual(await lab.holders(VIP), [], 'removed at shutdown');
  });
}
