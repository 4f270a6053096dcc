// export.ts: tar streams out of a tree — a whole tree, or only a list of changes (deletions
// as `.wh.NAME` whiteouts). Reads through the layer's own path and never follows a symlink:
// regular files are opened O_NOFOLLOW after lstat. Hardlinked files are stored once and later
// names as hardlink entries. Times are stored in whole seconds, as the engine does, so a
// layer's tar is the same whenever it is made.
import { constants as fsc, promises as fsp } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ChangeKind, type Change } from '../driver';
import { hasCode } from '../errors';
import { lgetxattr, llistxattr } from '../native';
import { endOfArchive, headerBlocks, padding, type WriteHeader } from './tar-stream-io';
import { whiteoutFor } from './whiteout';

const READ_CHUNK = 1 << 20;

/** xattrs that belong to the filesystem below, not to the layer's content. */
function exportableXattr(name: string): boolean {
  return !name.startsWith('trusted.overlay.') && name !== 'security.selinux';
}

async function readXattrs(p: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  let names: string[];
  try {
    names = await llistxattr(p);
  } catch (err) {
    if (hasCode(err, 'ENOTSUP') || hasCode(err, 'EOPNOTSUPP')) return out;
    throw err;
  }
  for (const name of names.sort()) {
    if (!exportableXattr(name)) continue;
    try {
      out.set(name, await lgetxattr(p, name));
    } catch (err) {
      if (!hasCode(err, 'ENODATA')) throw err;
    }
  }
  return out;
}

/** glibc's major()/minor() of a dev_t. */
export function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
export function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

/** Produces the tar bytes of entries under one root, remembering hardlinks across entries. */
class TarProducer {
  private readonly links = new Map<string, string>();
  constructor(private readonly root: string) {}

  async *entry(rel: string): AsyncGenerator<Buffer> {
    const abs = path.join(this.root, rel);
    let st: BigIntStats;
    try {
      st = await fsp.lstat(abs, { bigint: true });
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return; // removed since the change list was made
      throw err;
    }
    const name = rel.replace(/^\/+/, '');
    const h: WriteHeader = {
      name: st.isDirectory() ? `${name}/` : name, type: 'file',
      mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), size: 0,
      mtimeSec: Number(st.mtimeNs / 1_000_000_000n), xattrs: await readXattrs(abs),
    };
    if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1n ? this.links.get(key) : undefined;
      if (first !== undefined) {
        yield headerBlocks({ ...h, type: 'link', linkname: first });
        return;
      }
      if (st.nlink > 1n) this.links.set(key, name);
      yield* this.fileEntry(abs, { ...h, size: Number(st.size) });
      return;
    }
    if (st.isDirectory()) h.type = 'dir';
    else if (st.isSymbolicLink()) {
      h.type = 'symlink';
      h.linkname = (await fsp.readlink(abs, { encoding: 'buffer' })).toString('utf8');
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      h.type = st.isCharacterDevice() ? 'char' : 'block';
      h.devmajor = devMajor(st.rdev);
      h.devminor = devMinor(st.rdev);
    } else if (st.isFIFO()) h.type = 'fifo';
    else return; // sockets do not travel in tar
    yield headerBlocks(h);
  }

  private async *fileEntry(abs: string, h: WriteHeader): AsyncGenerator<Buffer> {
    const fh = await fsp.open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      yield headerBlocks(h);
      let offset = 0;
      while (offset < h.size) {
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, h.size - offset));
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        if (bytesRead === 0) throw new Error(`${abs} shrank while it was archived (expected ${h.size} bytes, read ${offset})`);
        offset += bytesRead;
        yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
      }
      const pad = padding(h.size);
      if (pad > 0) yield Buffer.alloc(pad);
    } finally {
      await fh.close();
    }
  }

  whiteout(rel: string): Buffer {
    const dir = path.posix.dirname(rel).replace(/^\/+/, '');
    const name = path.posix.join(dir, whiteoutFor(path.posix.basename(rel)));
    return headerBlocks({ name, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtimeSec: Math.floor(Date.now() / 1000) });
  }
}

function toStream(gen: AsyncGenerator<Buffer>, done?: () => void): Readable {
  const stream = Readable.from(gen, { objectMode: false, highWaterMark: 1 << 20 });
  if (done !== undefined) {
    let called = false;
    const once = (): void => { if (!called) { called = true; done(); } };
    stream.once('close', once);
  }
  return stream;
}

/** A tar of the listed changes of the tree at `root`. `done` runs once when the stream closes (ended or destroyed). */
export function exportChanges(root: string, changes: readonly Change[], done?: () => void): Readable {
  const sorted = [...changes].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const producer = new TarProducer(root);
  return toStream((async function* () {
    for (const change of sorted) {
      if (change.kind === ChangeKind.Delete) yield producer.whiteout(change.path);
      else yield* producer.entry(change.path);
    }
    yield endOfArchive();
  })(), done);
}

/** A tar of the whole tree at `root` (the root directory itself is not an entry). */
export function exportTree(root: string, done?: () => void): Readable {
  const producer = new TarProducer(root);
  const walk = async function* (rel: string): AsyncGenerator<Buffer> {
    const names = (await fsp.readdir(path.join(root, rel))).sort();
    for (const n of names) {
      const childRel = rel === '/' ? `/${n}` : `${rel}/${n}`;
      yield* producer.entry(childRel);
      const st = await fsp.lstat(path.join(root, childRel));
      if (st.isDirectory()) yield* walk(childRel);
    }
  };
  return toStream((async function* () {
    yield* walk('/');
    yield endOfArchive();
  })(), done);
}
