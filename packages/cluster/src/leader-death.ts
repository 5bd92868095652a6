// Evidence that the leader's process is gone, for the fast failover path
// (--raft-fast-failover; packages/raft README "Fast failover").
//
// A follower keeps the promise it made to its leader (no vote, no campaign) for about an
// election timeout after each round it accepted; that promise is what keeps two nodes
// from being active. When the leader's process has died, nothing acts on its lease any
// more: its /ready, its proxy workers and its VIP guard die or stop with it. The
// follower may then waive the promise — but only on evidence of the death, never on
// silence (a paused or cut-off leader is silent too):
//
// 1. an established, authenticated connection with the leader ended (FIN or RST): a
//    live process, even one stopped with SIGSTOP, never closes them; then
// 2. fresh TCP connects to the leader's Raft address are refused (ECONNREFUSED: the
//    kernel answered the SYN with a RST because no socket listens there) twice in a row,
//    a few ms apart. A paused process keeps its listening socket and the kernel still
//    accepts. A timeout or any other error is no evidence and ends the check; an
//    accepted connection is no evidence either, but the check probes again (up to
//    MAX_PROBES times): a dying process's connections may close a moment before its
//    listening socket does.
// 3. Then the leader's admin address (from its member record) is probed, and a
//    connection it accepts vetoes the evidence: the process still listens there, so the
//    refusal came from something between us (a firewall REJECT rule or a relay on the
//    Raft port only). A refused or unreachable admin address adds nothing (it may be
//    bound to the leader's own loopback, or filtered) and is skipped when it names
//    loopback while the Raft address does not. A host-wide REJECT rule refuses both
//    ports and is not caught: that is what --raft-fast-failover off is for.
//
// A vote request made on such evidence (its context names the leader and term) makes
// a voter whose own connections with that leader are down run the same check, so a
// voter that missed the close (or probed during the exit) still checks for itself.
// Each member checks for itself; the core grants a vote on this evidence only to a
// candidate that saw the same (RawNode.leaderGone), so one member's false evidence
// elects nobody.
import net from 'node:net';
import type { NodeId } from '@weldr/raft';
import type { HostPort } from './types.js';

export type ProbeOutcome = 'refused' | 'accepted' | 'timeout' | 'error';

/** Probe timeout: a refusal from a host on the LAN takes one round trip. */
export const PROBE_TIMEOUT_MS = 250;
/** The gap between two Raft probes. */
export const PROBE_GAP_MS = 5;
/**
 * Raft probes per check, at most. A dying process's kernel may send the FIN or RST of a
 * connection a moment before it closes the listening socket, so a probe right after the
 * close can still be accepted (then reset): the check goes on a few more times, and
 * needs two refusals in a row.
 */
export const MAX_PROBES = 8;

/** One TCP connect to `address`: refused (ECONNREFUSED), accepted (closed at once), or neither. */
export function probeTcp(address: HostPort, timeoutMs = PROBE_TIMEOUT_MS): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let done = false;
    const s = net.connect({ host: address.host, port: address.port });
    const finish = (o: ProbeOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    timer.unref();
    s.once('connect', () => finish('accepted'));
    s.once('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED' ? 'refused' : 'error'));
  });
}

