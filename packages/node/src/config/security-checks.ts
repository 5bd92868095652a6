// Closed by default (issue 9): a configuration that would leave the pool open to the
// network does not start. Each refusal says what to set instead.
//
// Which listeners decide what:
// - Peer authentication turns on the Raft listener and the --peers addresses only. They
//   carry the pool's log; whoever can connect to a member's Raft port without proving
//   membership can rewrite the pool. Without a token or peer TLS a cluster starts only
//   with --insecure-peers, and only when --raft and every --peers address are loopback
//   (all members on this host, reachable by this host's processes alone). The flag is
//   explicit rather than implied by loopback addresses, so that a default cluster is an
//   authenticated one even on a developer's machine.
// - The admin listener has its own rule: off loopback it needs --admin-token. Its reads
//   can be closed too (--admin-auth-reads).
// - The proxy listener carries no control traffic and is not considered here.
import { ConfigError } from './config-error.js';
import { isLoopbackHost } from './loopback.js';
import type { NodeConfig } from './options.js';
import { formatHostPort } from './values.js';

const TOKEN_HINT = 'e.g. WELDR_CLUSTER_TOKEN=$(openssl rand -base64 32), the same on every member';

export function checkSecurity(config: NodeConfig): void {
  checkTogether('peer TLS', [['--peer-cert', config.peerCert], ['--peer-key', config.peerKey], ['--peer-ca', config.peerCa]]);
  checkTogether('admin HTTPS', [['--admin-cert', config.adminCert], ['--admin-key', config.adminKey]]);
  if (config.adminClientCa !== undefined && config.adminCert === undefined) {
    throw new ConfigError('--admin-client-ca needs --admin-cert and --admin-key: client certificates are asked for over HTTPS');
  }
  if (config.adminAuthReads && config.adminToken === undefined) {
    throw new ConfigError('--admin-auth-reads needs an admin token: set WELDR_ADMIN_TOKEN (or --admin-token)');
  }
  if (!isLoopbackHost(config.admin.host) && config.adminToken === undefined) {
    throw new ConfigError(
      `the admin API on ${formatHostPort(config.admin)} is reachable from other hosts and has no token: anyone could change the pool. ` +
        'Set WELDR_ADMIN_TOKEN (16+ characters; writes then need "Authorization: Bearer <token>"), or bind --admin to 127.0.0.1',
    );
  }
  checkPeerAuthentication(config);
}

function checkTogether(what: string, items: [string, string | undefined][]): void {
  const given = items.filter(([, v]) => v !== undefined).map(([flag]) => flag);
  if (given.length === 0 || given.length === items.length) return;
  const missing = items.filter(([, v]) => v === undefined).map(([flag]) => flag);
  throw new ConfigError(`${what} needs ${items.map(([flag]) => flag).join(', ')} together; missing: ${missing.join(', ')}`);
}

function checkPeerAuthentication(config: NodeConfig): void {
  const others = config.peers.filter((p) => p.id !== config.id);
  const authenticated = config.clusterToken !== undefined || config.peerCert !== undefined;
  if (config.insecurePeers && authenticated) {
    throw new ConfigError('--insecure-peers turns peer authentication off, but a cluster token or peer certificate is set: drop one or the other');
  }
  // Cluster mode: other seeds, or joining a cluster, or seeding one from a backup.
  if ((others.length === 0 && config.join === undefined && config.restore === undefined) || authenticated) return;
  const joinHost = config.join === undefined ? undefined : new URL(config.join).hostname.replace(/^\[|\]$/g, '');
  const exposed = [
    ...(isLoopbackHost(config.raft.host) ? [] : [`--raft ${formatHostPort(config.raft)}`]),
    ...(config.raftAdvertise === undefined || isLoopbackHost(config.raftAdvertise.host) ? [] : [`--raft-advertise ${formatHostPort(config.raftAdvertise)}`]),
    ...config.peers.filter((p) => !isLoopbackHost(p.address.host)).map((p) => `${p.id}=${formatHostPort(p.address)}`),
    ...(joinHost === undefined || isLoopbackHost(joinHost) ? [] : [`--join ${config.join}`]),
  ];
  if (!config.insecurePeers) {
    throw new ConfigError(
      'cluster mode needs peer authentication: anyone who can reach the Raft port could otherwise rewrite the pool. ' +
        `Set a cluster token (${TOKEN_HINT}), and/or peer TLS with --peer-cert, --peer-key and --peer-ca ('weldr certs init' makes them)` +
        (exposed.length === 0 ? '; or, for a throwaway cluster whose members all run on this host, --insecure-peers' : ''),
    );
  }
  if (exposed.length > 0) {
    throw new ConfigError(`--insecure-peers is allowed only when every member is on loopback; not: ${exposed.join(', ')}. Set a cluster token (${TOKEN_HINT}) or peer TLS instead`);
  }
}
