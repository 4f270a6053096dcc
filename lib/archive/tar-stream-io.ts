// tar-stream-io.ts: reading tar streams on top of tar-format.ts: entries from any async
// iterable of Buffers, with PAX and GNU long-name records folded into each entry, GNU sparse
// maps decoded, and limits enforced. Writing is tar-writer.ts. No filesystem access here.
import { ArchiveError } from '../errors';
import {
  BLOCK, decodeHeader, entryTypeOf, isZeroBlock, padding, parsePax,
  parseSparseEntries, type RawHeader, type SparseMap, type TarEntryHeader,
} from './tar-format';

export interface TarLimits {
  /** Largest PAX extended header or GNU long name/link record, in bytes. */
  maxRecordSize: number;
  /** Largest number of entries in one archive. */
  maxEntries: number;
}

export const DEFAULT_TAR_LIMITS: TarLimits = Object.freeze({ maxRecordSize: 1 << 20, maxEntries: 10_000_000 });

/** One entry; read its data with `body()` before asking for the next entry, or it is skipped. */
export interface TarEntry {
  header: TarEntryHeader;
  body(): AsyncGenerator<Buffer>;
  /** The whole body if it is already buffered (no await), else null; then use body(). */
  takeBuffered(): Buffer[] | null;
}

const NO_RECORDS: ReadonlyMap<string, Buffer> = new Map();

/** A byte queue over an async iterable, with exact-length reads. */
class ByteSource {
  private chunks: Buffer[] = [];
  private head = 0;          // offset into chunks[0]
  private buffered = 0;
  private ended = false;
  private readonly it: AsyncIterator<Buffer | string>;

  constructor(source: AsyncIterable<Buffer | string>) {
    this.it = source[Symbol.asyncIterator]();
  }

  get available(): number { return this.buffered; }

  async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) { this.ended = true; break; }
      const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      if (chunk.length === 0) continue;
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    return this.buffered >= n;
  }

  /** Up to `max` bytes from what is buffered (at least one byte if any is). */
  takeUpTo(max: number): Buffer {
    const first = this.chunks[0]!;
    const n = Math.min(max, first.length - this.head);
    const out = first.subarray(this.head, this.head + n);
    this.head += n;
    this.buffered -= n;
    if (this.head === first.length) { this.chunks.shift(); this.head = 0; }
    return out;
  }

  /** The next `n` bytes without consuming them, when they lie in one buffered chunk; else null. */
  peek(n: number): Buffer | null {
    const first = this.chunks[0];
    if (first === undefined || first.length - this.head < n) return null;
    return first.subarray(this.head, this.head + n);
  }

  /** Discards `n` buffered bytes (call fill first or check available). */
  drop(n: number): void {
    let left = n;
    while (left > 0) left -= this.takeUpTo(left).length;
  }

  /** Exactly `n` buffered bytes (call fill first). */
  take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) return this.takeUpTo(n);
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const part = this.takeUpTo(n - off);
      part.copy(out, off);
      off += part.length;
    }
    return out;
  }

  async return(): Promise<void> {
    await this.it.return?.();
  }
}

const truncated = (what: string): ArchiveError => new ArchiveError(`unexpected end of archive (truncated ${what})`);

async function readExact(src: ByteSource, n: number, what: string): Promise<Buffer> {
  if (!(await src.fill(n))) throw truncated(what);
  return src.take(n);
}

async function skip(src: ByteSource, n: number, what: string): Promise<void> {
  if (src.available >= n) {
    src.drop(n);
    return;
  }
  let left = n;
  while (left > 0) {
    if (!(await src.fill(1))) throw truncated(what);
    left -= src.takeUpTo(left).length;
  }
}

function parseTime(v: Buffer | undefined): { sec: number; nsec: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(-?\d+)(?:\.(\d+))?$/.exec(v.toString('latin1'));
  if (m === null) return undefined;
  const frac = (m[2] ?? '').slice(0, 9).padEnd(9, '0');
  return { sec: Number(m[1]), nsec: Number(frac) };
}

function parseDecimal(v: Buffer | undefined, what: string, name: string): number | undefined {
  if (v === undefined) return undefined;
  const s = v.toString('latin1');
  if (!/^\d+$/.test(s) || Number(s) > Number.MAX_SAFE_INTEGER) throw new ArchiveError(`invalid PAX ${what} ${JSON.stringify(s)}`, name);
  return Number(s);
}

