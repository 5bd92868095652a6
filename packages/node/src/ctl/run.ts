// Dispatch of the operator commands: `weldr <noun> <verb> [args] [options]`.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { ConfigError, EXIT_USAGE } from '../config/config-error.js';
import { AdminClient } from './client.js';
import { COMMON_HELP, parseCommand } from './common-options.js';
import type { CtlIo, NounSpec, VerbSpec } from './context.js';
import { CtlError, EXIT_CODES_HELP, EXIT_OK } from './errors.js';
import type { CTL_NOUNS } from './nouns.js';
import { json } from './render.js';
import { CLUSTER } from './commands/cluster.js';
import { MEMBER } from './commands/member.js';
import { SERVERS } from './commands/servers.js';
import { SETTINGS } from './commands/settings.js';
import { SNAPSHOT } from './commands/snapshot.js';
import { STATS } from './commands/stats.js';
import { DRILL } from '../drill/command.js';

export const NOUNS: Readonly<Record<(typeof CTL_NOUNS)[number], NounSpec>> = { servers: SERVERS, cluster: CLUSTER, member: MEMBER, stats: STATS, settings: SETTINGS, snapshot: SNAPSHOT, drill: DRILL };

export const processIo: CtlIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  readFile: (path) => readFileSync(path, 'utf8'),
  writeFile: writeFileAtomic,
};

/** A backup or export is either complete or absent: written aside, synced, then renamed. */
function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Runs `weldr <noun> …` and returns the exit code; never throws for expected failures. */
export async function runCtl(noun: string, argv: readonly string[], io: CtlIo = processIo, env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  const spec = (NOUNS as Readonly<Record<string, NounSpec>>)[noun];
  if (spec === undefined) throw new Error(`not an operator command: ${noun}`);
  let where = `weldr ${noun}`;
  let jsonOutput = false;
  try {
    const [first, ...rest] = argv;
    let verbName: string;
    let args: readonly string[];
    if (first === undefined || first.startsWith('-')) {
      if (spec.defaultVerb === undefined) {
        if (first === '-h' || first === '--help') {
          io.out(nounHelp(noun, spec));
          return EXIT_OK;
        }
        throw new ConfigError(`needs a command: ${Object.keys(spec.verbs).join(', ')}`);
      }
      [verbName, args] = [spec.defaultVerb, argv];
    } else {
      [verbName, args] = [first, rest];
    }
    const verb = spec.verbs[verbName];
    if (verb === undefined || !Object.hasOwn(spec.verbs, verbName)) throw new ConfigError(`unknown command "${verbName}"; one of: ${Object.keys(spec.verbs).join(', ')}`);
    if (spec.defaultVerb === undefined) where = `weldr ${noun} ${verbName}`;
    const parsed = parseCommand(args, verb.flags ?? {}, env);
    jsonOutput = parsed.common.json;
    if (parsed.values['help'] === true) {
      io.out(spec.defaultVerb === undefined ? verbHelp(`${noun} ${verbName}`, verb) : verbHelp(noun, verb));
      return EXIT_OK;
    }
    const n = parsed.positionals.length;
    if (n < verb.minArgs) throw new ConfigError(`needs ${verb.args}`);
    if (n > verb.maxArgs) throw new ConfigError(verb.maxArgs === 0 ? `takes no arguments, got "${parsed.positionals[0]}"` : `takes at most ${verb.maxArgs} argument${verb.maxArgs === 1 ? '' : 's'} (${verb.args})`);
    const client = new AdminClient(parsed.common);
    let code: void | number;
    try {
      code = await verb.run({ client, common: parsed.common, values: parsed.values, positionals: parsed.positionals, io });
    } finally {
      await client.close();
    }
    return typeof code === 'number' ? code : EXIT_OK;
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`${where}: ${err.message} (see '${where} --help')\n`);
      return EXIT_USAGE;
    }
    if (err instanceof CtlError) {
      io.err(`${where}: ${err.message}\n${err.hint === undefined ? '' : `  ${err.hint}\n`}`);
      if (jsonOutput) io.out(json({ error: { ...(err.body ?? {}), message: err.message, ...(err.hint === undefined ? {} : { hint: err.hint }), ...(err.status === undefined ? {} : { status: err.status }), exitCode: err.exitCode } }));
      return err.exitCode;
    }
    throw err;
  }
}

function nounHelp(noun: string, spec: NounSpec): string {
  const rows = Object.entries(spec.verbs).map(([name, v]) => [`${name}${v.args === '' ? '' : ` ${v.args}`}`, v.summary] as const);
  const width = Math.max(...rows.map(([a]) => a.length)) + 2;
  return `Usage: weldr ${noun} <command> [options]

${capitalise(spec.summary)}.

Commands:
${rows.map(([a, s]) => `  ${a.padEnd(width)}${s}`).join('\n')}

Run 'weldr ${noun} <command> --help' for a command's options.

${COMMON_HELP}
${EXIT_CODES_HELP}`;
}

function verbHelp(name: string, verb: VerbSpec): string {
  return `Usage: weldr ${name}${verb.args === '' ? '' : ` ${verb.args}`} [options]

${capitalise(verb.summary)}.
${verb.details === undefined ? '' : `\n${verb.details}`}${verb.flagHelp === undefined ? '' : `\nOptions:\n${verb.flagHelp}`}
${COMMON_HELP}
${EXIT_CODES_HELP}`;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
