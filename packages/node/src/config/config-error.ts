/** A configuration problem: the CLI prints the message on one line and exits with EXIT_USAGE. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Exit code for bad usage or configuration (nothing was started). */
export const EXIT_USAGE = 2;
