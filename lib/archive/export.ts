// export.ts: tar streams out of a tree — a whole tree, or only a list of changes (deletions
// as `.wh.NAME` whiteouts). The tree is read with the addon's scanTree (lstat and xattrs of
// every entry in one call) and small files with readFiles (megabytes per call, the next group
// read while the current one is written); large files stream through an fd opened
// O_NOFOLLOW. Nothing follows a symlink. Order is deterministic (byte order of names, each
// directory before its contents); a hardlinked file is stored once and its later names as link
// entries; PAX carries long names, xattrs and nanosecond mtimes.
// With `whiteouts: 'overlay'` the tree is an overlay upper layer: 0/0 character devices are
// exported as `.wh.NAME` and a trusted.overlay.opaque=y directory as `.wh..wh..opq`.
import { constants as fsc, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ChangeKind, type Change } from '../driver';
import { C, ScanField as F, ScanFlag, readFiles, scanTree, sparseMap, type TreeScan } from '../native';
import { endOfArchive, headerBlocks, padding, type WriteHeader } from './tar-stream-io';
import { WHITEOUT_OPAQUE_DIR, whiteoutFor } from './whiteout';

export type WhiteoutFormat = 'aufs' | 'overlay';

export interface ExportOptions {
  /** How deletions are stored in the tree being exported (default 'aufs': nothing to convert). */
  whiteouts?: WhiteoutFormat;
}

/** Files up to this size are read in bulk; larger ones stream. */
const SMALL_FILE = 1 << 20;
/** Bytes per readFiles call, and the size output chunks are gathered to. */
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
    return new Tree(root, await scanTree(root, ScanFlag.allXattrs));
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

/** Gathers small buffers into chunks of about OUT_CHUNK; passes big ones through. */
class Output {
  private parts: Buffer[] = [];
  private size = 0;
  private readonly ready: Buffer[] = [];

  add(b: Buffer): void {
    if (b.length >= OUT_CHUNK / 4) {
      this.flush();
      this.ready.push(b);
      return;
    }
    this.parts.push(b);
    this.size += b.length;
    if (this.size >= OUT_CHUNK) this.flush();
  }

  flush(): void {
    if (this.parts.length === 0) return;
    this.ready.push(this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size));
    this.parts = [];
    this.size = 0;
  }

  *drain(): Generator<Buffer> {
    while (this.ready.length > 0) yield this.ready.shift()!;
  }
}

