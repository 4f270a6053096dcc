// apply.ts: writes a layer tar (plain or gzip) into a layer directory, the engine's
// UnpackLayer: `.wh.NAME` deletes NAME, `.wh..wh..opq` empties its directory of whatever this
// tar did not itself put there, an existing entry is replaced unless both are directories
// (then only metadata is applied), and directory times are set last. Returns the sum of the
// entries' sizes. Every write is fd-relative under a Root handle (root.ts); a final name is
// never followed. Hostile names are refused with ArchiveError naming the entry.
import { ftruncate as fsFtruncate, promises as fsp, writev as fsWritev } from 'node:fs';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { PassThrough, Readable, pipeline } from 'node:stream';
import { ArchiveError, hasCode } from '../errors';
import {
  ApplyOpKind, C, closeSync, fchmod, fchmodat, fchown, fchownat, fsetxattr, fstatat, linkat, lsetxattr,
  mkdirat, mknodat, openat, removeAllAt, setxattr, symlinkat, utimensat, type StatResult,
} from '../native';
import { BatchQueue, type BatchOp } from './apply-batch';
import { Root, cleanName, procPath } from './root';
import type { TarEntryHeader } from './tar-format';
import { DEFAULT_TAR_LIMITS, visitTar, type TarEntry, type TarLimits } from './tar-stream-io';
import { WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE_DIR, WHITEOUT_PREFIX } from './whiteout';

const writevFd = promisify(fsWritev);
const ftruncateFd = promisify(fsFtruncate);

export interface ApplyOptions {
  limits?: TarLimits;
  /**
   * How deletions are written into the layer: 'aufs' (default) removes what a `.wh.NAME`
   * names and empties an opaque directory of what lower entries put there; 'overlay' writes
   * overlayfs's own form into a diff directory instead — a 0/0 character device for
   * `.wh.NAME` and trusted.overlay.opaque=y for `.wh..wh..opq` — and removes nothing.
   * 'keep' writes an aufs diff directory: `.wh.NAME` and `.wh..wh..opq` are stored as they
   * travel, as empty regular files (the entry's owner, mode and times), and nothing is removed.
   */
  whiteouts?: 'aufs' | 'overlay' | 'keep';
}

const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';
const OVERLAY_XATTR_PREFIX = 'trusted.overlay.';

/**
 * The xattrs of an entry that may be written into a layer. overlayfs keeps its own metadata
 * in trusted.overlay.* (redirect, metacopy, origin, opaque): from a tar it would plant that
 * metadata in a layer (an opaque dir or a redirect to elsewhere in the lowers), so it is
 * dropped; the opaque marker travels as `.wh..wh..opq` and is set by the conversion here.
 */
function layerXattrs(h: TarEntryHeader): ReadonlyMap<string, Buffer> {
  let found = false;
  for (const k of h.xattrs.keys()) if (k.startsWith(OVERLAY_XATTR_PREFIX)) { found = true; break; }
  if (!found) return h.xattrs;
  return new Map([...h.xattrs].filter(([k]) => !k.startsWith(OVERLAY_XATTR_PREFIX)));
}

