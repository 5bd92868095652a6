// The request table against a plain array as the model: seeded random appends (ids new
// and reused, outcomes of different weights) with eviction, and tables forked from older
// versions — the chunks' versions share their arrays, so every version must keep seeing
// exactly its own entries, whatever was appended to a sibling since.
import test from 'ava';
import {
  EMPTY_REQUEST_TABLE,
  lookupRequest,
  oldestRequestIndex,
  rememberRequest,
  requestEntries,
  requestsAfter,
  requestTableFrom,
  type RememberedRequest,
  type RequestTable,
  type RequestTableLimits,
} from '../src/pool/idempotency.js';
import type { CommandOutcome } from '../src/index.js';
import { seededRandom as rng } from '../src/testing/index.js';

const OK: CommandOutcome = Object.freeze({ ok: true, status: 'added' }) as unknown as CommandOutcome;
const batchOf = (n: number): CommandOutcome => Object.freeze({ ok: true, status: 'batch', results: Array.from({ length: n }, () => OK) }) as unknown as CommandOutcome;
const weightOf = (o: CommandOutcome): number => ((o as { status?: string }).status === 'batch' ? 1 + (o as unknown as { results: unknown[] }).results.length : 1);

/** The model: entries oldest first, evicted from the front while over the limits (the newest always kept). */
function modelAppend(model: readonly RememberedRequest[], entry: RememberedRequest, limits: RequestTableLimits): RememberedRequest[] {
  const next = [...model, entry];
  let weight = next.reduce((w, e) => w + weightOf(e.outcome), 0);
  while (next.length > 1 && (next.length > limits.maxEntries || weight > limits.maxWeight)) weight -= weightOf(next.shift()!.outcome);
  return next;
}

function modelLookup(model: readonly RememberedRequest[], id: string): RememberedRequest | undefined {
  for (let i = model.length - 1; i >= 0; i--) if (model[i]!.requestId === id) return model[i];
  return undefined;
}

function check(t: import('ava').ExecutionContext, table: RequestTable, model: readonly RememberedRequest[], ids: readonly string[], what: string): void {
  t.deepEqual([...requestEntries(table)], model, `${what}: entries`);
  t.is(table.size, model.length, `${what}: size`);
  t.is(oldestRequestIndex(table), model[0]?.index, `${what}: oldest`);
  for (const id of ids) t.is(lookupRequest(table, id), modelLookup(model, id), `${what}: lookup ${id}`);
}

test('random appends, reused ids, eviction and forks: every version matches the model', (t) => {
  const limits: RequestTableLimits = { maxEntries: 700, maxWeight: 1500 };
  for (const seed of [1, 2, 3]) {
    const random = rng(seed);
    const versions: { table: RequestTable; model: RememberedRequest[]; last: number }[] = [{ table: EMPTY_REQUEST_TABLE, model: [], last: 0 }];
    const ids: string[] = [];
    for (let step = 0; step < 2500; step++) {
      // Mostly the newest version; sometimes an older one (a fork: its chunk's arrays were appended to since).
      const from = random() < 0.9 ? versions[versions.length - 1]! : versions[Math.floor(random() * versions.length)]!;
      const reuse = ids.length > 0 && random() < 0.2;
      const id = reuse ? ids[Math.floor(random() * ids.length)]! : `req-${seed}-${step}`;
      if (!reuse) ids.push(id);
      const index = from.last + 1 + Math.floor(random() * 3);
      const entry: RememberedRequest = Object.freeze({ requestId: id, index, fingerprint: `f${step}`, outcome: random() < 0.1 ? batchOf(1 + Math.floor(random() * 5)) : OK });
      versions.push({ table: rememberRequest(from.table, entry, limits), model: modelAppend(from.model, entry, limits), last: index });
      if (versions.length > 40) versions.splice(1 + Math.floor(random() * 39), 1);
    }
    // Every version kept, including the forked ones, still holds exactly its own entries.
    const probe = [...ids.slice(-300), ...ids.slice(0, 50), 'never-used'];
    for (const [i, v] of versions.entries()) check(t, v.table, v.model, probe, `seed ${seed}, version ${i}`);
  }
});

test('a table forked from an older version does not see, or disturb, what its sibling appended', (t) => {
  const limits: RequestTableLimits = { maxEntries: 10_000, maxWeight: 100_000 };
  const e = (id: string, index: number): RememberedRequest => Object.freeze({ requestId: id, index, fingerprint: id, outcome: OK });
  let base = EMPTY_REQUEST_TABLE;
  for (let i = 1; i <= 10; i++) base = rememberRequest(base, e(`r${i}`, i), limits);
  const a = rememberRequest(base, e('a', 11), limits);
  const b = rememberRequest(base, e('b', 11), limits);
  const a2 = rememberRequest(a, e('r3', 12), limits); // an id reused past the end of `a` and `b`
  t.is(lookupRequest(base, 'a'), undefined);
  t.is(lookupRequest(b, 'a'), undefined);
  t.is(lookupRequest(a, 'b'), undefined);
  t.is(lookupRequest(a, 'a')?.index, 11);
  t.is(lookupRequest(b, 'b')?.index, 11);
  t.is(lookupRequest(a2, 'r3')?.index, 12);
  t.is(lookupRequest(a, 'r3')?.index, 3);
  t.is(lookupRequest(b, 'r3')?.index, 3);
  t.deepEqual([...requestsAfter(a2, 10)].map((x) => x.requestId), ['r3', 'a']);
  t.deepEqual([...requestsAfter(b, 10)].map((x) => x.requestId), ['b']);
  t.throws(() => rememberRequest(a2, e('late', 12), limits), { instanceOf: RangeError });
  // Rebuilt from its entries, a table answers as the original.
  const rebuilt = requestTableFrom(requestEntries(a2));
  for (const id of ['r1', 'r3', 'a', 'b']) t.deepEqual(lookupRequest(rebuilt, id), lookupRequest(a2, id));
});

test('a command fingerprint is part of the replicated state: its value does not change', async (t) => {
  const { fingerprintOf } = await import('../src/index.js');
  // sha256 of the canonical JSON, base64url, first 22 characters (what every replica stored so far).
  t.is(fingerprintOf({ type: 'AddServer', ip: '10.0.0.1', port: 8080 } as never), 'GHGk_Sul1BYjhf47Bzec1A');
});
