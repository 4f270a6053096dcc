// stats.ts: timing and reporting for the benchmarks — a monotonic stopwatch, median and
// percentiles, side-by-side pairs run in alternating order, running a tool as a timed child
// process, and a plain-text table. Never asserts on time: the figures are printed, not judged.
import { spawn } from 'node:child_process';

/** Milliseconds since an arbitrary origin (monotonic). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function minOf(xs: readonly number[]): number { return xs.length === 0 ? NaN : Math.min(...xs); }
export function maxOf(xs: readonly number[]): number { return xs.length === 0 ? NaN : Math.max(...xs); }

export interface ToolResult { code: number | null; stdout: string; stderr: string; ms: number }

/** Runs `cmd args` to completion; `ms` is spawn-to-exit wall time. Rejects on spawn failure only. */
export function runTool(cmd: string, args: readonly string[], opts: { cwd?: string } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: nowMs() - t0 });
    });
  });
}

/** runTool that throws (with stderr) unless the exit code is one of `ok` (default [0]). */
export async function mustRun(cmd: string, args: readonly string[], ok: readonly number[] = [0]): Promise<ToolResult> {
  const r = await runTool(cmd, args);
  if (r.code === null || !ok.includes(r.code)) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r;
}

/** One side of a pair: untimed preparation, then the timed work (returns ms). */
export interface Side {
  name: string;
  prepare(): Promise<void>;
  run(): Promise<number>;
}

export interface PairResult {
  ours: number[];
  peer: number[];
  oursMedianMs: number;
  peerMedianMs: number;
  /** ours / peer on the medians. */
  ratio: number;
}

/**
 * Runs `ours` and `peer` `runs` times each, alternating which goes first (ours-peer,
 * peer-ours, ...), each preceded by its untimed prepare(). Progress goes to stderr.
 */
export async function pair(label: string, ours: Side, peer: Side, runs: number): Promise<PairResult> {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    const order: Array<[Side, number[]]> = i % 2 === 0 ? [[ours, a], [peer, b]] : [[peer, b], [ours, a]];
    for (const [side, into] of order) {
      await side.prepare();
      const ms = await side.run();
      into.push(ms);
      process.stderr.write(`  ${label} run ${i + 1}/${runs} ${side.name}: ${ms.toFixed(0)} ms\n`);
    }
  }
  const oursMedianMs = median(a);
  const peerMedianMs = median(b);
  return { ours: a, peer: b, oursMedianMs, peerMedianMs, ratio: oursMedianMs / peerMedianMs };
}

/** A fixed-width text table; numbers are right-aligned. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly (string | number)[]>): string {
  const cells = [header.map(String), ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmtNum(c) : c)))];
  const widths = header.map((_, k) => Math.max(...cells.map((r) => (r[k] ?? '').length)));
  const line = (r: readonly string[], numeric: boolean[]): string =>
    r.map((c, k) => (numeric[k] ? c.padStart(widths[k]!) : c.padEnd(widths[k]!))).join('  ').trimEnd();
  const numericCols = header.map((_, k) => rows.length > 0 && rows.every((r) => typeof r[k] === 'number'));
  const out = [line(cells[0]!, numericCols), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of cells.slice(1)) out.push(line(r, numericCols));
  return out.join('\n');
}

export function fmtNum(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
}

/** Rounds for the JSON line (3 significant decimals is plenty for noisy timings). */
export function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
