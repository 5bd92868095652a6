// Where the members and origins of `weldr dev-cluster` listen and keep their data.
import { join } from 'node:path';
import { ConfigError } from '../config/config-error.js';

export const DEFAULT_PROXY_PORTS = [8080, 8090, 8100] as const;
export const DEFAULT_ADMIN_PORTS = [8687, 8697, 8707] as const;
export const DEFAULT_RAFT_PORTS = [8688, 8698, 8708] as const;
export const DEFAULT_ORIGIN_PORTS = [8081, 8082] as const;
export const DEFAULT_DATA = './data';

export interface DevMember {
  readonly id: string;
  readonly proxyPort: number;
  readonly adminPort: number;
  readonly raftPort: number;
  readonly dataDir: string;
  readonly logFile: string;
}

export interface DevOrigin {
  readonly id: string;
  /** 0: an ephemeral port, learnt from the origin's listening line. */
  readonly port: number;
  readonly logFile: string;
}

export interface DevLayout {
  readonly host: string;
  readonly dataRoot: string;
  readonly members: readonly DevMember[];
  readonly origins: readonly DevOrigin[];
}

export interface LayoutFlags {
  readonly data?: string;
  readonly proxyPorts?: string;
  readonly adminPorts?: string;
  readonly raftPorts?: string;
  readonly originPorts?: string;
}

function ports(raw: string | undefined, fallback: readonly number[], flag: string, allowZero: boolean): number[] {
  if (raw === undefined) return [...fallback];
  if (raw.trim() === '') return [];
  return raw.split(',').map((p) => {
    const n = Number(p.trim());
    if (!/^[0-9]+$/.test(p.trim()) || n > 65535 || (n === 0 && !allowZero)) {
      throw new ConfigError(`--${flag}: "${p}" is not a port${allowZero ? ' (0: any free port)' : ''}`);
    }
    return n;
  });
}

/** The layout from the flags; every port must be distinct, one entry per member in each list. */
export function devLayout(flags: LayoutFlags): DevLayout {
  const proxy = ports(flags.proxyPorts, DEFAULT_PROXY_PORTS, 'proxy-ports', false);
  const admin = ports(flags.adminPorts, DEFAULT_ADMIN_PORTS, 'admin-ports', false);
  const raft = ports(flags.raftPorts, DEFAULT_RAFT_PORTS, 'raft-ports', false);
  const origin = ports(flags.originPorts, DEFAULT_ORIGIN_PORTS, 'origin-ports', true);
  if (proxy.length === 0 || proxy.length !== admin.length || proxy.length !== raft.length) {
    throw new ConfigError(`--proxy-ports, --admin-ports and --raft-ports need one port per member, as many in each list (got ${proxy.length}, ${admin.length}, ${raft.length})`);
  }
  if (proxy.length > 7) throw new ConfigError('a dev cluster has at most 7 members');
  const fixed = [...proxy, ...admin, ...raft, ...origin.filter((p) => p !== 0)];
  const twice = fixed.find((p, i) => fixed.indexOf(p) !== i);
  if (twice !== undefined) throw new ConfigError(`port ${twice} is given twice; every listener needs its own port`);
  const dataRoot = flags.data ?? DEFAULT_DATA;
  return {
    host: '127.0.0.1',
    dataRoot,
    members: proxy.map((p, i) => ({
      id: `n${i + 1}`,
      proxyPort: p,
      adminPort: admin[i]!,
      raftPort: raft[i]!,
      dataDir: join(dataRoot, `n${i + 1}`),
      logFile: join(dataRoot, `n${i + 1}.log`),
    })),
    origins: origin.map((p, i) => ({ id: `origin-${i + 1}`, port: p, logFile: join(dataRoot, `origin-${i + 1}.log`) })),
  };
}
