/** parseArgs' messages are long and mention its own API; say it in the CLI's terms. */
export function rewordParseArgsError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const message = e.message ?? String(err);
  const quoted = /'([^']+)'/.exec(message)?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${quoted ?? ''}`.trim();
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${quoted ?? ''}`.trim();
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const flag = /Option '(?:-\w, )?(--[\w-]+)/.exec(message)?.[1];
      if (!flag) return message;
      // parseArgs also lands here for a value that starts with '-' ("--shutdown-timeout -5s").
      return message.includes('ambiguous') ? `option ${flag} needs a value (for a value starting with '-', write ${flag}=VALUE)` : `option ${flag} needs a value`;
    }
    default:
      return message;
  }
}
