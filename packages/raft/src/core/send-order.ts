import type { Message } from '../types.js';

/**
 * Whether a message of a Ready may be sent before that Ready's entries and hard state
 * are durable (it may always be sent after).
 *
 * The leader's replication traffic may (thesis §10.2.1: "the leader can write to its
 * disk in parallel with replicating to the followers"): MsgApp, MsgHeartbeat and MsgSnap
 * carry entries and a commit index, and promise nothing about the leader's own disk — a
 * leader counts its own log toward a commit only once it is written (Raft.persisted), so
 * a commit index it sends was reached by a quorum of durable copies. MsgTimeoutNow and the
 * ReadIndex exchange promise nothing durable either.
 *
 * Everything else waits for the write: acknowledgements (MsgAppResp, MsgSnapResp) promise
 * the entries are on disk; MsgHeartbeatResp and MsgAppResp echo a lease promise that must
 * survive a crash (HardState.lease); votes and pre-vote answers promise the term and vote;
 * a candidate's vote requests rest on its own persisted vote.
 */
export function mayPrecedePersistence(m: Message): boolean {
  switch (m.type) {
    case 'MsgApp':
    case 'MsgHeartbeat':
    case 'MsgSnap':
    case 'MsgTimeoutNow':
    case 'MsgReadIndex':
    case 'MsgReadIndexResp':
      return true;
    default:
      return false;
  }
}