/** The sparse map named by PAX records (0.0/0.1), 'v1' when it is in the data (1.0), else undefined. */
function sparseFromPax(pax: ReadonlyMap<string, Buffer>, name: string): SparseMap | 'v1' | undefined {
  if (pax === NO_RECORDS) return undefined;
  const major = pax.get('GNU.sparse.major')?.toString('latin1');
  if (major !== undefined) {
    const minor = pax.get('GNU.sparse.minor')?.toString('latin1');
    if (major !== '1' || minor !== '0') throw new ArchiveError(`unsupported GNU sparse format ${major}.${minor}`, name);
    return 'v1';
  }
  const map = pax.get('GNU.sparse.map');
  if (map === undefined) return undefined;
  const realSize = parseDecimal(pax.get('GNU.sparse.realsize') ?? pax.get('GNU.sparse.size'), 'sparse size', name);
  if (realSize === undefined) throw new ArchiveError('GNU sparse map without a size', name);
  const nums = map.toString('latin1').split(',').map((v) => (/^\d+$/.test(v) ? Number(v) : NaN));
  if (nums.length % 2 !== 0 || nums.some((n) => Number.isNaN(n))) throw new ArchiveError('malformed GNU sparse map', name);
  const extents: Array<[number, number]> = [];
  for (let k = 0; k < nums.length; k += 2) extents.push([nums[k]!, nums[k + 1]!]);
  return { realSize, extents };
}

/** Reads a PAX 1.0 sparse map from the data: count, then offset/length pairs, one per line. */
async function readSparseV1Map(src: ByteSource, dataSize: number, name: string): Promise<{ map: SparseMap; consumed: number }> {
  const numbers: number[] = [];
  let line = '';
  let consumed = 0;
  let wanted = 1;
  while (numbers.length < wanted) {
    if (consumed >= dataSize || consumed > 1 << 24) throw new ArchiveError('malformed GNU sparse 1.0 map', name);
    const block = await readExact(src, BLOCK, `sparse map of ${JSON.stringify(name)}`);
    consumed += BLOCK;
    for (let k = 0; k < BLOCK && numbers.length < wanted; k++) {
      const c = block[k]!;
      if (c === 0x0a) {
        if (!/^\d+$/.test(line)) throw new ArchiveError('malformed GNU sparse 1.0 map', name);
        numbers.push(Number(line));
        line = '';
        if (numbers.length === 1) wanted = 1 + 2 * numbers[0]!;
      } else {
        line += String.fromCharCode(c);
        if (line.length > 20) throw new ArchiveError('malformed GNU sparse 1.0 map', name);
      }
    }
  }
  const extents: Array<[number, number]> = [];
  for (let k = 1; k < numbers.length; k += 2) extents.push([numbers[k]!, numbers[k + 1]!]);
  return { map: { realSize: -1, extents }, consumed };
}

/** Extents must be in order, not overlap, lie within the real size and add up to the stored data. */
function checkSparse(map: SparseMap, stored: number, name: string): void {
  let end = 0;
  let total = 0;
  for (const [offset, length] of map.extents) {
    if (offset < end) throw new ArchiveError('GNU sparse map extents overlap or are out of order', name);
    end = offset + length;
    total += length;
  }
  if (total !== stored) throw new ArchiveError(`GNU sparse map covers ${total} bytes but the entry stores ${stored}`, name);
  if (map.realSize >= 0 && end > map.realSize) throw new ArchiveError('GNU sparse map reaches past the file size', name);
}

/**
 * The tar reader's state machine. next() returns the next entry synchronously when its header
 * (and any extended header before it) is already buffered — the common case for the small
 * entries of a layer — and a Promise only when it has to wait for input, so a layer of
 * thousands of small files is parsed without a promise per entry.
 */
class TarParser {
  private pax = new Map<string, Buffer>();
  private longName: Buffer | undefined;
  private longLink: Buffer | undefined;
  private count = 0;
  /** Bytes of the previous entry (unread data and padding) to skip before the next header. */
  private pendingSkip = 0;
  private pendingName = '';
  private done = false;

  constructor(private readonly src: ByteSource, private readonly limits: TarLimits) {}

  next(): TarEntry | null | Promise<TarEntry | null> {
    if (this.done) return null;
    const src = this.src;
    if (this.pendingSkip > 0) {
      if (src.available < this.pendingSkip) return this.nextAsync();
      src.drop(this.pendingSkip);
      this.pendingSkip = 0;
    }
    for (;;) {
      const block = src.peek(BLOCK);
      if (block === null) return this.nextAsync();
      if (isZeroBlock(block)) {
        this.done = true;
        return null;
      }
      const raw = decodeHeader(block);
      if (typeof raw === 'string') throw new ArchiveError(raw);
      if (isExtended(raw.typeflag)) {
        const whole = BLOCK + raw.size + padding(raw.size);
        if (raw.size > this.limits.maxRecordSize || src.available < whole) return this.nextAsync();
        src.drop(BLOCK);
        this.extended(raw, src.take(raw.size));
        src.drop(padding(raw.size));
        continue;
      }
      if (raw.gnuSparse?.extended) return this.nextAsync();
      src.drop(BLOCK);
      const entry = this.entry(raw);
      if (entry === null) return this.sparseV1(raw);
      return entry;
    }
  }

