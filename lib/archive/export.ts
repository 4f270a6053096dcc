// export.ts: tar streams out of a tree — a whole tree, or only a list of changes (deletions
// as `.wh.NAME` whiteouts). The tree is read with the addon's scanTree (lstat, xattrs and
// symlink targets of every entry in one call) and small files with readFilesInto (megabytes of
// tar per call, read straight into place, the next segment laid out meanwhile); large files
// stream through an fd opened O_NOFOLLOW. Nothing follows a symlink. Order is deterministic (byte order of names, each
// directory before its contents); a hardlinked file is stored once and its later names as link
// entries; PAX carries long names, xattrs and nanosecond mtimes.
// With `whiteouts: 'overlay'` the tree is an overlay upper layer: 0/0 character devices are
// exported as `.wh.NAME` and a trusted.overlay.opaque=y directory as `.wh..wh..opq`.
import { constants as fsc, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ChangeKind, type Change } from '../driver';
import { C, ScanField as F, ScanFlag, readFilesInto, scanTree, sparseMap, type TreeScan } from '../native';
import { endOfArchive, headerBlocks, padding, type WriteHeader } from './tar-writer';
import { WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE_DIR, whiteoutFor } from './whiteout';

export type WhiteoutFormat = 'aufs' | 'overlay';

export interface ExportOptions {
  /** How deletions are stored in the tree being exported (default 'aufs': nothing to convert). */
  whiteouts?: WhiteoutFormat;
  /**
   * exportTree only: leave out top-level AUFS metadata — every `.wh..wh.*` entry at the root
   * (e.g. `.wh..wh.plnk`, `.wh..wh.aufs`) and all below it — as the engine's aufs Diff does;
   * `.wh..wh..opq` (an opaque root) is kept.
   */
  skipAufsMetadata?: boolean;
}

/** Files up to this size are read in bulk; larger ones stream. */
const SMALL_FILE = 1 << 20;
/** Bytes of tar built per readFilesInto call. */
const SEGMENT = 4 << 20;
/** Bytes read per call when streaming a large file. */
const READ_BATCH = 8 << 20;
const OUT_CHUNK = 1 << 20;
const OVERLAY_OPAQUE = 'trusted.overlay.opaque';

/** xattrs that belong to the filesystem below, not to the layer's content. */
function exportableXattr(name: string): boolean {
  return !name.startsWith('trusted.overlay.') && name !== 'security.selinux';
}

/** A scanned tree with each entry's path (relative to the root, no leading '/'). */
class Tree {
  readonly paths: string[];
  constructor(readonly root: string, readonly scan: TreeScan) {
    const { names, parents } = scan;
    this.paths = new Array<string>(names.length);
    for (let i = 0; i < names.length; i++) {
      const p = parents[i]!;
      this.paths[i] = p < 0 ? names[i]! : `${this.paths[p]}/${names[i]}`;
    }
  }

  static async read(root: string): Promise<Tree> {
    return new Tree(root, await scanTree(root, ScanFlag.allXattrs | ScanFlag.linkTargets));
  }

  get size(): number { return this.scan.names.length; }
  field(i: number, f: number): number { return this.scan.stats[i * F.count + f]!; }
  type(i: number): number { return this.field(i, F.mode) & C.S_IFMT; }
  inodeKey(i: number): string { return `${this.field(i, F.dev)}:${this.field(i, F.inoHigh)}:${this.field(i, F.inoLow)}`; }

  xattrs(i: number): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    const xs = this.scan.xattrs[i];
    if (!xs) return out;
    for (let k = 0; k + 1 < xs.length; k += 2) {
      if (exportableXattr(xs[k] as string)) out.set(xs[k] as string, xs[k + 1] as Buffer);
    }
    return out;
  }

  isOpaque(i: number): boolean {
    const xs = this.scan.xattrs[i];
    if (!xs) return false;
    for (let k = 0; k + 1 < xs.length; k += 2) if (xs[k] === OVERLAY_OPAQUE) return (xs[k + 1] as Buffer).toString() === 'y';
    return false;
  }
}

/** A file whose data is read straight into a segment: where, and how much. */
interface Slot { index: number; offset: number; size: number }

