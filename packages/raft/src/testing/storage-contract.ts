import type { PersistentStorage } from '../storage.js';
import type { ConfState, Entry } from '../types.js';

export interface ContractCase {
  readonly name: string;
  readonly run: () => Promise<void>;
}

/** Storage under test, plus the snapshot/compaction calls every implementation offers. */
export interface ContractStorage extends PersistentStorage {
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): unknown;
  compact(index: number): void;
}

function ent(index: number, term: number): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(`e${index}`) };
}

function expect(cond: boolean, what: string): void {
  if (!cond) throw new Error(`storage contract: ${what}`);
}

/**
 * The behaviour the Raft core relies on from any Storage, as a list of cases
 * a test runner wraps (each throws on failure). `make` returns a fresh storage
 * bootstrapped with the given configuration; `reopen` (optional) returns the
 * same storage as seen after a restart, to check durability of save().
 */
export function storageContract(
  make: (confState: ConfState) => Promise<ContractStorage> | ContractStorage,
  reopen?: (s: ContractStorage) => Promise<ContractStorage> | ContractStorage,
): ContractCase[] {
  const conf: ConfState = { voters: ['n1', 'n2', 'n3'], learners: [] };
  const fresh = async () => make(conf);
  return [
    {
      name: 'a fresh storage is empty with the bootstrap configuration',
      run: async () => {
        const s = await fresh();
        expect(s.firstIndex() === 1 && s.lastIndex() === 0, 'fresh log is [1, 0]');
        expect(s.term(0) === 0, 'term(0) is 0');
        const { hardState, confState } = s.initialState();
        expect(hardState.term === 0 && hardState.vote === null && hardState.commit === 0, 'empty hard state');
        expect(confState.voters.join() === 'n1,n2,n3', 'bootstrap voters');
      },
    },
    {
      name: 'save appends entries and hard state together',
      run: async () => {
        const s = await fresh();
        await s.save({ entries: [ent(1, 1), ent(2, 1), ent(3, 2)], hardState: { term: 2, vote: 'n1', commit: 2 } });
        expect(s.lastIndex() === 3 && s.term(3) === 2 && s.term(1) === 1, 'entries stored');
        expect(s.initialState().hardState.vote === 'n1', 'hard state stored');
        const got = s.entries(1, 4, Infinity);
        expect(got.length === 3 && got[2]!.index === 3, 'entries(1,4) returns all three');
        expect(s.entries(1, 4, 1).length === 1, 'maxBytes still returns one entry');
      },
    },
    {
      name: 'save truncates a conflicting suffix',
      run: async () => {
        const s = await fresh();
        await s.save({ entries: [ent(1, 1), ent(2, 1), ent(3, 1)] });
        await s.save({ entries: [ent(2, 3)] });
        expect(s.lastIndex() === 2 && s.term(2) === 3 && s.term(3) === undefined, 'suffix replaced');
      },
    },
    {
      name: 'snapshot and compaction keep the boundary term',
      run: async () => {
        const s = await fresh();
        await s.save({ entries: [ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)] });
        s.createSnapshot(3, conf, new Uint8Array([7]));
        s.compact(3);
        expect(s.firstIndex() === 4 && s.lastIndex() === 4, 'log is [4, 4]');
        expect(s.term(3) === 2 && s.term(2) === undefined, 'term(first-1) known, older unknown');
        expect(s.snapshot().metadata.index === 3 && s.snapshot().data[0] === 7, 'snapshot kept');
      },
    },
    {
      name: 'a snapshot from the leader replaces the log',
      run: async () => {
        const s = await fresh();
        await s.save({ entries: [ent(1, 1), ent(2, 1)] });
        await s.save({
          snapshot: { metadata: { index: 10, term: 4, confState: conf }, data: new Uint8Array([1]) },
          entries: [ent(11, 4)],
          hardState: { term: 4, vote: null, commit: 10 },
        });
        expect(s.firstIndex() === 11 && s.lastIndex() === 11 && s.term(10) === 4, 'log restarts after the snapshot');
        expect(s.initialState().confState.voters.length === 3, 'configuration from the snapshot');
      },
    },
    {
      name: 'saved state survives a restart',
      run: async () => {
        if (reopen === undefined) return;
        const s = await fresh();
        await s.save({ entries: [ent(1, 1), ent(2, 2)], hardState: { term: 2, vote: 'n2', commit: 1, lease: 918 } });
        const r = await reopen(s);
        expect(r.lastIndex() === 2 && r.term(2) === 2, 'entries durable');
        const hs = r.initialState().hardState;
        expect(hs.vote === 'n2', 'hard state durable');
        // The lease promised to a leader bounds the vote-refusal window after a restart.
        expect(hs.lease === 918, 'the promised lease is durable');
      },
    },
  ];
}