  /** The general path: waits for input wherever it has to. */
  private async nextAsync(): Promise<TarEntry | null> {
    const src = this.src;
    if (this.pendingSkip > 0) {
      await skip(src, this.pendingSkip, `data of ${JSON.stringify(this.pendingName)}`);
      this.pendingSkip = 0;
    }
    for (;;) {
      if (src.available < BLOCK && !(await src.fill(BLOCK))) {
        if (src.available > 0) throw truncated('header');
        this.done = true;
        return null; // EOF on a block boundary without the end marker: accepted, as Go's and GNU tar do
      }
      const block = src.take(BLOCK);
      if (isZeroBlock(block)) {
        this.done = true;
        return null;
      }
      const raw = decodeHeader(block);
      if (typeof raw === 'string') throw new ArchiveError(raw);
      if (isExtended(raw.typeflag)) {
        if (raw.size > this.limits.maxRecordSize) {
          throw new ArchiveError(`extended header of ${raw.size} bytes exceeds the limit of ${this.limits.maxRecordSize}`, raw.name.toString('utf8'));
        }
        const data = await readExact(src, raw.size, 'extended header');
        await skip(src, padding(raw.size), 'extended header');
        this.extended(raw, data);
        continue;
      }
      // Old GNU sparse: extension blocks with more extents follow the header.
      if (raw.gnuSparse?.extended) {
        for (let blocks = 0; ; blocks++) {
          if (blocks > 1 << 16) throw new ArchiveError('GNU sparse map too long', raw.name.toString('utf8'));
          const ext = await readExact(src, BLOCK, 'GNU sparse map');
          const more = parseSparseEntries(ext, 0, 21);
          if (typeof more === 'string') throw new ArchiveError(more, raw.name.toString('utf8'));
          raw.gnuSparse.extents.push(...more);
          if (ext[504] === 0) break;
        }
      }
      return this.entry(raw) ?? this.sparseV1(raw);
    }
  }

  /** Folds a PAX or GNU long-name record into the state for the next entry. */
  private extended(raw: RawHeader, data: Buffer): void {
    if (raw.typeflag === 'L' || raw.typeflag === 'K') {
      const nul = data.indexOf(0);
      const value = Buffer.from(nul === -1 ? data : data.subarray(0, nul));
      if (raw.typeflag === 'L') this.longName = value; else this.longLink = value;
      return;
    }
    const records = parsePax(data);
    if (typeof records === 'string') throw new ArchiveError(records, raw.name.toString('utf8'));
    // Global headers are ignored, as the engine ignores them.
    if (raw.typeflag === 'x') for (const [k, v] of records) this.pax.set(k, v);
  }

  /** Header fields common to every entry. */
  private headerOf(raw: RawHeader): { header: TarEntryHeader; merged: ReadonlyMap<string, Buffer> } {
    const merged: ReadonlyMap<string, Buffer> = this.pax.size === 0 ? NO_RECORDS : this.pax;
    const name = merged.get('GNU.sparse.name')?.toString('utf8') ?? merged.get('path')?.toString('utf8') ??
      this.longName?.toString('utf8') ?? raw.name.toString('utf8');
    const type = entryTypeOf(raw.typeflag);
    if (type === undefined) throw new ArchiveError(`unsupported tar entry type ${JSON.stringify(raw.typeflag)}`, name);
    if (++this.count > this.limits.maxEntries) throw new ArchiveError(`archive has more than ${this.limits.maxEntries} entries`);
    let xattrs = NO_RECORDS;
    if (merged !== NO_RECORDS) {
      const found = new Map<string, Buffer>();
      for (const [k, v] of merged) if (k.startsWith('SCHILY.xattr.')) found.set(k.slice('SCHILY.xattr.'.length), v);
      if (found.size > 0) xattrs = found;
    }
    const mtime = parseTime(merged.get('mtime')) ?? { sec: raw.mtime, nsec: 0 };
    const atime = parseTime(merged.get('atime'));
    const header: TarEntryHeader = {
      name, type,
      size: type === 'file' ? (parseDecimal(merged.get('size'), 'size', name) ?? raw.size) : 0,
      mode: raw.mode & 0o7777,
      uid: parseDecimal(merged.get('uid'), 'uid', name) ?? raw.uid,
      gid: parseDecimal(merged.get('gid'), 'gid', name) ?? raw.gid,
      mtimeSec: mtime.sec, mtimeNsec: mtime.nsec,
      ...(atime ? { atimeSec: atime.sec, atimeNsec: atime.nsec } : {}),
      linkname: merged.get('linkpath')?.toString('utf8') ?? this.longLink?.toString('utf8') ?? raw.linkname.toString('utf8'),
      devmajor: raw.devmajor, devminor: raw.devminor,
      xattrs,
    };
    return { header, merged };
  }

