import test from 'ava';
import { BootstrapGate } from '../src/bootstrap-gate.js';
import type { ClusterLogger } from '../src/types.js';

function recorder(): { log: ClusterLogger; lines: { level: string; fields: Record<string, unknown> }[] } {
  const lines: { level: string; fields: Record<string, unknown> }[] = [];
  const at = (level: string) => (fields: object) => void lines.push({ level, fields: fields as Record<string, unknown> });
  const log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log } as unknown as ClusterLogger;
  return { log, lines };
}

test('a seed before its first election campaigns only once every other seed was reached; then for good', (t) => {
  const { log, lines } = recorder();
  let first = true;
  let now = 0;
  const gate = new BootstrapGate({ self: 'n2', firstElection: () => first, voters: () => ['n1', 'n2', 'n3'], log, now: () => now });
  t.false(gate.mayCampaign());
  t.false(gate.mayCampaign());
  t.deepEqual(lines.map((l) => [l.level, l.fields.missing]), [['info', ['n1', 'n3']]], 'logged once per missing set');
  gate.reachedPeer('n3');
  t.false(gate.mayCampaign());
  now = 10_000;
  t.false(gate.mayCampaign());
  t.false(gate.mayCampaign());
  t.deepEqual(lines.map((l) => [l.level, l.fields.missing]), [['info', ['n1', 'n3']], ['info', ['n1']], ['warn', ['n1']]], 'at warn once it has waited 10 s');
  t.regex(String(lines.find((l) => l.level === 'warn')?.fields.event), /bootstrap_waiting/);
  gate.reachedPeer('n1');
  t.true(gate.mayCampaign());
  t.is(lines.at(-1)?.fields.event, 'bootstrap_seeds_reached');
  // Open for good: a seed lost afterwards does not hold the next election.
  first = true;
  t.true(gate.mayCampaign());
});

test('a member past its first election (a higher term or a cluster id), a joined or restored one: never held, nothing logged', (t) => {
  const { log, lines } = recorder();
  const gate = new BootstrapGate({ self: 'n1', firstElection: () => false, voters: () => ['n1', 'n2', 'n3'], log, now: () => 0 });
  t.true(gate.mayCampaign());
  t.deepEqual(lines, []);
});

test('a one-seed configuration (this node alone) is not held', (t) => {
  const { log } = recorder();
  const gate = new BootstrapGate({ self: 'n1', firstElection: () => true, voters: () => ['n1'], log, now: () => 0 });
  t.true(gate.mayCampaign());
});