/**
 * Builds the tar byte stream in segments of about SEGMENT bytes: headers are encoded in JS and
 * small files' data is read by the addon straight into the segment (readFilesInto), so many
 * small files cost one pool round trip and no extra copy. One segment is read while the next
 * is laid out. Large and sparse files are streamed between segments.
 */
class Segments {
  private parts: Array<Buffer | Slot> = [];
  private bytes = 0;
  private pending: Promise<Buffer> | undefined;
  private readonly ready: Buffer[] = [];

  constructor(private readonly tree: Tree) {}

  get size(): number { return this.bytes; }

  add(b: Buffer): void {
    this.parts.push(b);
    this.bytes += b.length;
  }

  /** Reserves `size` bytes (plus tar padding) for entry `index`'s data. */
  addFile(index: number, size: number): void {
    this.parts.push({ index, offset: 0, size });
    this.bytes += size + padding(size);
  }

  /** Starts reading the current segment; the previous one becomes ready. */
  async cut(): Promise<void> {
    if (this.pending !== undefined) this.ready.push(await this.pending);
    this.pending = undefined;
    if (this.bytes === 0) return;
    const parts = this.parts;
    const total = this.bytes;
    this.parts = [];
    this.bytes = 0;
    this.pending = this.fill(parts, total);
    this.pending.catch(() => undefined); // awaited at the next cut or flush
  }

  /** Everything added so far is ready, in order. */
  async flush(): Promise<void> {
    await this.cut();
    await this.cut();
  }

  *drain(): Generator<Buffer> {
    while (this.ready.length > 0) yield this.ready.shift()!;
  }

  private async fill(parts: ReadonlyArray<Buffer | Slot>, total: number): Promise<Buffer> {
    // A lone big buffer (a chunk of a streamed file) needs no segment of its own.
    if (parts.length === 1 && Buffer.isBuffer(parts[0])) return parts[0];
    const segment = Buffer.alloc(total); // zeroed: tar padding after each file's data
    const slots: Slot[] = [];
    let off = 0;
    for (const part of parts) {
      if (Buffer.isBuffer(part)) {
        part.copy(segment, off);
        off += part.length;
      } else {
        slots.push({ ...part, offset: off });
        off += part.size + padding(part.size);
      }
    }
    if (slots.length === 0) return segment;
    const t = this.tree;
    const got = await readFilesInto(t.root, slots.map((x) => t.paths[x.index]!), slots.map((x) => x.size), slots.map((x) => x.offset), segment);
    slots.forEach((x, k) => {
      if (got[k] !== x.size) {
        throw new Error(`${path.join(t.root, t.paths[x.index]!)} changed while it was archived (expected ${x.size} bytes, read ${got[k]})`);
      }
    });
    return segment;
  }
}

class TarProducer {
  private readonly links = new Map<string, string>();
  readonly out: Segments;

  constructor(private readonly tree: Tree, private readonly whiteouts: WhiteoutFormat) {
    this.out = new Segments(tree);
  }

  /** Writes the entries `indices` in order. */
  async *entries(indices: readonly number[]): AsyncGenerator<Buffer> {
    for (const i of indices) {
      yield* this.entry(i);
      yield* this.maybeCut();
    }
  }

  /** Cuts a segment once enough is laid out, and passes on what is ready. */
  private async *maybeCut(): AsyncGenerator<Buffer> {
    if (this.out.size < SEGMENT) return;
    await this.out.cut();
    yield* this.out.drain();
  }

  private header(i: number): WriteHeader {
    const t = this.tree;
    const name = t.paths[i]!;
    const nsec = t.field(i, F.mtimeNsec);
    return {
      name: t.type(i) === C.S_IFDIR ? `${name}/` : name, type: 'file',
      mode: t.field(i, F.mode) & 0o7777, uid: t.field(i, F.uid), gid: t.field(i, F.gid), size: 0,
      mtimeSec: t.field(i, F.mtimeSec), ...(nsec !== 0 ? { mtimeNsec: nsec } : {}), xattrs: t.xattrs(i),
    };
  }

