// tools.ts: finding and running the host programs the harness uses (the harness may spawn;
// only lib/ and native/ may not).
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import * as path from 'node:path';

/** An error whose message is meant for the user as is (no stack needed). */
export class HarnessError extends Error {
  /** The harness's exit status for this error. */
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.harness) {
    super(message);
    this.name = 'HarnessError';
    this.exitCode = exitCode;
  }
}

/** Exit statuses of test/vm/run other than the guest command's own. */
export const EXIT = {
  /** Something the harness needs (qemu, busybox, an x86-64 host) is missing: callers skip. */
  unavailable: 77,
  /** The overall --timeout expired. */
  timeout: 124,
  /** The harness failed: the guest did not boot, or no exit status came back. */
  harness: 125,
  /** Bad command line. */
  usage: 2,
} as const;

/** The absolute path of `name` on $PATH (plus the sbin directories), or undefined. */
export function which(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const p = path.join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** Runs a program to completion; throws HarnessError with its stderr when it fails. */
export function run(program: string, args: readonly string[], opts: { cwd?: string; input?: Buffer; maxBuffer?: number } = {}): Buffer {
  const r = spawnSync(program, args, { cwd: opts.cwd, input: opts.input, maxBuffer: opts.maxBuffer ?? 256 * 1024 * 1024, stdio: ['pipe', 'pipe', 'pipe'] });
  if (r.error !== undefined) throw new HarnessError(`${program}: ${r.error.message}`);
  if (r.status !== 0) {
    const why = r.signal !== null ? `killed by ${r.signal}` : `exit status ${r.status}`;
    const stderr = r.stderr.toString().trim();
    throw new HarnessError(`${[program, ...args].join(' ')} failed (${why})${stderr === '' ? '' : `: ${stderr.split('\n').join(' / ')}`}`);
  }
  return r.stdout;
}
