// The `weldr` CLI entry point: bin/weldr.js calls main(argv) and exits with its result.
import { pathToFileURL } from 'node:url';
import { MAIN_HELP, startHelp, TEST_SERVER_HELP } from './cli/help.js';
import { startCommand } from './cli/start-command.js';
import { testServerCommand } from './cli/test-server-command.js';
import { certsCommand, CERTS_HELP } from './cli/certs-command.js';
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
        process.stdout.write(rest[0] === 'start' ? startHelp() : rest[0] === 'test-server' ? TEST_SERVER_HELP : rest[0] === 'certs' ? CERTS_HELP : MAIN_HELP);
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
      case 'certs':
        return certsCommand(rest);
      default:
        throw new ConfigError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      const where = command === 'start' || command === 'test-server' || command === 'certs' ? `weldr ${command}` : 'weldr';
      process.stderr.write(`${where}: ${err.message} (see '${where} --help')\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}

// Run directly (`tsx packages/node/src/main.ts start`, as `npm run dev` does) rather than
// through bin/weldr.js: act as the entry point.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`weldr: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
