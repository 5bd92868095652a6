import test from 'ava';
import { PendingConnections, sourceOf } from '../src/pending-connections.js';
import { makeProof, proofMatches } from '../src/peer-proof.js';

test('pending connections: capped per source and in total; released places are free again', (t) => {
  const p = new PendingConnections(3, 2);
  t.is(p.admit('a'), 'admitted');
  t.is(p.admit('a'), 'admitted');
  t.is(p.admit('a'), 'too_many_from_source');
  t.is(p.admit('b'), 'admitted');
  t.is(p.admit('c'), 'too_many_pending');
  p.release('a');
  t.is(p.admit('c'), 'admitted');
  t.is(p.size, 3);
  p.release('nobody');
  t.is(p.size, 3, 'releasing an unknown source changes nothing');
});

test('sourceOf: IPv4 as is, IPv4-mapped as IPv4, IPv6 by its /64', (t) => {
  t.is(sourceOf('10.1.2.3'), '10.1.2.3');
  t.is(sourceOf('::ffff:10.1.2.3'), '10.1.2.3');
  t.is(sourceOf('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  t.is(sourceOf('2001:db8:1:2::ffff'), '2001:db8:1:2::/64');
  t.is(sourceOf('2001:0db8:0001:0002:0:0:0:1'), '2001:db8:1:2::/64');
  t.is(sourceOf('::1'), '0:0:0:0::/64');
  t.is(sourceOf(undefined), 'unknown');
});

test('proofs: bound to the token, the role, both nonces and both ids', (t) => {
  const input = { serverNonce: 'Ns', clientNonce: 'Nc', from: 'a', to: 'b' };
  const p = makeProof('token-0123456789abcdef', 'client', input);
  t.true(proofMatches('token-0123456789abcdef', 'client', input, p));
  t.false(proofMatches('token-0123456789abcdeX', 'client', input, p));
  t.false(proofMatches('token-0123456789abcdef', 'server', input, p), 'a client proof is no server proof (no reflection)');
  for (const k of ['serverNonce', 'clientNonce', 'from', 'to'] as const) t.false(proofMatches('token-0123456789abcdef', 'client', { ...input, [k]: 'x' }, p), k);
  for (const bad of [undefined, '', 'short', p.slice(0, -4), 42, 'A'.repeat(10_000)]) t.false(proofMatches('token-0123456789abcdef', 'client', input, bad), String(bad).slice(0, 20));
});