  private async *entry(i: number): AsyncGenerator<Buffer> {
    const t = this.tree;
    const type = t.type(i);
    const h = this.header(i);
    if (this.whiteouts === 'overlay' && type === C.S_IFCHR && t.field(i, F.rdevMajor) === 0 && t.field(i, F.rdevMinor) === 0) {
      const rel = t.paths[i]!;
      const dir = path.posix.dirname(rel);
      this.out.add(headerBlocks({ ...h, name: path.posix.join(dir === '.' ? '' : dir, whiteoutFor(path.posix.basename(rel))), mode: 0o600, xattrs: new Map() }));
      return;
    }
    if (type === C.S_IFREG) {
      const size = t.field(i, F.size);
      if (t.field(i, F.nlink) > 1) {
        const key = t.inodeKey(i);
        const first = this.links.get(key);
        if (first !== undefined) {
          this.out.add(headerBlocks({ ...h, type: 'link', linkname: first }));
          return;
        }
        this.links.set(key, h.name);
      }
      const abs = path.join(t.root, t.paths[i]!);
      if (size <= SMALL_FILE && t.field(i, F.blocks) * 512 >= size) {
        this.out.add(headerBlocks({ ...h, size }));
        this.out.addFile(i, size);
        return;
      }
      // Fewer blocks than bytes: there are holes, so the file travels as GNU sparse 1.0.
      if (size > 0 && t.field(i, F.blocks) * 512 < size) {
        const extents = await this.dataExtents(abs, size);
        if (extents !== undefined) {
          yield* this.sparseEntry(abs, h, size, extents);
          return;
        }
      }
      this.out.add(headerBlocks({ ...h, size }));
      yield* this.readRanges(abs, [[0, size]]);
      const pad = padding(size);
      if (pad > 0) this.out.add(Buffer.alloc(pad));
      return;
    }
    if (type === C.S_IFDIR) {
      this.out.add(headerBlocks({ ...h, type: 'dir' }));
      if (this.whiteouts === 'overlay' && t.isOpaque(i)) {
        this.out.add(headerBlocks({ ...h, name: `${h.name}${WHITEOUT_OPAQUE_DIR}`, type: 'file', mode: h.mode & 0o777, xattrs: new Map() }));
      }
      return;
    }
    if (type === C.S_IFLNK) {
      h.type = 'symlink';
      const target = t.scan.links?.[i] ?? await fsp.readlink(path.join(t.root, t.paths[i]!), { encoding: 'buffer' });
      h.linkname = target.toString('utf8');
    } else if (type === C.S_IFCHR || type === C.S_IFBLK) {
      h.type = type === C.S_IFCHR ? 'char' : 'block';
      h.devmajor = t.field(i, F.rdevMajor);
      h.devminor = t.field(i, F.rdevMinor);
    } else if (type === C.S_IFIFO) {
      h.type = 'fifo';
    } else {
      return; // sockets do not travel in tar
    }
    this.out.add(headerBlocks(h));
  }

  /** A file's data extents, or undefined when it has no holes after all. */
  private async dataExtents(abs: string, realSize: number): Promise<Array<[number, number]> | undefined> {
    const pairs = await sparseMap(abs);
    const extents: Array<[number, number]> = [];
    let stored = 0;
    for (let k = 0; k + 1 < pairs.length; k += 2) {
      extents.push([pairs[k]!, pairs[k + 1]!]);
      stored += pairs[k + 1]!;
    }
    return stored < realSize ? extents : undefined;
  }

  /**
   * Writes a file with holes as PAX sparse 1.0 (as GNU tar does): the entry is named
   * dir/GNUSparseFile.0/base with the real name in GNU.sparse.name, and its data is the extent
   * map in decimal lines (block-padded) followed by the extents.
   */
  private async *sparseEntry(abs: string, h: WriteHeader, realSize: number, extents: Array<[number, number]>): AsyncGenerator<Buffer> {
    const stored = extents.reduce((n, [, l]) => n + l, 0);
    // A trailing hole is kept by an empty extent at the end, as GNU tar writes it.
    const last = extents[extents.length - 1];
    if (last === undefined || last[0] + last[1] < realSize) extents.push([realSize, 0]);
    const mapText = Buffer.from(`${extents.length}\n${extents.map(([o, l]) => `${o}\n${l}\n`).join('')}`, 'latin1');
    const map = Buffer.concat([mapText, Buffer.alloc(padding(mapText.length))]);
    const dir = path.posix.dirname(h.name);
    this.out.add(headerBlocks({
      ...h, name: path.posix.join(dir === '.' ? '' : dir, 'GNUSparseFile.0', path.posix.basename(h.name)), size: map.length + stored,
      pax: [['GNU.sparse.major', Buffer.from('1')], ['GNU.sparse.minor', Buffer.from('0')],
        ['GNU.sparse.name', Buffer.from(h.name)], ['GNU.sparse.realsize', Buffer.from(String(realSize))]],
    }));
    this.out.add(map);
    yield* this.readRanges(abs, extents);
    const pad = padding(map.length + stored);
    if (pad > 0) this.out.add(Buffer.alloc(pad));
  }

