// The rules `weldr start` adds in cluster mode, on top of each value's own parser: the
// node's own --peers entry agrees with --raft, a durable store. (The Raft timers are
// checked by the loader in every mode: the lease they give must last two heartbeats.)
import { ConfigError } from './config-error.js';
import { checkFeatureConfig } from './feature-rules.js';
import type { NodeConfig } from './options.js';
import { formatHostPort } from './values.js';

/** Cluster mode's extra rules (the values themselves are checked by the loader). */
export function checkClusterConfig(loadedConfig: NodeConfig, raftIsDefault: boolean): NodeConfig {
  checkFeatureConfig(loadedConfig);
  let config = loadedConfig;
  // The same member list on every node: this node's own entry is its Raft address.
  const self = config.peers.find((p) => p.id === config.id);
  if (self !== undefined) {
    // --raft may bind a wildcard while the list names this node as peers reach it
    // (0.0.0.0:8688 and weldr-0.weldr-peers:8688 in Kubernetes): then the ports agree.
    const wildcard = config.raft.host === '0.0.0.0' || config.raft.host === '::';
    const same = self.address.port === config.raft.port && (wildcard || self.address.host === config.raft.host);
    if (raftIsDefault) config = { ...config, raft: self.address };
    else if (!same) {
      throw new ConfigError(`--peers gives ${config.id} the address ${formatHostPort(self.address)} but --raft is ${formatHostPort(config.raft)}; make them agree or leave --raft out`);
    }
  }
  const others = config.peers.filter((p) => p.id !== config.id);
  if (others.length === 0) return config;
  if (config.store !== 'level') {
    throw new ConfigError('cluster mode (--peers names other members) needs --store level: the Raft log must survive restarts');
  }
  return config;
}
