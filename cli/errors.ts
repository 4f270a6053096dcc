// errors.ts: how the CLI fails. Every failure becomes one line on stderr (or one JSON object
// with --json) and an exit code; the library's error classes are mapped here by their stable
// `code`, never by message. Nothing else in cli/ writes errors or picks exit codes.

/** Exit codes, documented in `graphdriver --help`. */
export const EXIT = Object.freeze({
  OK: 0,
  /** Anything that went wrong at run time (syscall failure, bad tar, driver error). */
  FAILURE: 1,
  /** Bad command line: unknown command or option, wrong argument count, bad id, bad storage option. */
  USAGE: 2,
  /** A named layer does not exist (or is incomplete). */
  NOT_FOUND: 3,
  /** No storage driver could be initialised (selection failed, or the named one won't init). */
  DRIVER: 4,
  /** Interrupted by SIGINT/SIGTERM (after cleaning up). */
  INTERRUPTED: 130,
});

/** A command-line mistake: printed with a pointer to --help, exit code USAGE. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(message: string, readonly command?: string) {
    super(message);
  }
}

/** A failure the CLI itself detects (not from the library), with its own exit code. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(message: string, readonly exitCode: number = EXIT.FAILURE, readonly code = 'ERR_GRAPHDRIVER_CLI') {
    super(message);
  }
}

/** The driver could not be initialised; `cause` is the library's error. */
export class DriverInitError extends Error {
  override name = 'DriverInitError';
  constructor(message: string, override readonly cause: unknown) {
    super(message);
  }
}

export interface Failure {
  message: string;
  code: string;
  exitCode: number;
}

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' ? c : undefined;
}

/** Collapses a message to one line (driver messages may embed kernel logs with newlines). */
export function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ').trim();
}

/** Maps any thrown value to the line, code and exit status the CLI reports. */
export function describeFailure(err: unknown): Failure {
  if (err instanceof UsageError) {
    const hint = err.command !== undefined ? `graphdriver ${err.command} --help` : 'graphdriver --help';
    return { message: `${oneLine(err.message)} (see '${hint}')`, code: 'ERR_GRAPHDRIVER_USAGE', exitCode: EXIT.USAGE };
  }
  if (err instanceof CliError) return { message: oneLine(err.message), code: err.code, exitCode: err.exitCode };
  if (err instanceof Error && err.name === 'AbortError') {
    return { message: 'interrupted; cleaned up', code: 'ABORT_ERR', exitCode: EXIT.INTERRUPTED };
  }
  if (err instanceof DriverInitError) {
    return { message: oneLine(err.message), code: codeOf(err.cause) ?? 'ERR_GRAPHDRIVER_SELECTION', exitCode: EXIT.DRIVER };
  }
  const code = codeOf(err) ?? 'ERR_GRAPHDRIVER_CLI';
  const message = oneLine(err instanceof Error ? err.message : String(err));
  switch (code) {
    case 'ERR_GRAPHDRIVER_INVALID_ID':
      return { message: `invalid layer id: ${message}`, code, exitCode: EXIT.USAGE };
    case 'ERR_GRAPHDRIVER_INVALID_OPTION':
      return { message: `invalid storage option: ${message}`, code, exitCode: EXIT.USAGE };
    case 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND':
      return { message, code, exitCode: EXIT.NOT_FOUND };
    case 'ERR_GRAPHDRIVER_ARCHIVE':
      return { message: `bad layer tar: ${message}`, code, exitCode: EXIT.FAILURE };
    case 'ERR_GRAPHDRIVER_SELECTION':
    case 'ERR_GRAPHDRIVER_NOT_SUPPORTED':
    case 'ERR_GRAPHDRIVER_PREREQUISITES':
    case 'ERR_GRAPHDRIVER_INCOMPATIBLE_FS':
      return { message, code, exitCode: EXIT.DRIVER };
    default:
      // Layer exists, not mounted, mount limit, and syscall / Node fs errors (whose messages
      // already name the call and path: "ENOENT: no such file or directory, open 'x'").
      return { message, code, exitCode: EXIT.FAILURE };
  }
}
