// `weldr dev-cluster`: parse the flags, run the local cluster until a signal.
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config-error.js';
import { rewordParseArgsError } from '../config/parse-args-error.js';
import { devLayout } from '../dev-cluster/layout.js';
import { runDevCluster } from '../dev-cluster/run.js';
import { DEV_CLUSTER_HELP } from './help.js';

export async function devClusterCommand(argv: readonly string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        data: { type: 'string' },
        'proxy-ports': { type: 'string' },
        'admin-ports': { type: 'string' },
        'raft-ports': { type: 'string' },
        'origin-ports': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new ConfigError(rewordParseArgsError(err));
  }
  if (values.help) {
    process.stdout.write(DEV_CLUSTER_HELP);
    return 0;
  }
  const layout = devLayout({
    ...(values.data === undefined ? {} : { data: values.data }),
    ...(values['proxy-ports'] === undefined ? {} : { proxyPorts: values['proxy-ports'] }),
    ...(values['admin-ports'] === undefined ? {} : { adminPorts: values['admin-ports'] }),
    ...(values['raft-ports'] === undefined ? {} : { raftPorts: values['raft-ports'] }),
    ...(values['origin-ports'] === undefined ? {} : { originPorts: values['origin-ports'] }),
  });
  return runDevCluster(layout, { out: (text) => void process.stdout.write(text) });
}
