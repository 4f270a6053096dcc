// helpers.ts: drives the CLI as a subprocess (node bin/graphdriver ...), the way users and
// scripts run it, and gives each test a fresh temporary root that is always removed
// (test/helpers/tmp.ts unmounts anything left under it first).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

/** The repository (dist/test/cli -> ../../..). */
export const REPO = path.resolve(__dirname, '..', '..', '..');
export const BIN = path.join(REPO, 'bin', 'graphdriver');

export interface CliResult {
  status: number | null;
  stdout: Buffer;
  /** stdout as text. */
  out: string;
  err: string;
}

export interface RunOptions {
  input?: Buffer | string;
  env?: Record<string, string | undefined>;
}

/** Runs `node bin/graphdriver ...args` to completion. DOCKER_DRIVER is cleared unless given. */
export function runCli(args: readonly string[], opts: RunOptions = {}): CliResult {
  const env: Record<string, string | undefined> = { ...process.env, DOCKER_DRIVER: undefined, GRAPHDRIVER_DEBUG: undefined, ...opts.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const r = spawnSync(process.execPath, [BIN, ...args], { input: opts.input, env: env as NodeJS.ProcessEnv, maxBuffer: 64 << 20, cwd: REPO });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, out: r.stdout.toString(), err: r.stderr.toString() };
}

/** Runs the CLI on `root` with `--driver vfs` and the given arguments. */
export function vfs(root: string, ...args: string[]): CliResult {
  return runCli(['--root', root, '--driver', 'vfs', ...args]);
}

/** Asserts-by-throwing that a run succeeded, showing its stderr when it did not. */
export function ok(r: CliResult, what: string): CliResult {
  if (r.status !== 0) throw new Error(`${what}: exit ${r.status}: ${r.err}`);
  return r;
}

/** Lines of text, without the trailing empty one. */
export function lines(s: string): string[] {
  return s.split('\n').filter((l) => l !== '');
}
