// Rules across the serving, VIP and fault-injection settings, checked before anything
// starts (each value's own parser has run already).
import { ConfigError } from './config-error.js';
import type { NodeConfig } from './options.js';
import { isLoopbackHost } from './loopback.js';
import { formatHostPort } from './values.js';

export function checkFeatureConfig(config: NodeConfig): void {
  if ((config.vip === undefined) !== (config.vipInterface === undefined)) {
    throw new ConfigError(config.vip === undefined ? '--vip-interface needs --vip ADDRESS/PREFIX' : '--vip needs --vip-interface IF (the interface the address goes on)');
  }
  if (config.vip !== undefined && config.serve === 'all') {
    throw new ConfigError('--vip needs --serve active-passive: in --serve all every node serves, behind a load balancer, and no single node holds an address');
  }
  if (!config.faultInjection) return;
  if (!config.peers.some((p) => p.id !== config.id)) {
    throw new ConfigError('--fault-injection on needs cluster mode (--peers naming other members): step-down and isolation are drills of a cluster');
  }
  if (config.adminToken === undefined && !isLoopbackHost(config.admin.host)) {
    throw new ConfigError(`--fault-injection on with the admin API on ${formatHostPort(config.admin)} needs --admin-token: anyone who can reach it could step the leader down`);
  }
}
