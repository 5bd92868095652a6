// The node's settings as shown to people (the `starting` log line, GET /node): listener
// addresses as host:port, every credential replaced, whatever its source.
import { OPTIONS, type NodeConfig } from './options.js';
import { formatHostPort } from './values.js';

export function settingsView(config: NodeConfig): Record<string, unknown> {
  return redactSecrets({
    ...config,
    listen: formatHostPort(config.listen),
    admin: formatHostPort(config.admin),
    raft: formatHostPort(config.raft),
  });
}

/** Credentials replaced by "[redacted]". */
export function redactSecrets(config: Record<string, unknown>): Record<string, unknown> {
  const out = { ...config };
  for (const option of OPTIONS) if (option.secret === true && out[option.key] !== undefined) out[option.key] = '[redacted]';
  return out;
}
