// fs-tree.ts: build a filesystem tree from a declarative spec, snapshot a tree into a
// comparable record of every entry, and compare two snapshots field by field. Used by the
// conformance cases as the oracle for "these two layers hold the same tree".
//
// A snapshot records, per path ('/' is the tree's root): type, permission bits (mode & 07777),
// uid, gid, rdev (devices), size (files, symlinks), mtime in ns (non-directories: directory
// mtimes are not a measure of change, as in the engine), sha256 of the content, symlink target,
// xattrs (user.* and security.capability, sorted, hex values), and the hardlink group (every
// path in the tree sharing the inode, when there is more than one).
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { C, lgetxattr, llistxattr, lsetxattr, mknod, utimensat } from '../../lib/native';

/** Metadata any entry may set. Unset fields keep the defaults (root-owned, 0755 dirs, 0644 files). */
export interface MetaSpec {
  mode?: number;
  uid?: number;
  gid?: number;
  /** mtime (and atime) in nanoseconds since the epoch. */
  mtimeNs?: bigint;
  /** Set after chown and chmod (chown clears security.capability). */
  xattrs?: Record<string, Buffer | string>;
}

export type EntrySpec =
  | ({ type: 'dir'; path: string } & MetaSpec)
  | ({ type: 'file'; path: string; content?: string | Buffer } & MetaSpec)
  | ({ type: 'symlink'; path: string; target: string } & Omit<MetaSpec, 'mode'>)
  | { type: 'hardlink'; path: string; target: string }
  | ({ type: 'char' | 'block'; path: string; major: number; minor: number } & MetaSpec)
  | ({ type: 'fifo'; path: string } & MetaSpec);

export type EntryType = 'dir' | 'file' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

export interface EntryRecord {
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  rdev?: string;
  size?: number;
  mtimeNs?: bigint;
  sha256?: string;
  target?: string;
  xattrs: string[];
  links?: string[];
}

/** A tree snapshot: path ('/', '/a', '/a/b') -> record, in sorted path order. */
export type TreeSnapshot = Map<string, EntryRecord>;

function abs(root: string, p: string): string {
  const rel = p.replace(/^\/+/, '');
  if (rel === '' || rel.split('/').includes('..')) throw new Error(`fs-tree: bad spec path ${JSON.stringify(p)}`);
  return path.join(root, rel);
}

const defaultMode: Record<EntrySpec['type'], number> = {
  dir: 0o755, file: 0o644, symlink: 0o777, hardlink: 0, char: 0o600, block: 0o600, fifo: 0o644,
};

/** Creates the entries under `root` (parents made 0755 as needed), then sets metadata and times. */
export async function buildTree(root: string, entries: EntrySpec[]): Promise<void> {
  for (const e of entries) {
    const p = abs(root, e.path);
    await fsp.mkdir(path.dirname(p), { recursive: true, mode: 0o755 });
    switch (e.type) {
      case 'dir': await fsp.mkdir(p, { recursive: true, mode: 0o700 }); break;
      case 'file': await fsp.writeFile(p, e.content ?? '', { mode: 0o600 }); break;
      case 'symlink': await fsp.symlink(e.target, p); break;
      case 'hardlink': await fsp.link(abs(root, e.target), p); break;
      case 'char': await mknod(p, C.S_IFCHR | 0o600, e.major, e.minor); break;
      case 'block': await mknod(p, C.S_IFBLK | 0o600, e.major, e.minor); break;
      case 'fifo': await mknod(p, C.S_IFIFO | 0o600, 0, 0); break;
    }
  }
  for (const e of entries) {
    if (e.type === 'hardlink') continue;
    const p = abs(root, e.path);
    await fsp.lchown(p, e.uid ?? 0, e.gid ?? 0);
    if (e.type !== 'symlink') await fsp.chmod(p, e.mode ?? defaultMode[e.type]);
    for (const [name, value] of Object.entries(e.xattrs ?? {})) {
      await lsetxattr(p, name, Buffer.isBuffer(value) ? value : Buffer.from(value), 0);
    }
  }
  // Times last, directories deepest first, so creating children does not move them.
  const timed = entries.filter((e): e is Exclude<EntrySpec, { type: 'hardlink' }> => e.type !== 'hardlink' && e.mtimeNs !== undefined);
  const order = [...timed.filter((e) => e.type !== 'dir'),
    ...timed.filter((e) => e.type === 'dir').sort((a, b) => b.path.split('/').length - a.path.split('/').length)];
  for (const e of order) {
    const ns = e.mtimeNs!;
    const sec = Number(ns / 1_000_000_000n);
    const nsec = Number(ns % 1_000_000_000n);
    await utimensat(C.AT_FDCWD, abs(root, e.path), sec, nsec, sec, nsec, C.AT_SYMLINK_NOFOLLOW);
  }
}

