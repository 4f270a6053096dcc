// changes.ts: the changes between two trees (the engine's ChangesDirs) and their size
// (ChangesSize). Both trees are walked together, one directory at a time, with the addon's
// scanDir (lstat and security.capability of every entry in one call). Never follows a
// symlink. Semantics kept from the engine:
//   - an entry is Modify when mode, uid, gid, rdev differ, or for non-directories when size
//     or mtime differ (an mtime with zero nanoseconds matches any with the same second, as
//     tar truncates), or when security.capability differs;
//   - an entry with the same inode on the same device in both trees is unchanged without
//     comparing it, and a directory with the same inode is not compared below (same tree);
//   - a directory whose contents changed is reported Modify too (except '/'), before them;
//   - a deleted directory is one Delete; a parent of '' makes everything an Add.
import { promises as fsp } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { ChangeKind, type Change } from '../driver';
import { hasCode } from '../errors';
import { C, ScanField as F, ScanFlag, scanTree, type TreeScan } from '../native';

/** A scanned tree with each directory's children (indices into the scan, sorted by name). */
class Tree {
  readonly children: number[][];   // children[i + 1]: entries of directory i; children[0]: the root's
  constructor(readonly scan: TreeScan) {
    this.children = Array.from({ length: scan.names.length + 1 }, () => [] as number[]);
    for (let i = 0; i < scan.names.length; i++) this.children[scan.parents[i]! + 1]!.push(i);
  }
  static async read(root: string): Promise<Tree> {
    return new Tree(await scanTree(root, ScanFlag.capability));
  }
  static empty(): Tree {
    return new Tree({ names: [], parents: new Int32Array(0), stats: new Float64Array(0), xattrs: [] });
  }
  f(i: number, field: number): number { return this.scan.stats[i * F.count + field]!; }
  isDir(i: number): boolean { return (this.f(i, F.mode) & C.S_IFMT) === C.S_IFDIR; }
  capability(i: number): Buffer | null {
    const xs = this.scan.xattrs[i];
    if (!xs) return null;
    for (let k = 0; k + 1 < xs.length; k += 2) if (xs[k] === 'security.capability') return xs[k + 1] as Buffer;
    return null;
  }
}

/** Same inode on the same device: the very same file (or, for a directory, tree). */
function sameInode(a: Tree, i: number, b: Tree, j: number): boolean {
  return a.f(i, F.dev) === b.f(j, F.dev) && a.f(i, F.inoLow) === b.f(j, F.inoLow) && a.f(i, F.inoHigh) === b.f(j, F.inoHigh);
}

function statDifferent(o: Tree, i: number, n: Tree, j: number): boolean {
  if (o.f(i, F.mode) !== n.f(j, F.mode) || o.f(i, F.uid) !== n.f(j, F.uid) || o.f(i, F.gid) !== n.f(j, F.gid) ||
      o.f(i, F.rdevMajor) !== n.f(j, F.rdevMajor) || o.f(i, F.rdevMinor) !== n.f(j, F.rdevMinor)) return true;
  if (o.isDir(i)) return false;
  if (o.f(i, F.size) !== n.f(j, F.size)) return true;
  const on = o.f(i, F.mtimeNsec);
  const nn = n.f(j, F.mtimeNsec);
  return !(o.f(i, F.mtimeSec) === n.f(j, F.mtimeSec) && (on === nn || on === 0 || nn === 0));
}

function capEqual(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return (a === null || a.length === 0) && (b === null || b.length === 0);
  return a.equals(b);
}

const join = (rel: string, name: string): string => (rel === '/' ? `/${name}` : `${rel}/${name}`);

/**
 * Appends the changes inside one directory to `out`: `newDir`/`oldDir` are entry indices in
 * their trees (-1 for the root; oldDir null when the directory is new or was not a directory).
 * `reported` says whether the directory itself was already reported Add or Modify.
 */
function compareDir(nt: Tree, newDir: number, ot: Tree, oldDir: number | null, rel: string, reported: boolean, out: Change[]): void {
  const sizeAtEntry = out.length;
  const oldIndex = new Map<string, number>();
  if (oldDir !== null) for (const i of ot.children[oldDir + 1]!) oldIndex.set(ot.scan.names[i]!, i);
  for (const j of nt.children[newDir + 1]!) {
    const name = nt.scan.names[j]!;
    const childRel = join(rel, name);
    const i = oldIndex.get(name);
    if (i === undefined) {
      out.push({ path: childRel, kind: ChangeKind.Add });
      if (nt.isDir(j)) compareDir(nt, j, ot, null, childRel, true, out);
      continue;
    }
    oldIndex.delete(name);
    if (sameInode(ot, i, nt, j)) continue;
    let childReported = false;
    if (statDifferent(ot, i, nt, j) || !capEqual(ot.capability(i), nt.capability(j))) {
      out.push({ path: childRel, kind: ChangeKind.Modify });
      childReported = true;
    }
    if (nt.isDir(j)) compareDir(nt, j, ot, ot.isDir(i) ? i : null, childRel, childReported, out);
  }
  for (const name of oldIndex.keys()) out.push({ path: join(rel, name), kind: ChangeKind.Delete });
  // Changes inside an unreported directory still carry it, so its permissions are restored.
  if (out.length > sizeAtEntry && !reported && rel !== '/') out.splice(sizeAtEntry, 0, { path: rel, kind: ChangeKind.Modify });
}

/** The changes that turn `oldDir` into `newDir`; `oldDir` '' means an empty tree. */
export async function changesDirs(newDir: string, oldDir: string): Promise<Change[]> {
  const [nt, ot] = await Promise.all([Tree.read(newDir), oldDir === '' ? Tree.empty() : Tree.read(oldDir)]);
  const out: Change[] = [];
  compareDir(nt, -1, ot, -1, '/', true, out);
  return out;
}

/** Sum of sizes of added and modified non-directories under `dir`, each hardlinked inode once. */
export async function changesSize(dir: string, changes: readonly Change[]): Promise<number> {
  let size = 0;
  const seen = new Set<bigint>();
  for (const change of changes) {
    if (change.kind !== ChangeKind.Modify && change.kind !== ChangeKind.Add) continue;
    let st: BigIntStats;
    try {
      st = await fsp.lstat(path.join(dir, change.path), { bigint: true });
    } catch (err) {
      if (hasCode(err, 'ENOENT')) continue;
      throw err;
    }
    if (st.isDirectory()) continue;
    if (st.nlink > 1n) {
      if (seen.has(st.ino)) continue;
      seen.add(st.ino);
    }
    size += Number(st.size);
  }
  return size;
}
