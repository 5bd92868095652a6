// The `weldr` CLI entry point: bin/weldr.js calls main(argv) and exits with its result.
import { MAIN_HELP, startHelp, TEST_SERVER_HELP } from './cli/help.js';
import { startCommand } from './cli/start-command.js';
import { testServerCommand } from './cli/test-server-command.js';
import { weldrVersion } from './cli/version.js';
import { ConfigError, EXIT_USAGE } from './config/config-error.js';

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '-h':
      case '--help':
        process.stdout.write(MAIN_HELP);
        return command === undefined ? EXIT_USAGE : 0;
      case 'help':
        process.stdout.write(rest[0] === 'start' ? startHelp() : rest[0] === 'test-server' ? TEST_SERVER_HELP : MAIN_HELP);
        return 0;
      case '-v':
      case '--version':
      case 'version':
        process.stdout.write(`weldr ${weldrVersion()}\n`);
        return 0;
      case 'start':
        return await startCommand(rest);
      case 'test-server':
        return await testServerCommand(rest);
      default:
        throw new ConfigError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      const where = command === 'start' || command === 'test-server' ? `weldr ${command}` : 'weldr';
      process.stderr.write(`${where}: ${err.message} (see '${where} --help')\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}
