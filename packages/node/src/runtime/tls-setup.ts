// The node's TLS material: peer TLS (--peer-cert/--peer-key/--peer-ca) and admin HTTPS
// (--admin-cert/--admin-key, --admin-client-ca). Read and checked at start — an
// unusable file is a configuration error (exit 2) naming the flag — then re-read on
// SIGHUP and whenever a file changes.
import { openPeerTls, readCaBundle, readTlsMaterial, ReloadableTls, TlsFilesError, type PeerTls, type TlsMaterial } from '@weldr/cluster';
import { ConfigError } from '../config/config-error.js';
import type { NodeConfig } from '../config/options.js';
import type { Logger } from './logger.js';

export interface NodeTls {
  readonly peer: PeerTls | undefined;
  readonly admin: ReloadableTls<TlsMaterial> | undefined;
  /** Re-reads every file now (SIGHUP). */
  reload(trigger: string): void;
  /** Stops watching the files. */
  close(): void;
}

export function openNodeTls(config: NodeConfig, log: Logger): NodeTls {
  const tlsLog = log.child({ component: 'tls' });
  let peer: PeerTls | undefined;
  let admin: ReloadableTls<TlsMaterial> | undefined;
  try {
    if (config.peerCert !== undefined && config.peerKey !== undefined && config.peerCa !== undefined) {
      peer = openPeerTls({ cert: config.peerCert, key: config.peerKey, ca: config.peerCa }, config.id, tlsLog);
    }
    if (config.adminCert !== undefined && config.adminKey !== undefined) {
      const files = { cert: config.adminCert, key: config.adminKey, ca: config.adminClientCa };
      admin = new ReloadableTls({
        name: 'admin TLS',
        paths: [files.cert, files.key, ...(files.ca === undefined ? [] : [files.ca])],
        // The client CA bundle vouches for clients, not for the admin certificate: it is
        // read and checked for being PEM, but the certificate need not chain to it.
        load: () => {
          const own = readTlsMaterial({ cert: files.cert, key: files.key }, { cert: '--admin-cert', key: '--admin-key', ca: '--admin-client-ca' });
          if (files.ca === undefined) return own;
          const clients = readCaBundle(files.ca, '--admin-client-ca');
          return { ...own, ca: clients.ca, caCerts: clients.caCerts };
        },
        log: tlsLog,
      });
    }
  } catch (err) {
    if (err instanceof TlsFilesError) throw new ConfigError(err.message);
    throw err;
  }
  peer?.watch();
  admin?.watch();
  return {
    peer,
    admin,
    reload(trigger) {
      peer?.reload(trigger);
      admin?.reload(trigger);
    },
    close() {
      peer?.close();
      admin?.close();
    },
  };
}
