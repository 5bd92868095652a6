// The rules `weldr start` adds in cluster mode, on top of each value's own parser: the
// node's own --peers entry agrees with --raft (or --raft-advertise), --restore and --join
// are used alone, a durable store. (The Raft timers are checked by the loader in every
// mode: the lease they give must last two heartbeats.)
import { ConfigError } from './config-error.js';
import { checkFeatureConfig } from './feature-rules.js';
import type { NodeConfig } from './options.js';
import { formatHostPort } from './values.js';

/** Cluster mode's extra rules (the values themselves are checked by the loader). */
export function checkClusterConfig(loadedConfig: NodeConfig, raftIsDefault: boolean): NodeConfig {
  checkFeatureConfig(loadedConfig);
  let config = loadedConfig;
  // The same member list on every node: this node's own entry is its Raft address —
  // or, with --raft-advertise, the address peers reach it at.
  const self = config.peers.find((p) => p.id === config.id);
  if (self !== undefined && config.raftAdvertise !== undefined) {
    const a = config.raftAdvertise;
    if (a.host !== self.address.host || a.port !== self.address.port) {
      throw new ConfigError(`--peers gives ${config.id} the address ${formatHostPort(self.address)} but --raft-advertise is ${formatHostPort(a)}; make them agree`);
    }
  } else if (self !== undefined) {
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
  if (config.restore !== undefined && others.length > 0) {
    throw new ConfigError('--restore seeds a new cluster with this node as its only member; leave --peers out and start the other members with --join');
  }
  if (config.restore !== undefined && config.join !== undefined) {
    throw new ConfigError('--restore seeds a new cluster and --join joins an existing one: give one of them');
  }
  if (others.length === 0 && config.join === undefined && config.restore === undefined) return config;
  if (config.store !== 'level') {
    const why = others.length > 0 ? '--peers names other members' : config.join !== undefined ? '--join' : '--restore';
    throw new ConfigError(`cluster mode (${why}) needs --store level: the Raft log must survive restarts`);
  }
  return config;
}
