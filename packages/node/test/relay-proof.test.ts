// The relay proof that lets the leader's audit log trust "arrived at node X from client
// Y" only when a member said so (relay-proof.ts, admin-forward.ts).
import test from 'ava';
import { relayOriginVerifier } from '../src/runtime/admin-forward.js';
import { RELAY_PROOF_MAX_AGE_S, signRelay, verifyRelay, type RelayClaim } from '../src/runtime/relay-proof.js';

const KEY = 'cluster-secret-0123456789';
const claim: RelayClaim = { via: 'n2', client: '192.0.2.7', method: 'POST', target: '/servers' };
const NOW = 1_800_000_000_000;

test('a proof verifies for exactly the claim, key and time window it was made for', (t) => {
  const proof = signRelay(KEY, claim, NOW);
  t.regex(proof, /^t=\d+,sig=[A-Za-z0-9_-]{43}$/);
  t.true(verifyRelay(KEY, claim, proof, NOW));
  t.true(verifyRelay(KEY, claim, proof, NOW + (RELAY_PROOF_MAX_AGE_S - 1) * 1000));
  t.false(verifyRelay(KEY, claim, proof, NOW + (RELAY_PROOF_MAX_AGE_S + 2) * 1000), 'too old');
  t.false(verifyRelay('another-secret', claim, proof, NOW), 'another key');
  for (const changed of [{ via: 'n3' }, { client: '192.0.2.8' }, { method: 'DELETE' }, { target: '/servers/10.0.0.1/80' }]) {
    t.false(verifyRelay(KEY, { ...claim, ...changed }, proof, NOW), JSON.stringify(changed));
  }
  for (const bad of [undefined, '', 'garbage', proof.replace('sig=', 'sig=A'), proof.slice(0, -1), `t=1,sig=${'A'.repeat(43)}`, 'x'.repeat(500)]) {
    t.false(verifyRelay(KEY, claim, bad, NOW), String(bad));
  }
});

test('relayOriginVerifier: signed relay headers are believed; made-up ones, or any without a cluster secret, are not', (t) => {
  const verify = relayOriginVerifier(KEY);
  const headers = {
    'x-weldr-forwarded-by': 'n2',
    'x-weldr-client-address': '192.0.2.7',
    'x-weldr-relay-proof': signRelay(KEY, claim),
  };
  t.deepEqual(verify({ headers, method: 'POST', url: '/servers' }), { nodeId: 'n2', client: '192.0.2.7' });
  t.is(verify({ headers: { ...headers, 'x-weldr-client-address': '198.51.100.1' }, method: 'POST', url: '/servers' }), undefined);
  t.is(verify({ headers: { ...headers, 'x-weldr-relay-proof': undefined }, method: 'POST', url: '/servers' }), undefined);
  t.is(verify({ headers: { ...headers, 'x-weldr-forwarded-by': '../n2' }, method: 'POST', url: '/servers' }), undefined);
  t.is(verify({ headers, method: 'PATCH', url: '/servers' }), undefined);
  t.is(relayOriginVerifier(undefined)({ headers, method: 'POST', url: '/servers' }), undefined);
});
