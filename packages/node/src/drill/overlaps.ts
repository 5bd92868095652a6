// Two active nodes at once, judged from /ready samples taken over HTTP. A sample only
// says that the member was active at some instant between sending the request and
// reading the answer; on a loaded machine that interval can last hundreds of
// milliseconds, so two 200 answers whose intervals overlap do not show two active nodes
// (the old one may have answered early, the new one late). The term in each 200 answer
// (GET /ready) decides instead:
//
// - two members active in the same term: impossible in Raft (one leader per term,
//   thesis §3.6) — always a violation;
// - a member active in an older term *after* another was seen active in a newer one
//   (the old answer's request was sent after the new answer arrived): the old lease
//   outlived the election of the next leader, which the lease exists to prevent
//   (thesis §6.4) — a violation.
//
// A real overlap lasts longer than one sampling interval, so the next samples of the
// old node (sent after the new node's 200 arrived) still find it active and are caught
// by the second rule. Answers without a term (an older node) fall back to overlapping
// intervals.
import type { Overlap, ReadySample } from './report.js';

interface Seen {
  readonly member: string;
  readonly sample: ReadySample;
}

export class OverlapDetector {
  /** Per term: the 200 answer that arrived first, and the one whose request left last. */
  private readonly firstArrived = new Map<number, Seen>();
  private readonly lastSent = new Map<number, Seen>();
  /** Per term, the members seen active in it. */
  private readonly membersInTerm = new Map<number, Set<string>>();
  /** Term-less 200 answers, per member: the latest (by sentAt). */
  private readonly untermed = new Map<string, ReadySample>();

  /** Record a 200 answer; returns the violations it reveals. */
  add(s: ReadySample): Overlap[] {
    if (s.active !== true) return [];
    return s.term === undefined ? this.byIntervals(s) : this.byTerms(s, s.term);
  }

  private byTerms(s: ReadySample, term: number): Overlap[] {
    const out: Overlap[] = [];
    const members = this.membersInTerm.get(term) ?? new Set<string>();
    for (const other of members) if (other !== s.member) out.push({ at: s.at, members: [other, s.member].sort(), terms: [term, term], rule: 'same-term' });
    members.add(s.member);
    this.membersInTerm.set(term, members);
    for (const [t, first] of this.firstArrived) {
      // This answer is of an older term, and its request left after a newer term's 200 arrived.
      if (t > term && first.member !== s.member && s.sentAt > first.sample.at) out.push({ at: s.at, members: [first.member, s.member].sort(), terms: [term, t], rule: 'older-term-after-newer' });
    }
    for (const [t, last] of this.lastSent) {
      // This answer is of a newer term, and an older term's request left after it arrived
      // (answers complete out of order: that older one may have been recorded first).
      if (t < term && last.member !== s.member && last.sample.sentAt > s.at) out.push({ at: s.at, members: [last.member, s.member].sort(), terms: [t, term], rule: 'older-term-after-newer' });
    }
    const first = this.firstArrived.get(term);
    if (first === undefined || s.at < first.sample.at) this.firstArrived.set(term, { member: s.member, sample: s });
    const last = this.lastSent.get(term);
    if (last === undefined || s.sentAt > last.sample.sentAt) this.lastSent.set(term, { member: s.member, sample: s });
    return out;
  }

  private byIntervals(s: ReadySample): Overlap[] {
    const out: Overlap[] = [];
    for (const [other, o] of this.untermed) {
      if (other !== s.member && o.sentAt <= s.at && s.sentAt <= o.at) out.push({ at: s.at, members: [other, s.member].sort(), rule: 'intervals' });
    }
    const last = this.untermed.get(s.member);
    if (last === undefined || last.sentAt <= s.sentAt) this.untermed.set(s.member, s);
    return out;
  }
}
