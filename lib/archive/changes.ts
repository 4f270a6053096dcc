// changes.ts: the changes between two trees (the engine's ChangesDirs) and their size
// (ChangesSize). Both trees are walked together, one directory at a time, with the addon's
// scanDir (lstat and security.capability of every entry in one call). Never follows a
// symlink. Semantics kept from the engine:
//   - an entry is Modify when mode, uid, gid, rdev differ, or for non-directories when size
//     or mtime differ (an mtime with zero nanoseconds matches any with the same second, as
//     tar truncates), or when security.capability differs;
//   - an entry with the same inode on the same device in both trees is unchanged, and a
//     directory with the same inode is not walked at all (it is the same tree);
//   - a directory whose contents changed is reported Modify too (except '/'), before them;
//   - a deleted directory is one Delete; a parent of '' makes everything an Add.
import { promises as fsp } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { ChangeKind, type Change } from '../driver';
import { hasCode } from '../errors';
import { C, ScanField as F, ScanFlag, scanDir, type ScanResult } from '../native';

const EMPTY_SCAN: ScanResult = { names: [], stats: new Float64Array(0), xattrs: [] };

function capabilityOf(scan: ScanResult, i: number): Buffer | null {
  const xs = scan.xattrs[i];
  if (!xs) return null;
  for (let k = 0; k + 1 < xs.length; k += 2) if (xs[k] === 'security.capability') return xs[k + 1] as Buffer;
  return null;
}

function isDir(scan: ScanResult, i: number): boolean {
  return (scan.stats[i * F.count + F.mode]! & C.S_IFMT) === C.S_IFDIR;
}

/** Same inode on the same device: the very same file (or, for a directory, tree). */
function sameInode(a: ScanResult, i: number, b: ScanResult, j: number): boolean {
  const x = i * F.count;
  const y = j * F.count;
  return a.stats[x + F.dev] === b.stats[y + F.dev] && a.stats[x + F.inoLow] === b.stats[y + F.inoLow] &&
    a.stats[x + F.inoHigh] === b.stats[y + F.inoHigh];
}

function statDifferent(o: ScanResult, i: number, n: ScanResult, j: number): boolean {
  const a = o.stats;
  const b = n.stats;
  const x = i * F.count;
  const y = j * F.count;
  if (a[x + F.mode] !== b[y + F.mode] || a[x + F.uid] !== b[y + F.uid] || a[x + F.gid] !== b[y + F.gid] ||
      a[x + F.rdevMajor] !== b[y + F.rdevMajor] || a[x + F.rdevMinor] !== b[y + F.rdevMinor]) return true;
  if ((a[x + F.mode]! & C.S_IFMT) === C.S_IFDIR) return false;
  if (a[x + F.size] !== b[y + F.size]) return true;
  const sameTime = a[x + F.mtimeSec] === b[y + F.mtimeSec] &&
    (a[x + F.mtimeNsec] === b[y + F.mtimeNsec] || a[x + F.mtimeNsec] === 0 || b[y + F.mtimeNsec] === 0);
  return !sameTime;
}

function capEqual(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return (a === null || a.length === 0) && (b === null || b.length === 0);
  return a.equals(b);
}

const join = (rel: string, name: string): string => (rel === '/' ? `/${name}` : `${rel}/${name}`);

/**
 * Appends the changes under directory `rel` (newDir vs oldDir; oldDir '' = absent) to `out`.
 * `reported` says whether `rel` itself was already reported Add or Modify by its parent.
 */
async function compareDir(newDir: string, oldDir: string, rel: string, reported: boolean, out: Change[]): Promise<void> {
  const sizeAtEntry = out.length;
  const [cur, old] = await Promise.all([
    scanDir(newDir, ScanFlag.capability),
    oldDir === '' ? EMPTY_SCAN : scanDir(oldDir, ScanFlag.capability),
  ]);
  const oldIndex = new Map<string, number>();
  old.names.forEach((n, i) => oldIndex.set(n, i));
  for (let j = 0; j < cur.names.length; j++) {
    const name = cur.names[j]!;
    const childRel = join(rel, name);
    const i = oldIndex.get(name);
    if (i === undefined) {
      out.push({ path: childRel, kind: ChangeKind.Add });
      if (isDir(cur, j)) await compareDir(path.join(newDir, name), '', childRel, true, out);
      continue;
    }
    oldIndex.delete(name);
    if (sameInode(old, i, cur, j)) continue;
    let childReported = false;
    if (statDifferent(old, i, cur, j) || !capEqual(capabilityOf(old, i), capabilityOf(cur, j))) {
      out.push({ path: childRel, kind: ChangeKind.Modify });
      childReported = true;
    }
    if (isDir(cur, j)) {
      await compareDir(path.join(newDir, name), isDir(old, i) ? path.join(oldDir, name) : '', childRel, childReported, out);
    }
  }
  for (const name of oldIndex.keys()) out.push({ path: join(rel, name), kind: ChangeKind.Delete });
  // Changes inside an unreported directory still carry it, so its permissions are restored.
  if (out.length > sizeAtEntry && !reported && rel !== '/') out.splice(sizeAtEntry, 0, { path: rel, kind: ChangeKind.Modify });
}

/** The changes that turn `oldDir` into `newDir`; `oldDir` '' means an empty tree. */
export async function changesDirs(newDir: string, oldDir: string): Promise<Change[]> {
  const out: Change[] = [];
  await compareDir(newDir, oldDir, '/', true, out);
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