  /** The entry for `raw`, or null when it is PAX sparse 1.0 (its map must be read first). */
  private entry(raw: RawHeader): TarEntry | null {
    if (this.pax.get('GNU.sparse.major') !== undefined && sparseFromPax(this.pax, raw.name.toString('utf8')) === 'v1') return null;
    const { header, merged } = this.headerOf(raw);
    let sparse = sparseFromPax(merged, header.name);
    if (raw.gnuSparse !== undefined) sparse = { realSize: raw.gnuSparse.realSize, extents: raw.gnuSparse.extents };
    if (sparse === 'v1') throw new ArchiveError('unexpected GNU sparse 1.0 entry', header.name); // handled by sparseV1
    const stored = header.size;
    if (sparse !== undefined) {
      checkSparse(sparse, stored, header.name);
      header.sparse = sparse;
    }
    return this.finish(header, stored, stored);
  }

  /** A PAX sparse 1.0 entry: the extent map is at the start of its data. */
  private async sparseV1(raw: RawHeader): Promise<TarEntry> {
    const { header, merged } = this.headerOf(raw);
    const total = header.size;
    const read = await readSparseV1Map(this.src, total, header.name);
    const realSize = parseDecimal(merged.get('GNU.sparse.realsize'), 'sparse size', header.name);
    if (realSize === undefined) throw new ArchiveError('GNU sparse 1.0 entry without GNU.sparse.realsize', header.name);
    const sparse: SparseMap = { realSize, extents: read.map.extents };
    checkSparse(sparse, total - read.consumed, header.name);
    header.sparse = sparse;
    header.size = total - read.consumed;
    return this.finish(header, header.size, total);
  }

  /** Resets the per-entry state and hands out the entry; `dataSize` bytes of data follow. */
  private finish(header: TarEntryHeader, dataSize: number, paddedFrom: number): TarEntry {
    if (this.pax.size > 0) this.pax = new Map();
    this.longName = undefined;
    this.longLink = undefined;
    const src = this.src;
    const name = header.name;
    let remaining = dataSize;
    const padAfter = padding(paddedFrom);
    // Whatever the caller leaves unread is skipped before the next header.
    this.pendingSkip = remaining + padAfter;
    this.pendingName = name;
    const parser = this;
    const consumed = (n: number): void => {
      remaining -= n;
      parser.pendingSkip = remaining + padAfter;
    };
    return {
      header,
      async *body(): AsyncGenerator<Buffer> {
        while (remaining > 0) {
          if (!(await src.fill(1))) throw truncated(`data of ${JSON.stringify(name)}`);
          const chunk = src.takeUpTo(Math.min(remaining, 1 << 20));
          consumed(chunk.length);
          yield chunk;
        }
      },
      takeBuffered(): Buffer[] | null {
        if (src.available < remaining) return null;
        const chunks: Buffer[] = [];
        while (remaining > 0) {
          const chunk = src.takeUpTo(remaining);
          consumed(chunk.length);
          chunks.push(chunk);
        }
        return chunks;
      },
    };
  }
}

function isExtended(typeflag: string): boolean {
  return typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K';
}

/**
 * Calls `visit` for each entry of a tar stream, in order, awaiting it only when it returns a
 * Promise. Throws ArchiveError on malformed or truncated input.
 */
export async function visitTar(source: AsyncIterable<Buffer | string>, limits: TarLimits,
  visit: (entry: TarEntry) => void | Promise<void>): Promise<void> {
  const src = new ByteSource(source);
  const parser = new TarParser(src, limits);
  try {
    for (;;) {
      let entry = parser.next();
      if (entry instanceof Promise) entry = await entry;
      if (entry === null) return;
      const r = visit(entry);
      if (r !== undefined) await r;
    }
  } finally {
    await src.return();
  }
}

/** Iterates the entries of a tar stream. Throws ArchiveError on malformed or truncated input. */
export async function* readTar(source: AsyncIterable<Buffer | string>, limits: TarLimits = DEFAULT_TAR_LIMITS): AsyncGenerator<TarEntry> {
  const src = new ByteSource(source);
  const parser = new TarParser(src, limits);
  try {
    for (;;) {
      const entry = await parser.next();
      if (entry === null) return;
      yield entry;
    }
  } finally {
    await src.return();
  }
}