/** Groups of small files (indices in write order) read in one readFiles call each. */
function readGroups(tree: Tree, indices: readonly number[]): number[][] {
  const groups: number[][] = [];
  let group: number[] = [];
  let bytes = 0;
  const firstNames = new Set<string>();
  for (const i of indices) {
    if (tree.type(i) !== C.S_IFREG) continue;
    const size = tree.field(i, F.size);
    if (size > SMALL_FILE) continue;
    if (tree.field(i, F.blocks) * 512 < size) continue; // has holes: written sparse, read by extent
    if (tree.field(i, F.nlink) > 1) {
      const key = tree.inodeKey(i);
      if (firstNames.has(key)) continue; // written as a link entry: no data
      firstNames.add(key);
    }
    if (group.length > 0 && bytes + size > READ_BATCH) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(i);
    bytes += size;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

async function readGroup(tree: Tree, group: readonly number[]): Promise<Map<number, Buffer>> {
  const r = await readFiles(tree.root, group.map((i) => tree.paths[i]!), group.map((i) => tree.field(i, F.size)));
  const out = new Map<number, Buffer>();
  let off = 0;
  group.forEach((i, k) => {
    const size = tree.field(i, F.size);
    if (r.lengths[k] !== size) {
      throw new Error(`${path.join(tree.root, tree.paths[i]!)} changed while it was archived (expected ${size} bytes, read ${r.lengths[k]})`);
    }
    out.set(i, r.data.subarray(off, off + size));
    off += size;
  });
  return out;
}

class TarProducer {
  private readonly links = new Map<string, string>();
  readonly out = new Output();

  constructor(private readonly tree: Tree, private readonly whiteouts: WhiteoutFormat) {}

  /** Writes the entries `indices` (in order), reading small files a group ahead. */
  async *entries(indices: readonly number[]): AsyncGenerator<Buffer> {
    const groups = readGroups(this.tree, indices);
    const start = (g: number): Promise<Map<number, Buffer>> | undefined => {
      if (g >= groups.length) return undefined;
      const p = readGroup(this.tree, groups[g]!);
      p.catch(() => undefined); // awaited in turn
      return p;
    };
    const groupOf = new Map<number, number>();
    groups.forEach((group, g) => { for (const i of group) groupOf.set(i, g); });
    let g = 0;
    let pending = start(0);
    let contents = new Map<number, Buffer>();
    for (const i of indices) {
      if (groupOf.get(i) === g && !contents.has(i)) {
        contents = await pending!;
        pending = start(++g);
      }
      await this.entry(i, contents.get(i));
      yield* this.out.drain();
    }
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

  private async entry(i: number, content: Buffer | undefined): Promise<void> {
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
      // Fewer blocks than bytes: there are holes, so the file travels as GNU sparse 1.0.
      if (content === undefined && size > 0 && t.field(i, F.blocks) * 512 < size && await this.sparseEntry(abs, h, size)) return;
      this.out.add(headerBlocks({ ...h, size }));
      if (content !== undefined) this.out.add(content);
      else await this.streamFile(abs, size);
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
      h.linkname = (await fsp.readlink(path.join(t.root, t.paths[i]!), { encoding: 'buffer' })).toString('utf8');
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

  /**
   * Writes a file with holes as PAX sparse 1.0 (as GNU tar does): the entry is named
   * dir/GNUSparseFile.0/base with the real name in GNU.sparse.name, and its data is the extent
   * map in decimal lines (block-padded) followed by the extents. False if it has no holes.
   */
  private async sparseEntry(abs: string, h: WriteHeader, realSize: number): Promise<boolean> {
    const pairs = await sparseMap(abs);
    let stored = 0;
    for (let k = 1; k < pairs.length; k += 2) stored += pairs[k]!;
    if (stored >= realSize) return false;
    const extents: Array<[number, number]> = [];
    for (let k = 0; k + 1 < pairs.length; k += 2) extents.push([pairs[k]!, pairs[k + 1]!]);
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
    const fh = await fsp.open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      for (const [offset, length] of extents) {
        for (let done = 0; done < length;) {
          const buf = Buffer.allocUnsafe(Math.min(READ_BATCH, length - done));
          const { bytesRead } = await fh.read(buf, 0, buf.length, offset + done);
          if (bytesRead === 0) throw new Error(`${abs} shrank while it was archived`);
          done += bytesRead;
          this.out.add(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
        }
      }
    } finally {
      await fh.close();
    }
    const pad = padding(map.length + stored);
    if (pad > 0) this.out.add(Buffer.alloc(pad));
    return true;
  }

  private async streamFile(abs: string, size: number): Promise<void> {
    const fh = await fsp.open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      let offset = 0;
      while (offset < size) {
        const buf = Buffer.allocUnsafe(Math.min(READ_BATCH, size - offset));
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        if (bytesRead === 0) throw new Error(`${abs} shrank while it was archived (expected ${size} bytes, read ${offset})`);
        offset += bytesRead;
        this.out.add(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
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

/** A tar of the whole tree at `root` (the root directory itself is not an entry). */
export function exportTree(root: string, done?: () => void, options: ExportOptions = {}): Readable {
  return toStream((async function* () {
    const tree = await Tree.read(root);
    const producer = new TarProducer(tree, options.whiteouts ?? 'aufs');
    yield* producer.entries(Array.from({ length: tree.size }, (_, i) => i));
    producer.out.add(endOfArchive());
    producer.out.flush();
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
    producer.out.flush();
    yield* producer.out.drain();
  })(), done);
}
