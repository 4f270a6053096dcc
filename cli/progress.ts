// progress.ts: a one-line progress meter on stderr (bytes, total and percent when known,
// rate, entries when the caller counts them), redrawn at most every 100 ms, and human sizes.
// It only draws when told to (the caller passes `enabled`: stderr is a TTY and not --json or
// --quiet); otherwise every method is a no-op, so piped output stays clean.
import { Transform, type TransformCallback } from 'node:stream';

/** Where the meter draws; process.stderr in the CLI, a fake in unit tests. */
export interface MeterSink {
  write(s: string): unknown;
  columns?: number;
}

/** 1234567 -> "1.23 MB" (SI units, as `docker` prints sizes). */
export function humanSize(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

export class Progress {
  private bytes = 0;
  private entries: number | undefined;
  private readonly started: number;
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly sink: MeterSink,
    private label: string,
    private readonly enabled: boolean,
    private total?: number,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  /** Counts `n` more bytes and redraws if 100 ms passed. */
  add(n: number): void {
    this.bytes += n;
    this.maybeDraw();
  }

  /** Sets the entry count (when the caller knows it). */
  setEntries(n: number): void {
    this.entries = n;
    this.maybeDraw();
  }

  /** Starts a new phase with its own label and total (import: one per layer). */
  relabel(label: string, total?: number): void {
    this.label = label;
    this.total = total;
    this.bytes = 0;
    this.draw();
  }

  /** The line as it would be drawn now. */
  line(): string {
    const secs = Math.max((this.now() - this.started) / 1000, 0.001);
    const parts = [this.label, this.total !== undefined && this.total > 0
      ? `${humanSize(this.bytes)} / ${humanSize(this.total)} (${Math.min(100, Math.floor((this.bytes / this.total) * 100))}%)`
      : humanSize(this.bytes)];
    parts.push(`${humanSize(this.bytes / secs)}/s`);
    if (this.entries !== undefined) parts.push(`${this.entries} entries`);
    return parts.join('  ');
  }

  private maybeDraw(): void {
    if (!this.enabled) return;
    const t = this.now();
    if (t - this.lastDraw < 100) return;
    this.draw();
  }

  private draw(): void {
    if (!this.enabled) return;
    this.lastDraw = this.now();
    const cols = this.sink.columns;
    const width = cols !== undefined && cols > 20 ? cols - 1 : 79;
    this.sink.write(`\r\x1b[K${this.line().slice(0, width)}`);
    this.drawn = true;
  }

  /** Erases the meter line; with `summary`, leaves that line in its place. */
  finish(summary?: string): void {
    if (!this.enabled) return;
    if (this.drawn) this.sink.write('\r\x1b[K');
    if (summary !== undefined) this.sink.write(`${summary}\n`);
    this.drawn = false;
  }

  /** A pass-through stream that counts what flows through it into this meter. */
  counter(onChunk?: (chunk: Buffer) => void): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) => {
        this.add(chunk.length);
        onChunk?.(chunk);
        cb(null, chunk);
      },
    });
  }

  /** Bytes counted so far. */
  get count(): number {
    return this.bytes;
  }

  /** Seconds since the meter started. */
  elapsed(): number {
    return (this.now() - this.started) / 1000;
  }
}
