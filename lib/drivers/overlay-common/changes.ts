// changes.ts: native changes and diff size of an overlay upper directory (overlay2's diff/,
// overlay's upper/), read without mounting; shared by both overlay drivers. Only the upper dir
// is walked (one scanTree); the lower layers are consulted name by name, only to tell Add from
// Modify, to drop whiteouts of names no lower has, and to list what an opaque directory hides —
// so the cost follows the layer's own size, not the stack's. Semantics follow archive/changes.ts
// (the engine's ChangesDirs) wherever an upper dir can express them:
//   - a 0/0 character device is a Delete of its name (when a lower has that name);
//   - a non-directory in diff/ that a lower has is a Modify (it was copied up or replaced);
//   - a directory a lower has is a Modify only when its mode, owner or security.capability
//     differ; a directory whose contents changed is reported Modify too (except '/'), first;
//   - a directory (or anything) no lower has is an Add, and so is everything below it;
//   - an opaque directory (trusted.overlay.opaque=y) deletes every visible lower name it does
//     not itself hold: each is a Delete.
// Requires diff/ to hold a plain diff: no redirect_dir or metacopy (check.ts probes that).
// Read-only: nothing here writes.
import { promises as fsp } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { ChangeKind, type Change } from '../../driver';
import { hasCode } from '../../errors';
import * as native from '../../native';
import { C, ScanField as F, ScanFlag, type TreeScan } from '../../native';

const OPAQUE_XATTR = 'trusted.overlay.opaque';
const CAPABILITY_XATTR = 'security.capability';

class UpperTree {
  readonly children: number[][];
  constructor(readonly scan: TreeScan) {
    this.children = Array.from({ length: scan.names.length + 1 }, () => [] as number[]);
    for (let i = 0; i < scan.names.length; i++) this.children[scan.parents[i]! + 1]!.push(i);
  }
  f(i: number, field: number): number { return this.scan.stats[i * F.count + field]!; }
  type(i: number): number { return this.f(i, F.mode) & C.S_IFMT; }
  isDir(i: number): boolean { return this.type(i) === C.S_IFDIR; }
  isWhiteout(i: number): boolean { return this.type(i) === C.S_IFCHR && this.f(i, F.rdevMajor) === 0 && this.f(i, F.rdevMinor) === 0; }
  xattr(i: number, name: string): Buffer | null {
    const xs = this.scan.xattrs[i];
    if (!xs) return null;
    for (let k = 0; k + 1 < xs.length; k += 2) if (xs[k] === name) return xs[k + 1] as Buffer;
    return null;
  }
  isOpaque(i: number): boolean {
    const v = this.xattr(i, OPAQUE_XATTR);
    return v !== null && v.length === 1 && v[0] === 0x79;
  }
}

