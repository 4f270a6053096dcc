// command.ts: the shape of a subcommand. Each file in commands/ exports one or more Command
// values; main.ts collects them, parses the command line with node:util parseArgs (global
// options plus the command's own), checks the argument count and renders --help from these
// fields, so every command's help has the same layout.
import type { Ctx } from './context';

/** A parseArgs option spec (the subset the CLI uses). */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Value name shown in help, for string options ('FILE'). */
  arg?: string;
  /** One line for --help. */
  help: string;
}

/** Option values after parsing: strings, booleans or lists of strings. */
export type OptionValues = Record<string, string | boolean | Array<string | boolean> | undefined>;

export interface Command {
  name: string;
  /** Positional arguments as shown in usage: 'ID [PARENT]'. */
  args: string;
  /** One line for the command list. */
  summary: string;
  /** Paragraphs for `graphdriver NAME --help`. */
  description: string;
  options?: Record<string, OptionSpec>;
  /** Positional argument count allowed. */
  min: number;
  max: number;
  run(ctx: Ctx, args: string[], opts: OptionValues): Promise<void>;
}

/** A string option's value, if given. */
export function stringOpt(opts: OptionValues, name: string): string | undefined {
  const v = opts[name];
  return typeof v === 'string' ? v : undefined;
}
