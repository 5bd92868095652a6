// The `weldr` CLI entry point: bin/weldr.js calls main(argv) and exits with its result.
import { pathToFileURL } from 'node:url';
import { DEV_CLUSTER_HELP, MAIN_HELP, startHelp, TEST_SERVER_HELP } from './cli/help.js';
import { devClusterCommand } from './cli/dev-cluster-command.js';
import { startCommand } from './cli/start-command.js';
import { testServerCommand } from './cli/test-server-command.js';
import { weldrVersion } from './cli/version.js';
import { ConfigError, EXIT_USAGE } from './config/config-error.js';
import { isCtlNoun, runCtl } from './ctl/run.js';

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
        if (isCtlNoun(rest[0])) return await runCtl(rest[0]!, ['--help']);
        process.stdout.write(rest[0] === 'start' ? startHelp() : rest[0] === 'test-server' ? TEST_SERVER_HELP : rest[0] === 'dev-cluster' ? DEV_CLUSTER_HELP : MAIN_HELP);
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
      case 'dev-cluster':
        return await devClusterCommand(rest);
      default:
        if (isCtlNoun(command)) return await runCtl(command, rest);
        throw new ConfigError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      const where = command === 'start' || command === 'test-server' || command === 'dev-cluster' ? `weldr ${command}` : 'weldr';
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
