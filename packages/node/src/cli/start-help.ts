// `weldr start --help`: built from the option table so it cannot drift.
import { OPTIONS } from '../config/options.js';

export function startHelp(): string {
  const rows: [string, string][] = OPTIONS.map((o) => [`--${o.flag} ${o.valueName}`.trimEnd(), `${o.help} [${o.env}; default ${o.defaultText}]`]);
  rows.unshift(['--config FILE', 'JSON config file with the keys below in camelCase [WELDR_CONFIG]']);
  rows.push(['-h, --help', 'show this help']);
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return `Usage: weldr start [options]

Runs one node: the proxy listener, the admin API and the pool store.
Each option can also be given as an environment variable or a config-file key;
precedence is flags > environment > config file > defaults.
Durations: 500ms, 10s, 2m or a number of milliseconds.

Options:
${rows.map(([flag, text]) => `  ${flag.padEnd(width)}${text}`).join('\n')}
`;
}
