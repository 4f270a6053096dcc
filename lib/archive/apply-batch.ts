// apply-batch.ts: queues parsed tar entries as ops for the addon's batched apply
// (native/apply.cc) and submits them in order, one batch in flight at a time, so the tar is
// parsed while the previous batch is written. Ops are encoded into one Buffer per batch (a
// fixed 92-byte little-endian header, then its strings) so the native side reads plain bytes
// instead of thousands of JS properties. A failure names the tar entry it came from.
import { SyscallError } from '../errors';
import { applyBatch } from '../native';

/** What one op asks native/apply.cc to do (kinds: ApplyOpKind in lib/native.ts). */
export interface BatchOp {
  kind: number;
  parent: string;
  name: string;
  linkname?: string;
  linkParent?: string;
  linkName?: string;
  mode?: number; uid?: number; gid?: number; devMajor?: number; devMinor?: number;
  atimeSec?: number; atimeNsec?: number; mtimeSec?: number; mtimeNsec?: number;
  xattrs?: ReadonlyMap<string, Buffer>;
  data?: readonly Uint8Array[];
}

/** A batch is sent when it holds this many ops or data bytes. */
const BATCH_OPS = 1024;
const BATCH_BYTES = 8 << 20;
const OP_HEADER = 92;

class Encoder {
  buf = Buffer.allocUnsafe(1 << 18);
  used = 0;

  private reserve(n: number): void {
    if (this.used + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + n));
    this.buf.copy(next, 0, 0, this.used);
    this.buf = next;
  }

  /** Appends `s` as UTF-8 and returns its byte length. */
  private str(s: string | undefined): number {
    if (s === undefined || s === '') return 0;
    this.reserve(s.length * 3);
    const n = this.buf.write(s, this.used, 'utf8');
    this.used += n;
    return n;
  }

  op(o: BatchOp, dataFirst: number, dataCount: number, xattrFirst: number, xattrCount: number): void {
    this.reserve(OP_HEADER);
    const b = this.buf;
    const h = this.used;
    b.fill(0, h, h + 4);
    b[h] = o.kind;
    b.writeUInt32LE(o.mode ?? 0, h + 4);
    b.writeUInt32LE(o.uid ?? 0, h + 8);
    b.writeUInt32LE(o.gid ?? 0, h + 12);
    b.writeUInt32LE(o.devMajor ?? 0, h + 16);
    b.writeUInt32LE(o.devMinor ?? 0, h + 20);
    b.writeDoubleLE(o.atimeSec ?? 0, h + 24);
    b.writeDoubleLE(o.atimeNsec ?? 0, h + 32);
    b.writeDoubleLE(o.mtimeSec ?? 0, h + 40);
    b.writeDoubleLE(o.mtimeNsec ?? 0, h + 48);
    b.writeUInt32LE(dataFirst, h + 76);
    b.writeUInt32LE(dataCount, h + 80);
    b.writeUInt32LE(xattrFirst, h + 84);
    b.writeUInt32LE(xattrCount, h + 88);
    this.used += OP_HEADER;
    const lens = [this.str(o.parent), this.str(o.name), this.str(o.linkname), this.str(o.linkParent), this.str(o.linkName)];
    // `reserve` may have replaced the buffer: write the lengths into the current one.
    for (let k = 0; k < 5; k++) this.buf.writeUInt32LE(lens[k]!, h + 56 + 4 * k);
  }
}

export class BatchQueue {
  private enc = new Encoder();
  private count = 0;
  /** Distinct ArrayBuffers holding file data, and (buffer, offset, length) extents into them. */
  private buffers: ArrayBufferLike[] = [];
  private bufferIndex = new Map<ArrayBufferLike, number>();
  private extents: number[] = [];
  private xattrs: Array<string | Buffer> = [];
  private names: string[] = [];
  private bytes = 0;
  private inflight: Promise<void> = Promise.resolve();

  constructor(private readonly rootFd: number) {}

  /** Queues an op for the tar entry `entryName`; sends the batch when it is full (then a Promise to await). */
  push(op: BatchOp, entryName: string): void | Promise<void> {
    const dataFirst = this.extents.length / 3;
    let dataBytes = 0;
    for (const c of op.data ?? []) {
      let b = this.bufferIndex.get(c.buffer);
      if (b === undefined) {
        b = this.buffers.length;
        this.buffers.push(c.buffer);
        this.bufferIndex.set(c.buffer, b);
      }
      this.extents.push(b, c.byteOffset, c.byteLength);
      dataBytes += c.byteLength;
    }
    const xattrFirst = this.xattrs.length;
    for (const [k, v] of op.xattrs ?? []) this.xattrs.push(k, v);
    this.enc.op(op, dataFirst, this.extents.length / 3 - dataFirst, xattrFirst, (this.xattrs.length - xattrFirst) / 2);
    this.count++;
    this.names.push(entryName);
    this.bytes += dataBytes;
    if (this.count >= BATCH_OPS || this.bytes >= BATCH_BYTES) return this.submit();
    return undefined;
  }

  /** Sends what is queued; waits only for the batch before it. */
  private async submit(): Promise<void> {
    await this.inflight;
    if (this.count === 0) return;
    const encoded = this.enc.buf.subarray(0, this.enc.used);
    const { count, buffers, xattrs, names } = this;
    const extents = Buffer.from(Uint32Array.from(this.extents).buffer);
    this.enc = new Encoder();
    this.count = 0;
    this.buffers = [];
    this.bufferIndex = new Map();
    this.extents = [];
    this.xattrs = [];
    this.names = [];
    this.bytes = 0;
    const run = applyBatch(this.rootFd, encoded, count, buffers, xattrs, extents).then(() => undefined, (err: unknown) => {
      throw attributeToEntry(err, names);
    });
    run.catch(() => undefined); // observed by the next submit or drain
    this.inflight = run;
  }

  /** Everything queued is on disk (or has thrown). Call before any other write to the layer. */
  async drain(): Promise<void> {
    await this.submit();
    await this.inflight;
  }
}

function attributeToEntry(err: unknown, names: readonly string[]): unknown {
  if (!(err instanceof SyscallError)) return err;
  const index = (err as SyscallError & { opIndex?: number }).opIndex;
  const entry = index !== undefined ? names[index] : undefined;
  if (entry === undefined) return err;
  const e = new SyscallError(`${err.message} (tar entry ${JSON.stringify(entry)})`, {
    code: err.code, errno: err.errno, syscall: err.syscall, path: entry, ...(err.dest !== undefined ? { dest: err.dest } : {}),
  });
  e.stack = err.stack?.replace(err.message, e.message) ?? e.message;
  return e;
}