function isWhiteoutStat(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

async function lstatOrUndefined(p: string): Promise<BigIntStats | undefined> {
  try {
    return await fsp.lstat(p, { bigint: true });
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}

async function xattrOrNull(p: string, name: string): Promise<Buffer | null> {
  try {
    return await native.lgetxattr(p, name);
  } catch (err) {
    if (hasCode(err, 'ENODATA') || hasCode(err, 'ENOTSUP') || hasCode(err, 'ENOENT')) return null;
    throw err;
  }
}

async function isOpaqueDir(p: string): Promise<boolean> {
  const v = await xattrOrNull(p, OPAQUE_XATTR);
  return v !== null && v.length === 1 && v[0] === 0x79;
}

/** The visible entry `name` of a merged lower directory (its dirs nearest first), or undefined. */
async function lowerLookup(lowers: readonly string[], name: string): Promise<{ path: string; st: BigIntStats } | undefined> {
  for (const dir of lowers) {
    const p = path.join(dir, name);
    const st = await lstatOrUndefined(p);
    if (st === undefined) continue;
    return isWhiteoutStat(st) ? undefined : { path: p, st };
  }
  return undefined;
}

/** The lower directories that make up the merged directory `name` below `lowers` (overlay's own merge rules). */
async function descend(lowers: readonly string[], name: string): Promise<string[]> {
  const out: string[] = [];
  for (const dir of lowers) {
    const p = path.join(dir, name);
    const st = await lstatOrUndefined(p);
    if (st === undefined) continue;
    if (!st.isDirectory()) break; // a whiteout or a non-directory hides everything further down
    out.push(p);
    if (await isOpaqueDir(p)) break;
  }
  return out;
}

/** The root directories of the lower layers that are visible (stopping after an opaque one). */
export async function rootLowers(lowerDiffs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const dir of lowerDiffs) {
    out.push(dir);
    if (await isOpaqueDir(dir)) break;
  }
  return out;
}

/** The names visible in a merged lower directory. */
async function lowerNames(lowers: readonly string[]): Promise<string[]> {
  const visible = new Set<string>();
  const hidden = new Set<string>();
  for (const dir of lowers) {
    const scan = await native.scanDir(dir, 0);
    for (let i = 0; i < scan.names.length; i++) {
      const name = scan.names[i]!;
      if (visible.has(name) || hidden.has(name)) continue;
      const mode = scan.stats[i * F.count + F.mode]!;
      const whiteout = (mode & C.S_IFMT) === C.S_IFCHR && scan.stats[i * F.count + F.rdevMajor] === 0 &&
        scan.stats[i * F.count + F.rdevMinor] === 0;
      (whiteout ? hidden : visible).add(name);
    }
  }
  return [...visible].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

function capEqual(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return (a === null || a.length === 0) && (b === null || b.length === 0);
  return a.equals(b);
}

const join = (rel: string, name: string): string => (rel === '/' ? `/${name}` : `${rel}/${name}`);

class Walker {
  readonly out: Change[] = [];
  constructor(private readonly upper: UpperTree) {}

  /** The changes inside upper directory `dir` (-1 = root) at `rel`, whose merged lower dirs are `lowers`. */
  async dir(dir: number, rel: string, lowers: readonly string[], opaque: boolean, reported: boolean): Promise<void> {
    const u = this.upper;
    const start = this.out.length;
    const own = new Set<string>();
    for (const j of u.children[dir + 1]!) {
      const name = u.scan.names[j]!;
      const childRel = join(rel, name);
      own.add(name);
      const lower = lowers.length > 0 ? await lowerLookup(lowers, name) : undefined;
      if (u.isWhiteout(j)) {
        if (lower !== undefined) this.out.push({ path: childRel, kind: ChangeKind.Delete });
        continue;
      }
      if (lower === undefined) {
        this.out.push({ path: childRel, kind: ChangeKind.Add });
        if (u.isDir(j)) await this.dir(j, childRel, [], false, true);
        continue;
      }
      if (u.isDir(j) && lower.st.isDirectory()) {
        const st = lower.st;
        const differs = Number(st.mode) !== u.f(j, F.mode) || Number(st.uid) !== u.f(j, F.uid) || Number(st.gid) !== u.f(j, F.gid) ||
          !capEqual(await xattrOrNull(lower.path, CAPABILITY_XATTR), u.xattr(j, CAPABILITY_XATTR));
        if (differs) this.out.push({ path: childRel, kind: ChangeKind.Modify });
        await this.dir(j, childRel, await descend(lowers, name), u.isOpaque(j), differs);
        continue;
      }
      this.out.push({ path: childRel, kind: ChangeKind.Modify });
      if (u.isDir(j)) await this.dir(j, childRel, [], false, true);
    }
    if (opaque && lowers.length > 0) {
      for (const name of await lowerNames(lowers)) {
        if (!own.has(name)) this.out.push({ path: join(rel, name), kind: ChangeKind.Delete });
      }
    }
    if (this.out.length > start && !reported && rel !== '/') this.out.splice(start, 0, { path: rel, kind: ChangeKind.Modify });
  }
}

/**
 * The changes of the layer whose diff/ is `diffDir` relative to its lower layers' diff dirs
 * (`lowerDiffs`, nearest first; empty for a layer without parent: everything is an Add).
 */
export async function overlayChanges(diffDir: string, lowerDiffs: readonly string[]): Promise<Change[]> {
  const upper = new UpperTree(await native.scanTree(diffDir, ScanFlag.allXattrs));
  const walker = new Walker(upper);
  const lowers = await rootLowers(lowerDiffs);
  await walker.dir(-1, '/', lowers, await isOpaqueDir(diffDir), true);
  return walker.out;
}

/** Bytes of the non-directories in diff/ (whiteouts are 0), each hardlinked inode once. */
export async function diffDirSize(diffDir: string): Promise<number> {
  const scan = await native.scanTree(diffDir, 0);
  const seen = new Set<string>();
  let size = 0;
  for (let i = 0; i < scan.names.length; i++) {
    const at = (f: number): number => scan.stats[i * F.count + f]!;
    if ((at(F.mode) & C.S_IFMT) === C.S_IFDIR) continue;
    if (at(F.nlink) > 1) {
      const key = `${at(F.inoHigh)}:${at(F.inoLow)}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    size += at(F.size);
  }
  return size;
}