/** Peeks at the first bytes: gzip is decompressed; other compressions are refused clearly. */
async function* decompressed(input: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  let first: Buffer = Buffer.alloc(0);
  let ended = false;
  while (first.length < 6) {
    const r = await it.next();
    if (r.done) { ended = true; break; }
    first = Buffer.concat([first, typeof r.value === 'string' ? Buffer.from(r.value) : r.value]);
  }
  const rest = async function* (): AsyncGenerator<Buffer> {
    if (first.length > 0) yield first;
    if (ended) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    }
  };
  const magic = (bytes: number[]): boolean => bytes.every((b, i) => first[i] === b);
  if (magic([0x1f, 0x8b])) {
    // pipeline, not pipe: an error of the input must end the iteration below, not hang it.
    const gunzip = createGunzip();
    pipeline(Readable.from(rest()), gunzip, () => undefined);
    try {
      for await (const chunk of gunzip) yield chunk as Buffer;
    } catch (err) {
      throw new ArchiveError(`invalid gzip stream: ${(err as Error).message}`, undefined, { cause: err });
    }
    return;
  }
  if (magic([0x42, 0x5a, 0x68])) throw new ArchiveError('bzip2-compressed layers are not supported (use gzip or plain tar)');
  if (magic([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) throw new ArchiveError('xz-compressed layers are not supported (use gzip or plain tar)');
  if (magic([0x28, 0xb5, 0x2f, 0xfd])) throw new ArchiveError('zstd-compressed layers are not supported (use gzip or plain tar)');
  yield* rest();
}

async function statAt(dirfd: number, name: string): Promise<StatResult | null> {
  try {
    return await fstatat(dirfd, name, C.AT_SYMLINK_NOFOLLOW);
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return null;
    throw err;
  }
}

const isDirMode = (mode: number): boolean => (mode & C.S_IFMT) === C.S_IFDIR;

function times(h: TarEntryHeader): [number, number, number, number] {
  // The engine never sets atime earlier than mtime.
  let as = h.atimeSec ?? h.mtimeSec;
  let ans = h.atimeNsec ?? h.mtimeNsec;
  if (as < h.mtimeSec || (as === h.mtimeSec && ans < h.mtimeNsec)) { as = h.mtimeSec; ans = h.mtimeNsec; }
  return [as, ans, h.mtimeSec, h.mtimeNsec];
}

/** xattrs the kernel or filesystem may refuse without that being the archive's fault. */
function ignorableXattrError(err: unknown): boolean {
  return hasCode(err, 'ENOTSUP') || hasCode(err, 'EOPNOTSUPP') || hasCode(err, 'EPERM');
}

/** Bytes of a large file gathered into one writev(2): fewer pool round trips than one per chunk. */
const WRITE_GATHER = 4 << 20;

/** writev(fd, buffers, position) until all of them are written. */
async function writeAll(fd: number, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers;
  let pos = position;
  while (rest.length > 0) {
    let n = (await writevFd(fd, rest, pos)).bytesWritten;
    pos += n;
    let k = 0;
    while (k < rest.length && n >= rest[k]!.length) n -= rest[k++]!.length;
    rest = rest.slice(k);
    if (n > 0) rest[0] = rest[0]!.subarray(n);
  }
}

/** Writes the entry's data; a sparse file's extents go to their offsets, holes stay holes. */
async function writeBody(fd: number, entry: TarEntry): Promise<void> {
  const sparse = entry.header.sparse;
  let extent = 0;
  let extentLeft = sparse?.extents[0]?.[1] ?? Infinity;
  let position = sparse?.extents[0]?.[0] ?? 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let pendingAt = position;
  const flush = async (): Promise<void> => {
    if (pendingBytes > 0) await writeAll(fd, pending, pendingAt);
    pending = [];
    pendingBytes = 0;
  };
  for await (const chunk of entry.body()) {
    let off = 0;
    while (off < chunk.length) {
      if (sparse !== undefined) {
        while (extentLeft === 0) {
          extent++;
          position = sparse.extents[extent]![0];
          extentLeft = sparse.extents[extent]![1];
        }
      }
      const len = Math.min(chunk.length - off, extentLeft);
      if (pendingAt + pendingBytes !== position) {
        await flush();
        pendingAt = position;
      }
      pending.push(chunk.subarray(off, off + len));
      pendingBytes += len;
      off += len;
      position += len;
      extentLeft -= len;
      if (pendingBytes >= WRITE_GATHER) await flush();
    }
  }
  await flush();
  if (sparse !== undefined) await ftruncateFd(fd, sparse.realSize);
}

/** Creates one non-whiteout entry as `name` in `dirfd` and applies its metadata (except dir times). */
async function createEntry(root: Root, dirfd: number, name: string, entry: TarEntry, exists: boolean): Promise<void> {
  const h = entry.header;
  if (h.type === 'file') {
    const fd = await openat(dirfd, name, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    try {
      await writeBody(fd, entry);
      await fchown(fd, h.uid, h.gid);
      for (const [k, v] of layerXattrs(h)) {
        try { await fsetxattr(fd, k, v, 0); } catch (err) { if (!ignorableXattrError(err)) throw err; }
      }
      await fchmod(fd, h.mode);
    } finally {
      closeSync(fd);
    }
    await utimensat(dirfd, name, ...times(h), C.AT_SYMLINK_NOFOLLOW);
    return;
  }
  let isSymlink = false;
  switch (h.type) {
    case 'dir':
      if (!exists) await mkdirat(dirfd, name, 0o700);
      break;
    case 'symlink':
      // Stored verbatim, even when it points outside: it is never followed while extracting.
      await symlinkat(h.linkname, dirfd, name);
      isSymlink = true;
      break;
    case 'link': {
      const target = cleanName(h.linkname, 'hardlink target');
      if (target.length === 0) throw new ArchiveError('hardlink to the layer root', h.name);
      const tdir = await root.openDir(target.slice(0, -1)).catch((err: unknown) => {
        throw new ArchiveError(`hardlink target ${JSON.stringify(h.linkname)} does not exist in the layer`, h.name, { cause: err });
      });
      try {
        const tbase = target[target.length - 1]!;
        const tst = await statAt(tdir, tbase);
        if (tst === null) throw new ArchiveError(`hardlink target ${JSON.stringify(h.linkname)} does not exist in the layer`, h.name);
        if (isDirMode(tst.mode)) throw new ArchiveError(`hardlink target ${JSON.stringify(h.linkname)} is a directory`, h.name);
        // No AT_SYMLINK_FOLLOW: a hardlink to a symlink links the symlink itself.
        await linkat(tdir, tbase, dirfd, name, 0);
      } finally {
        closeSync(tdir);
      }
      // The link shares the target's inode and metadata: nothing more is applied (native/apply.cc says why).
      return;
    }
    case 'char':
    case 'block':
    case 'fifo': {
      const kind = h.type === 'char' ? C.S_IFCHR : h.type === 'block' ? C.S_IFBLK : C.S_IFIFO;
      await mknodat(dirfd, name, kind | 0o600, h.devmajor, h.devminor);
      break;
    }
  }
  await fchownat(dirfd, name, h.uid, h.gid, C.AT_SYMLINK_NOFOLLOW);
  for (const [k, v] of layerXattrs(h)) {
    try { await lsetxattr(procPath(dirfd, name), k, v, 0); } catch (err) { if (!ignorableXattrError(err)) throw err; }
  }
  if (!isSymlink) await fchmodat(dirfd, name, h.mode);
  if (h.type !== 'dir') await utimensat(dirfd, name, ...times(h), C.AT_SYMLINK_NOFOLLOW);
}

/** Removes everything under `dirfd` that this tar has not unpacked (the opaque-directory rule). */
async function removeNotUnpacked(dirfd: number, prefix: string, unpacked: ReadonlySet<string>): Promise<void> {
  const names = await fsp.readdir(procPath(dirfd));
  for (const n of names) {
    const p = prefix === '' ? n : `${prefix}/${n}`;
    if (!unpacked.has(p)) {
      await removeAllAt(dirfd, n);
      continue;
    }
    const st = await statAt(dirfd, n);
    if (st !== null && isDirMode(st.mode)) {
      const child = await openat(dirfd, n, C.O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW, 0);
      try { await removeNotUnpacked(child, p, unpacked); } finally { closeSync(child); }
    }
  }
}

/** Files larger than this are streamed to disk from JS instead of buffered into a batch. */
const LARGE_FILE = 4 << 20;

const OP_KIND: Record<TarEntryHeader['type'], number> = {
  file: ApplyOpKind.File, dir: ApplyOpKind.Dir, symlink: ApplyOpKind.Symlink, link: ApplyOpKind.Link,
  char: ApplyOpKind.Char, block: ApplyOpKind.Block, fifo: ApplyOpKind.Fifo,
};

/** The op that creates a non-whiteout entry `name` in `parent`. */
function entryOp(h: TarEntryHeader, parent: string, name: string, data: Buffer[] | null): BatchOp {
  const op = baseOp(OP_KIND[h.type], parent, name, h);
  if (data !== null) op.data = data;
  if (h.type === 'symlink') {
    op.linkname = h.linkname;
  } else if (h.type === 'link') {
    const target = cleanName(h.linkname, 'hardlink target');
    if (target.length === 0) throw new ArchiveError('hardlink to the layer root', h.name);
    op.linkParent = target.slice(0, -1).join('/');
    op.linkName = target[target.length - 1]!;
  } else if (h.type === 'char' || h.type === 'block') {
    op.devMajor = h.devmajor;
    op.devMinor = h.devminor;
  }
  return op;
}

function baseOp(kind: number, parent: string, name: string, h: TarEntryHeader): BatchOp {
  const [as, ans, ms, mns] = times(h);
  return {
    kind, parent, name, mode: h.mode, uid: h.uid, gid: h.gid,
    atimeSec: as, atimeNsec: ans, mtimeSec: ms, mtimeNsec: mns, xattrs: layerXattrs(h),
  };
}

/** The name a whiteout basename deletes; ArchiveError when it names no entry. */
function checkWhiteoutVictim(base: string, entry: string): string {
  const victim = base.slice(WHITEOUT_PREFIX.length);
  if (victim === '' || victim === '.' || victim === '..') throw new ArchiveError('whiteout names no entry', entry);
  return victim;
}

/** How far ahead of the apply the input is read. */
const READ_AHEAD = 4 << 20;

/**
 * The input, read ahead into a bounded buffer: a stream read with its own small chunks (an
 * fs.ReadStream's 64 KiB) would otherwise wait for each read in turn; this way reading and
 * writing overlap, with at most READ_AHEAD bytes held.
 */
function readAhead(input: NodeJS.ReadableStream | AsyncIterable<Buffer>): AsyncIterable<Buffer | string> {
  if (!(input instanceof Readable)) return input as AsyncIterable<Buffer | string>;
  const ahead = new PassThrough({ highWaterMark: READ_AHEAD });
  pipeline(input, ahead, () => undefined); // an input error destroys `ahead`, which ends the iteration with it
  return ahead;
}

/** Applies the layer tar `input` to the directory `dir`; resolves to the sum of entry sizes. */
export async function applyLayer(dir: string, input: NodeJS.ReadableStream | AsyncIterable<Buffer>, options: ApplyOptions = {}): Promise<number> {
  const source = readAhead(input);
  const root = await Root.open(dir);
  const queue = new BatchQueue(root.fd);
  const overlay = options.whiteouts === 'overlay';
  const keep = options.whiteouts === 'keep';
  let size = 0;
  const unpacked = new Set<string>();
  const dirs: Array<{ parts: string[]; header: TarEntryHeader }> = [];
  try {
    // The general case, for any entry: whiteouts, opaque markers, large and sparse files, data
    // not yet read in; it may wait for the batch queue or the input.
    const slowVisit = async (entry: TarEntry, parts: string[]): Promise<void> => {
      const h = entry.header;
      size += h.size;
      if (parts.length === 0) {
        if (h.type !== 'dir') throw new ArchiveError('a non-directory entry names the layer root', h.name);
        await queue.drain();
        await fchownat(root.fd, '', h.uid, h.gid, C.AT_EMPTY_PATH);
        await fsp.chmod(procPath(root.fd), h.mode);
        dirs.push({ parts, header: h });
        return;
      }
      // AUFS metadata at the top (e.g. .wh..wh.plnk, .wh..wh.aufs) is not layer content.
      if (parts[0]!.startsWith(WHITEOUT_META_PREFIX) && !(parts.length === 1 && parts[0] === WHITEOUT_OPAQUE_DIR)) return;
      const base = parts[parts.length - 1]!;
      const parentParts = parts.slice(0, -1);
      const parent = parentParts.join('/');
      if (base.startsWith(WHITEOUT_PREFIX)) {
        if (keep && (base === WHITEOUT_OPAQUE_DIR || !base.startsWith(WHITEOUT_META_PREFIX))) {
          // aufs's on-disk form is the tar form: an empty file, through the same confined batch.
          if (base !== WHITEOUT_OPAQUE_DIR) checkWhiteoutVictim(base, h.name);
          await queue.push({ ...baseOp(ApplyOpKind.File, parent, base, h), data: [] }, h.name);
          unpacked.add(parts.join('/'));
          return;
        }
        if (base === WHITEOUT_OPAQUE_DIR) {
          // Needs everything before it on disk, and the set of what this tar wrote.
          await queue.drain();
          const dirfd = await root.openDirCreate(parentParts);
          try {
            if (overlay) await setxattr(procPath(dirfd), OVERLAY_OPAQUE_XATTR, Buffer.from('y'), 0);
            else await removeNotUnpacked(dirfd, parent, unpacked);
          } finally {
            closeSync(dirfd);
          }
          return;
        }
        if (base.startsWith(WHITEOUT_META_PREFIX)) return; // AUFS metadata inside a directory
        const victim = checkWhiteoutVictim(base, h.name);
        if (overlay) {
          // overlayfs's whiteout: a 0/0 character device owned as the tar entry says.
          await queue.push({ ...baseOp(ApplyOpKind.Char, parent, victim, h), mode: 0, devMajor: 0, devMinor: 0, xattrs: new Map() }, h.name);
          unpacked.add(parentParts.concat(victim).join('/'));
        } else {
          await queue.push({ kind: ApplyOpKind.Whiteout, parent, name: victim }, h.name);
        }
        return;
      }
      if (h.sparse !== undefined) size += h.sparse.realSize - h.size; // counted at its real size, as the engine does
      if (h.type === 'file' && (h.size > LARGE_FILE || h.sparse !== undefined)) {
        await queue.drain();
        const dirfd = await root.openDirCreate(parentParts);
        try {
          const existing = await statAt(dirfd, base);
          if (existing !== null) await removeAllAt(dirfd, base);
          await createEntry(root, dirfd, base, entry, false);
        } finally {
          closeSync(dirfd);
        }
      } else {
        let data: Buffer[] | null = null;
        if (h.type === 'file') {
          data = [];
          for await (const chunk of entry.body()) data.push(chunk);
        }
        await queue.push(entryOp(h, parent, base, data), h.name);
      }
      if (h.type === 'dir') dirs.push({ parts, header: h });
      unpacked.add(parts.join('/'));
    };
    // The common case without a promise: a small entry whose data is already buffered.
    const visit = (entry: TarEntry): void | Promise<void> => {
      const h = entry.header;
      const parts = cleanName(h.name);
      const base = parts[parts.length - 1];
      if (base === undefined || parts[0]!.startsWith(WHITEOUT_META_PREFIX) || base.startsWith(WHITEOUT_PREFIX) ||
          h.sparse !== undefined || (h.type === 'file' && h.size > LARGE_FILE)) {
        return slowVisit(entry, parts);
      }
      const data = h.type === 'file' ? entry.takeBuffered() : null;
      if (h.type === 'file' && data === null) return slowVisit(entry, parts);
      size += h.size;
      const op = entryOp(h, parts.slice(0, -1).join('/'), base, data);
      if (h.type === 'dir') dirs.push({ parts, header: h });
      unpacked.add(parts.join('/'));
      return queue.push(op, h.name);
    };
    await visitTar(decompressed(source), options.limits ?? DEFAULT_TAR_LIMITS, visit);
    // Directory times last: creating their children changed them. Setting a directory's times
    // does not touch its parent's, so any order works: grouped by parent, each parent is
    // resolved once.
    const timed = dirs.filter((d) => d.parts.length > 0)
      .map((d) => ({ parent: d.parts.slice(0, -1).join('/'), name: d.parts[d.parts.length - 1]!, header: d.header }))
      .sort((x, y) => (x.parent < y.parent ? -1 : x.parent > y.parent ? 1 : 0));
    for (const { parent, name, header } of timed) {
      const r = queue.push(baseOp(ApplyOpKind.DirTimes, parent, name, header), header.name);
      if (r !== undefined) await r;
    }
    await queue.drain();
    const rootDir = dirs.find((d) => d.parts.length === 0);
    if (rootDir !== undefined) await utimensat(C.AT_FDCWD, procPath(root.fd), ...times(rootDir.header), 0);
  } finally {
    // A failed batch may still be running: wait for it before the root fd goes away.
    await queue.drain().catch(() => undefined);
    root.close();
  }
  return size;
}