export interface LeaderDeathLogger {
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface LeaderDeathOptions {
  readonly self: NodeId;
  /** The current term, role and leader as this node's Raft core sees them. */
  readonly view: () => { readonly term: number; readonly leader: NodeId | null; readonly role: string };
  /** Where the member last proved who it is (an outbound connection it welcomed); undefined: no probe, no evidence. */
  readonly raftAddress: (id: NodeId) => HostPort | undefined;
  /** Whether this node has an established connection with the member, either way. */
  readonly connected: (id: NodeId) => boolean;
  /** The member's admin address from its record, if any. */
  readonly adminAddress: (id: NodeId) => HostPort | undefined;
  /** Whether to look at all now (the flag, fault-injection isolation). */
  readonly enabled: () => boolean;
  /** The evidence holds: tell the core. Resolves with whether the core waived its promise. */
  readonly leaderGone: (term: number, leader: NodeId) => Promise<boolean>;
  readonly log: LeaderDeathLogger;
  /** Injected in tests. */
  readonly probe?: (address: HostPort) => Promise<ProbeOutcome>;
  readonly sleep?: (ms: number) => Promise<void>;
}

export class LeaderDeathWatch {
  /** The (term, leader) being checked now: one check at a time per leader and term. */
  private checking: string | null = null;
  private fired = 0;
  private readonly probe: (address: HostPort) => Promise<ProbeOutcome>;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: LeaderDeathOptions) {
    this.probe = opts.probe ?? ((a) => probeTcp(a));
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Times the evidence made this node waive its promise (weldr_raft_fast_failovers_total). */
  get fastFailovers(): number {
    return this.fired;
  }

  /** An authenticated connection with `peer` ended (transport onPeerClosed). */
  connectionClosed(peer: NodeId): void {
    this.start(peer);
  }

  /**
   * A candidate asks for our vote saying that `leader` of `term` is gone (its vote
   * request's context). We check for ourselves, if our own connections with it are
   * down (we may have missed its close, or probed during its exit): the core grants
   * such a vote only on our own evidence.
   */
  candidateSaysGone(term: number, leader: NodeId): void {
    if (this.opts.view().term !== term || this.opts.connected(leader)) return;
    this.start(leader);
  }

  private start(peer: NodeId): void {
    if (!this.opts.enabled()) return;
    const { term, leader, role } = this.opts.view();
    if (leader !== peer || peer === this.opts.self || role === 'leader') return;
    const key = `${term} ${peer}`;
    if (this.checking === key) return;
    this.checking = key;
    void this.check(term, peer).finally(() => {
      if (this.checking === key) this.checking = null;
    });
  }

  private async check(term: number, leader: NodeId): Promise<void> {
    const raft = this.opts.raftAddress(leader);
    if (raft === undefined) return;
    let admin = this.opts.adminAddress(leader);
    if (admin !== undefined && isLoopback(admin.host) && !isLoopback(raft.host)) admin = undefined;
    let refusals = 0;
    let last: ProbeOutcome = 'error';
    for (let n = 0; n < MAX_PROBES && refusals < 2; n++) {
      if (n > 0) await this.sleep(PROBE_GAP_MS);
      last = await this.probe(raft);
      if (last === 'refused') refusals++;
      else if (last === 'accepted') refusals = 0; // listening (still, or again): not yet evidence
      else return this.noEvidence(term, leader, `raft probe ${last}`);
    }
    if (refusals < 2) return this.noEvidence(term, leader, `raft probe ${last}`);
    // Probed after the Raft port refused: a process that is gone is gone from both.
    const adminOutcome = admin === undefined ? 'error' : await this.probe(admin);
    if (adminOutcome === 'accepted') return this.noEvidence(term, leader, 'the admin address accepts connections');
    // The evidence is about this leader of this term: the core ignores it otherwise.
    const now = this.opts.view();
    if (now.term !== term || !this.opts.enabled()) return;
    if (!(await this.opts.leaderGone(term, leader))) return;
    this.fired++;
    this.opts.log.info(
      { event: 'raft_fast_failover', leader, term, address: `${raft.host}:${raft.port}`, admin: admin === undefined ? 'not probed' : adminOutcome },
      `raft: leader ${leader} of term ${term} is gone (its connections closed, its Raft port refuses connections): promise waived, campaigning now`,
    );
  }

  private noEvidence(term: number, leader: NodeId, why: string): void {
    this.opts.log.debug({ event: 'raft_leader_alive', leader, term, why }, `raft: connection with leader ${leader} closed, but no evidence its process is gone (${why})`);
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
