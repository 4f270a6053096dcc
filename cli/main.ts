// main.ts: the `graphdriver` command line. Finds the command, parses global and command options
// with node:util parseArgs, prints --help, runs the command with a Ctx, and turns any failure
// into one line on stderr and an exit code (errors.ts). SIGINT/SIGTERM abort the running
// command, which cleans up and exits 130; a second signal exits at once. The CLI spawns no
// process. bin/graphdriver calls cli(); `node dist/cli/main.js ...` works too.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { Command, OptionSpec, OptionValues } from './command';
import { apply } from './commands/apply';
import { demo } from './commands/demo';
import { changes, diff, diffSize } from './commands/diff';
import { importImage } from './commands/import';
import { info } from './commands/info';
import { create, ls, rm } from './commands/layers';
import { mount, umount } from './commands/mount';
import { Ctx, DEFAULT_ROOT, type Globals, type Stdio } from './context';
import { CliError, EXIT, UsageError, describeFailure } from './errors';

export const COMMANDS: readonly Command[] = [info, ls, create, rm, mount, umount, diff, changes, diffSize, apply, importImage, demo];

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  root: { type: 'string', arg: 'DIR', help: `storage root; each driver keeps its layers in DIR/<driver> (default ${DEFAULT_ROOT})` },
  driver: { type: 'string', arg: 'NAME', help: 'use this driver (else $DOCKER_DRIVER, else selection: see `graphdriver info --help`)' },
  'storage-opt': { type: 'string', multiple: true, arg: 'KEY=VALUE', help: 'a driver option, e.g. overlay2.size=10G; repeatable' },
  json: { type: 'boolean', help: 'machine-readable output: one JSON value on stdout; errors as JSON on stderr' },
  quiet: { type: 'boolean', short: 'q', help: 'no progress meters or notes on stderr' },
  help: { type: 'boolean', short: 'h', help: 'show help (for a command: graphdriver COMMAND --help)' },
};

function wrap(text: string, indent: string, width = 80): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(/\s+/)) {
    if (cur !== '' && indent.length + cur.length + 1 + word.length > width) { lines.push(indent + cur); cur = word; }
    else cur = cur === '' ? word : `${cur} ${word}`;
  }
  if (cur !== '') lines.push(indent + cur);
  return lines;
}

function optionLines(opts: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(opts).map(([name, o]) => [`${o.short !== undefined ? `-${o.short}, ` : '    '}--${name}${o.arg !== undefined ? ` ${o.arg}` : ''}`, o.help] as const);
  const w = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, h]) => `  ${l.padEnd(w)}  ${h}`);
}

/** The general help. */
export function mainHelp(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: graphdriver [global options] COMMAND [args]',
    '',
    'Layer storage the way the Docker engine\'s graphdriver does it (vfs, overlay2, btrfs, ...), from the command line.',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'global options (anywhere on the line):',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'exit status: 0 ok, 1 failure, 2 bad usage (unknown option, bad id, bad storage option), 3 layer not found,',
    '4 no usable storage driver, 130 interrupted. Errors are one line on stderr: "graphdriver: <what went wrong>".',
    'Most commands need root.',
    '',
    'Run `graphdriver COMMAND --help` for a command\'s arguments, or `graphdriver demo` to see it work.',
  ].join('\n');
}

/** The help of one command. */
export function commandHelp(c: Command): string {
  return [
    `usage: graphdriver [global options] ${c.name}${c.args !== '' ? ` ${c.args}` : ''}${c.options !== undefined ? ' [options]' : ''}`,
    '',
    ...wrap(c.description, ''),
    ...(c.options !== undefined ? ['', 'options:', ...optionLines(c.options)] : []),
    '',
    'global options:',
    ...optionLines(GLOBAL_OPTIONS),
  ].join('\n');
}

/** Index of the command word: the first token that is neither an option nor a global option's value. */
function commandIndex(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return i + 1 < argv.length ? i + 1 : -1;
    if (a.startsWith('--')) {
      const name = a.slice(2);
      if (!name.includes('=') && GLOBAL_OPTIONS[name]?.type === 'string') i++;
      continue;
    }
    if (a.startsWith('-') && a !== '-') continue;
    return i;
  }
  return -1;
}