function typeOf(st: import('node:fs').BigIntStats): EntryType {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

/** Linux's major/minor split of a dev_t. */
export function majorMinor(rdev: bigint): [number, number] {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return [major, minor];
}

/** The xattrs a snapshot records, as sorted `name=hex`. */
export async function recordedXattrs(p: string): Promise<string[]> {
  let names: string[];
  try {
    names = await llistxattr(p);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOTSUP') return [];
    throw err;
  }
  const out: string[] = [];
  for (const name of names.filter((n) => n.startsWith('user.') || n === 'security.capability').sort()) {
    out.push(`${name}=${(await lgetxattr(p, name)).toString('hex')}`);
  }
  return out;
}

/** Sorted relative paths of everything under `root` ('/a', '/a/b', ...), root itself excluded. */
export async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await fsp.readdir(dir)).sort()) {
      const r = `${rel}/${name}`;
      out.push(r);
      const st = await fsp.lstat(path.join(dir, name));
      if (st.isDirectory()) await walk(path.join(dir, name), r);
    }
  };
  await walk(root, '');
  return out;
}

/** Snapshots every entry under `root`, `root` itself as '/'. */
export async function snapshotTree(root: string): Promise<TreeSnapshot> {
  const snap: TreeSnapshot = new Map();
  const inodes = new Map<string, string[]>();
  const visit = async (p: string, rel: string): Promise<void> => {
    const st = await fsp.lstat(p, { bigint: true });
    const type = typeOf(st);
    const rec: EntryRecord = { type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), xattrs: await recordedXattrs(p) };
    if (type === 'char' || type === 'block') rec.rdev = majorMinor(st.rdev).join(':');
    if (type !== 'dir') rec.mtimeNs = st.mtimeNs;
    if (type === 'file') {
      rec.size = Number(st.size);
      rec.sha256 = createHash('sha256').update(await fsp.readFile(p)).digest('hex');
    }
    if (type === 'symlink') {
      rec.target = await fsp.readlink(p);
      rec.size = Number(st.size);
    }
    if (type !== 'dir' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      let group = inodes.get(key);
      if (group === undefined) inodes.set(key, (group = []));
      group.push(rel);
      rec.links = group; // shared: every path of the inode sees the whole group
    }
    snap.set(rel, rec);
    if (type === 'dir') {
      for (const name of (await fsp.readdir(p)).sort()) await visit(path.join(p, name), rel === '/' ? `/${name}` : `${rel}/${name}`);
    }
  };
  await visit(root, '/');
  // A group of one (the other links live outside the tree) says nothing: drop it.
  for (const rec of snap.values()) {
    if (rec.links !== undefined) {
      if (rec.links.length < 2) delete rec.links;
      else rec.links = [...rec.links].sort();
    }
  }
  return snap;
}

export interface CompareOptions {
  /** How to compare non-directory mtimes: 'ns' exactly, 's' at second precision (what a tar carries), 'none'. */
  mtime?: 'ns' | 's' | 'none';
  /** Paths to leave out of the comparison. */
  skip?: (p: string) => boolean;
  /** Names for the two sides in messages. */
  labels?: [string, string];
}

function fmt(field: string, v: unknown): string {
  if (v === undefined) return '-';
  if (field === 'mode' && typeof v === 'number') return `0${v.toString(8)}`;
  if (Array.isArray(v)) return `[${v.join(', ')}]`;
  return String(v);
}

/** Every difference between two snapshots, as `path: field a != b` lines (empty when equal). */
export function compareTrees(a: TreeSnapshot, b: TreeSnapshot, opts: CompareOptions = {}): string[] {
  const [la, lb] = opts.labels ?? ['a', 'b'];
  const mtime = opts.mtime ?? 'ns';
  const out: string[] = [];
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const p of paths) {
    if (opts.skip?.(p)) continue;
    const x = a.get(p);
    const y = b.get(p);
    if (x === undefined || y === undefined) {
      out.push(`${p}: only in ${x === undefined ? lb : la} (${(x ?? y)!.type})`);
      continue;
    }
    const fields: Array<keyof EntryRecord> = ['type', 'mode', 'uid', 'gid', 'rdev', 'size', 'sha256', 'target', 'xattrs', 'links'];
    for (const f of fields) {
      const vx = fmt(f, x[f]);
      const vy = fmt(f, y[f]);
      if (vx !== vy) out.push(`${p}: ${f} ${vx} (${la}) != ${vy} (${lb})`);
    }
    if (mtime !== 'none' && (x.mtimeNs !== undefined || y.mtimeNs !== undefined)) {
      const cut = (v: bigint | undefined): string => (v === undefined ? '-' : mtime === 's' ? String(v / 1_000_000_000n) : String(v));
      if (cut(x.mtimeNs) !== cut(y.mtimeNs)) out.push(`${p}: mtime ${x.mtimeNs} (${la}) != ${y.mtimeNs} (${lb}) at ${mtime} precision`);
    }
  }
  return out;
}