  /** Streams byte ranges of a (large) file into the output, a READ_BATCH at a time. */
  private async *readRanges(abs: string, ranges: ReadonlyArray<[number, number]>): AsyncGenerator<Buffer> {
    const fh = await fsp.open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      for (const [offset, length] of ranges) {
        for (let done = 0; done < length;) {
          const buf = Buffer.allocUnsafe(Math.min(READ_BATCH, length - done));
          const { bytesRead } = await fh.read(buf, 0, buf.length, offset + done);
          if (bytesRead === 0) throw new Error(`${abs} shrank while it was archived (expected ${length} bytes at ${offset}, read ${done})`);
          done += bytesRead;
          // Its own segment, so the chunk is passed on as it is rather than copied into one.
          await this.out.cut();
          this.out.add(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
          await this.out.cut();
          yield* this.out.drain();
        }
      }
    } finally {
      await fh.close();
    }
  }

  whiteout(rel: string): void {
    const dir = path.posix.dirname(rel).slice(1);
    const name = path.posix.join(dir, whiteoutFor(path.posix.basename(rel)));
    this.out.add(headerBlocks({ name, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtimeSec: Math.floor(Date.now() / 1000) }));
  }
}

function toStream(gen: AsyncGenerator<Buffer>, done?: () => void): Readable {
  const stream = Readable.from(gen, { objectMode: false, highWaterMark: OUT_CHUNK });
  if (done !== undefined) {
    let called = false;
    stream.once('close', () => {
      if (!called) { called = true; done(); }
    });
  }
  return stream;
}

/** Whether a root-relative path is, or is below, a top-level AUFS metadata entry. */
function isAufsMetadata(rel: string): boolean {
  const slash = rel.indexOf('/');
  const top = slash < 0 ? rel : rel.slice(0, slash);
  return top.startsWith(WHITEOUT_META_PREFIX) && top !== WHITEOUT_OPAQUE_DIR;
}

/** A tar of the whole tree at `root` (the root directory itself is not an entry). */
export function exportTree(root: string, done?: () => void, options: ExportOptions = {}): Readable {
  return toStream((async function* () {
    const tree = await Tree.read(root);
    const producer = new TarProducer(tree, options.whiteouts ?? 'aufs');
    let indices = Array.from({ length: tree.size }, (_, i) => i);
    if (options.skipAufsMetadata === true) indices = indices.filter((i) => !isAufsMetadata(tree.paths[i]!));
    yield* producer.entries(indices);
    producer.out.add(endOfArchive());
    await producer.out.flush();
    yield* producer.out.drain();
  })(), done);
}

/** A tar of the listed changes of the tree at `root`. `done` runs once when the stream closes (ended or destroyed). */
export function exportChanges(root: string, changes: readonly Change[], done?: () => void, options: ExportOptions = {}): Readable {
  const sorted = [...changes].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return toStream((async function* () {
    const tree = await Tree.read(root);
    const producer = new TarProducer(tree, options.whiteouts ?? 'aufs');
    const index = new Map<string, number>(tree.paths.map((p, i) => [`/${p}`, i]));
    let run: number[] = [];
    for (const change of sorted) {
      if (change.kind === ChangeKind.Delete) {
        yield* producer.entries(run);
        run = [];
        producer.whiteout(change.path);
        continue;
      }
      const i = index.get(change.path);
      if (i !== undefined) run.push(i); // else removed since the change list was made
    }
    yield* producer.entries(run);
    producer.out.add(endOfArchive());
    await producer.out.flush();
    yield* producer.out.drain();
  })(), done);
}