function toParseArgs(opts: Record<string, OptionSpec>): Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> {
  return Object.fromEntries(Object.entries(opts).map(([k, o]) => [k, {
    type: o.type, ...(o.short !== undefined ? { short: o.short } : {}), ...(o.multiple === true ? { multiple: true } : {}),
  }]));
}

function processStdio(): Stdio {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
}

/** Runs the CLI on `argv` (without node and script); resolves to the exit code. */
export async function cli(argv: readonly string[], io: Stdio = processStdio()): Promise<number> {
  const jsonWanted = argv.includes('--json');
  let ctx: Ctx | undefined;
  const onSignal = (): void => {
    if (ctx === undefined || ctx.signal.aborted) process.exit(EXIT.INTERRUPTED);
    ctx.abort.abort();
  };
  // A reader that goes away (`graphdriver demo | head`) must not kill the process before it
  // cleans up: EPIPE on stdout aborts the command like a signal would.
  const onStdoutError = (err: Error): void => {
    if (ctx !== undefined && !ctx.signal.aborted) ctx.abort.abort(new CliError(`stdout closed (${(err as { code?: string }).code ?? err.message}); stopped and cleaned up`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  io.stdout.on('error', onStdoutError);
  try {
    const at = commandIndex(argv);
    const name = at >= 0 ? argv[at]! : undefined;
    const command = name !== undefined ? COMMANDS.find((c) => c.name === name) : undefined;
    if (name === 'help') {
      const about = argv[at + 1] !== undefined ? COMMANDS.find((c) => c.name === argv[at + 1]) : undefined;
      io.stdout.write(`${about !== undefined ? commandHelp(about) : mainHelp()}\n`);
      return EXIT.OK;
    }
    if (name !== undefined && command === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)}`);
    const rest = at >= 0 ? [...argv.slice(0, at), ...argv.slice(at + 1)] : [...argv];
    let parsed: { values: OptionValues; positionals: string[] };
    try {
      parsed = parseArgs({ args: rest, options: toParseArgs({ ...GLOBAL_OPTIONS, ...command?.options }), allowPositionals: true, strict: true }) as typeof parsed;
    } catch (err) {
      throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''), command?.name);
    }
    const { values, positionals } = parsed;
    if (values.help === true) {
      io.stdout.write(`${command !== undefined ? commandHelp(command) : mainHelp()}\n`);
      return EXIT.OK;
    }
    if (command === undefined) {
      io.stderr.write(`${mainHelp()}\n`);
      return EXIT.USAGE;
    }
    if (positionals.length < command.min || positionals.length > command.max) {
      throw new UsageError(`${command.name} takes ${command.args === '' ? 'no arguments' : command.args}, got ${positionals.length} argument${positionals.length === 1 ? '' : 's'}`, command.name);
    }
    const storageOpts = (values['storage-opt'] as string[] | undefined) ?? [];
    for (const o of storageOpts) if (o.indexOf('=') <= 0) throw new UsageError(`--storage-opt expects key=value, got ${JSON.stringify(o)}`, command.name);
    const rootOpt = typeof values.root === 'string' ? values.root : DEFAULT_ROOT;
    if (rootOpt === '') throw new UsageError('--root must not be empty', command.name);
    const globals: Globals = {
      root: path.resolve(rootOpt),
      ...(typeof values.driver === 'string' && values.driver !== '' ? { driver: values.driver } : {}),
      storageOpts,
      json: values.json === true,
      quiet: values.quiet === true,
    };
    ctx = new Ctx(globals, io);
    try {
      await command.run(ctx, positionals, values);
    } finally {
      await ctx.close();
    }
    return EXIT.OK;
  } catch (err) {
    const f = describeFailure(err);
    if (jsonWanted) io.stderr.write(`${JSON.stringify({ error: { code: f.code, message: f.message, exitCode: f.exitCode } })}\n`);
    else io.stderr.write(`graphdriver: ${f.message}\n`);
    if (process.env.GRAPHDRIVER_DEBUG === '1' && err instanceof Error && err.stack !== undefined) io.stderr.write(`${err.stack}\n`);
    return f.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Stays quiet about later write errors on a stdout that is gone (no 'error' crash at exit).
    if (ctx?.signal.aborted !== true) io.stdout.off('error', onStdoutError);
  }
}

if (require.main === module) {
  cli(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`graphdriver: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = EXIT.FAILURE;
  });
}
