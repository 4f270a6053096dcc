// console.ts: splits the guest's serial console into its three parts. The guest prints
// `<mark>:start` right before the command runs and `\x01<mark>:end:<status>` right after it;
// only the bytes in between are the command's output and are forwarded to the caller as they
// arrive. The rest (kernel and init messages) is kept for the error report when the guest never
// gets to the command. `mark` is random per run, so no output can end the stream by accident.

/** How much of the boot output is kept for an error report. */
const BOOT_LOG_LIMIT = 256 * 1024;

export type ConsolePhase = 'boot' | 'command' | 'done';

export class ConsoleSplitter {
  phase: ConsolePhase = 'boot';
  /** The status printed with the end line, once seen. */
  endStatus: number | undefined;
  private readonly startLine: Buffer;
  private readonly endPrefix: Buffer;
  /** Bytes held back because they may be the beginning of a marker. */
  private held = Buffer.alloc(0);
  private bootChunks: Buffer[] = [];
  private bootBytes = 0;

  /**
   * `onOutput` gets the command's output; `onBoot` (optional) everything else as it arrives.
   */
  constructor(mark: string, private readonly onOutput: (bytes: Buffer) => void, private readonly onBoot?: (bytes: Buffer) => void) {
    this.startLine = Buffer.from(`${mark}:start\n`);
    this.endPrefix = Buffer.from(`\x01${mark}:end:`);
  }

  /** Feeds the next bytes read from the console. */
  push(chunk: Buffer): void {
    let buf = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = Buffer.alloc(0);
    if (this.phase === 'boot') {
      const at = buf.indexOf(this.startLine);
      if (at < 0) {
        const keep = heldSuffix(buf, this.startLine);
        this.boot(buf.subarray(0, buf.length - keep));
        this.held = Buffer.from(buf.subarray(buf.length - keep));
        return;
      }
      this.boot(buf.subarray(0, at + this.startLine.length));
      buf = buf.subarray(at + this.startLine.length);
      this.phase = 'command';
    }
    if (this.phase === 'command') {
      const at = buf.indexOf(this.endPrefix);
      if (at < 0) {
        const keep = heldSuffix(buf, this.endPrefix);
        if (buf.length > keep) this.onOutput(buf.subarray(0, buf.length - keep));
        this.held = Buffer.from(buf.subarray(buf.length - keep));
        return;
      }
      if (at > 0) this.onOutput(buf.subarray(0, at));
      const rest = buf.subarray(at + this.endPrefix.length);
      const eol = rest.indexOf(0x0a);
      if (eol < 0) {
        // The status line is not complete yet: keep it from the marker on.
        this.held = Buffer.from(buf.subarray(at));
        return;
      }
      const status = rest.toString('latin1', 0, eol).trim();
      if (/^\d+$/.test(status)) this.endStatus = Number(status);
      this.phase = 'done';
      buf = rest.subarray(eol + 1);
    }
    this.boot(buf);
  }

  /** The kept console output other than the command's (the last BOOT_LOG_LIMIT bytes). */
  bootLog(): string {
    return Buffer.concat(this.bootChunks).toString('utf8');
  }

  private boot(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.onBoot?.(bytes);
    this.bootChunks.push(Buffer.from(bytes));
    this.bootBytes += bytes.length;
    while (this.bootBytes > BOOT_LOG_LIMIT && this.bootChunks.length > 1) this.bootBytes -= this.bootChunks.shift()!.length;
  }
}

/** Length of the longest proper suffix of `buf` that is a prefix of `marker`. */
function heldSuffix(buf: Buffer, marker: Buffer): number {
  for (let n = Math.min(buf.length, marker.length - 1); n > 0; n--) {
    if (buf.subarray(buf.length - n).equals(marker.subarray(0, n))) return n;
  }
  return 0;
}
