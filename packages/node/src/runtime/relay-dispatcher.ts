// How a follower reaches the leader's admin API: through a bounded pool, and over HTTPS
// with the leader's certificate verified against the public roots and the cluster CA
// (--peer-ca; without peer TLS, Node's default trust, which NODE_EXTRA_CA_CERTS extends)
// and the host name of the address the membership gives; this node presents its peer certificate, which a
// leader with --admin-client-ca accepts when that bundle holds the cluster CA. Rebuilt
// when the peer certificate is reloaded; the old agent finishes its requests and closes.
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import type { PeerTls } from '@weldr/cluster';

/**
 * Connections to the leader's admin API at most; more relays wait for one. Below the
 * leader's --admin-max-connections-per-source default (64), so a burst of writes through
 * one follower queues here instead of being refused there.
 */
const RELAY_CONNECTIONS = 32;

export interface RelayDispatcher {
  readonly get: () => Dispatcher;
  close(): Promise<void>;
}

export function relayDispatcher(peer: PeerTls | undefined): RelayDispatcher {
  const build = (): Agent => {
    const m = peer?.current;
    // Without peer TLS: the default trust (public roots, NODE_EXTRA_CA_CERTS).
    if (m === undefined) return new Agent({ connections: RELAY_CONNECTIONS });
    return new Agent({ connections: RELAY_CONNECTIONS, connect: { ca: m.ca === undefined ? [...rootCertificates] : [...rootCertificates, m.ca], cert: m.cert, key: m.key } });
  };
  let agent = build();
  const off = peer?.onReload(() => {
    const old = agent;
    agent = build();
    void old.close();
  });
  return {
    get: () => agent,
    close: async () => {
      off?.();
      await agent.close();
    },
  };
}
