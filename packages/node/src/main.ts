// The `weldr` CLI entry point: bin/weldr.js calls main(argv) and exits with its result.
import { pathToFileURL } from 'node:url';
import { DEV_CLUSTER_HELP, MAIN_HELP, TEST_SERVER_HELP } from './cli/help.js';
import { weldrVersion } from './cli/version.js';
import { ConfigError, EXIT_USAGE } from './config/config-error.js';
import { CTL_NOUNS } from './ctl/nouns.js';

// Each command's module is loaded only when it runs: an operator command (`weldr servers
// list`) should not pay for loading the proxy, Raft and LevelDB that `weldr start` needs.
const isCtlNoun = (word: string | undefined): word is string => word !== undefined && (CTL_NOUNS as readonly string[]).includes(word);
const runCtl = async (noun: string, argv: readonly string[]): Promise<number> => (await import('./ctl/run.js')).runCtl(noun, argv);

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
        if (isCtlNoun(rest[0])) return await runCtl(rest[0], ['--help']);
        if (rest[0] === 'start') process.stdout.write((await import('./cli/start-help.js')).startHelp());
        else if (rest[0] === 'certs') process.stdout.write((await import('./cli/certs-command.js')).CERTS_HELP);
        else process.stdout.write(rest[0] === 'test-server' ? TEST_SERVER_HELP : rest[0] === 'dev-cluster' ? DEV_CLUSTER_HELP : MAIN_HELP);
        return 0;
      case '-v':
      case '--version':
      case 'version':
        process.stdout.write(`weldr ${weldrVersion()}\n`);
        return 0;
      case 'start':
        return await (await import('./cli/start-command.js')).startCommand(rest);
      case 'test-server':
        return await (await import('./cli/test-server-command.js')).testServerCommand(rest);
      case 'dev-cluster':
        return await (await import('./cli/dev-cluster-command.js')).devClusterCommand(rest);
      case 'certs':
        return (await import('./cli/certs-command.js')).certsCommand(rest);
      default:
        if (isCtlNoun(command)) return await runCtl(command, rest);
        throw new ConfigError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      const where = command === 'start' || command === 'test-server' || command === 'dev-cluster' || command === 'certs' ? `weldr ${command}` : 'weldr';
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
