import type { AdminClient } from './client.js';
import type { CommonOptions, FlagValues } from './common-options.js';

/** Where a command writes and reads files; injected so tests can capture it. */
export interface CtlIo {
  out(text: string): void;
  err(text: string): void;
  readFile(path: string): string;
  writeFile(path: string, text: string): void;
}

/** What one operator command runs with. */
export interface CtlContext {
  readonly client: AdminClient;
  readonly common: CommonOptions;
  readonly values: FlagValues;
  readonly positionals: readonly string[];
  readonly io: CtlIo;
}

type ParseArgsOption = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

/** One verb of a noun: `weldr servers add`. */
export interface VerbSpec {
  /** Arguments after the verb, as shown in --help: "ADDR…". */
  readonly args: string;
  readonly summary: string;
  /** Longer description and examples for `--help`. */
  readonly details?: string;
  readonly flags?: Readonly<Record<string, ParseArgsOption>>;
  /** Help lines for `flags`. */
  readonly flagHelp?: string;
  readonly minArgs: number;
  readonly maxArgs: number;
  /** Resolves with nothing (exit 0) or an exit code of its own (`weldr drill`: 6, 130). */
  run(ctx: CtlContext): Promise<void | number>;
}

export interface NounSpec {
  readonly summary: string;
  readonly verbs: Readonly<Record<string, VerbSpec>>;
  /** The verb run when none is given (`weldr stats`). */
  readonly defaultVerb?: string;
}
