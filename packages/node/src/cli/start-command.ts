// `weldr start`: load the configuration, then hand it to the node runtime.
import { ConfigError } from '../config/config-error.js';
import { loadConfig } from '../config/load-config.js';
import { startHelp } from './help.js';

export async function startCommand(argv: readonly string[]): Promise<number> {
  const loaded = loadConfig({ argv, env: process.env });
  if (loaded.help) {
    process.stdout.write(startHelp());
    return 0;
  }
  const { config } = loaded;
  const others = config.peers.filter((p) => p.id !== config.id);
  if (others.length > 0) {
    throw new ConfigError(`clustering is not yet available: --peers/WELDR_PEERS/"peers" must list no other node (got ${others.map((p) => p.id).join(', ')})`);
  }
  throw new ConfigError('not yet implemented');
}
