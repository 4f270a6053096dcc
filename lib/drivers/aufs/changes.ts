// changes.ts: native changes and diff size of an aufs diff dir, read without mounting. Only
// diff/<id> is walked (one scanTree); the ancestors' diff dirs are consulted name by name, with
// aufs's own merge rules, only to tell Add from Modify, to drop whiteouts of names no ancestor
// shows, and to list what an opaque directory hides. Semantics (as archive/changes.ts and the
// overlay drivers, so every driver reports the same change the same way):
//   - `.wh.NAME` is a Delete of NAME when an ancestor shows NAME (the engine's aufs Changes
//     lists it even when none does; such a whiteout changes nothing, so it is not listed);
//   - a non-directory an ancestor shows is a Modify (copied up or replaced), else an Add;
//   - a directory an ancestor shows as a directory is a Modify only when its mode, owner or
//     security.capability differ; one whose contents changed is reported Modify too (except
//     '/'), before them (the parent-directory rule);
//   - anything no ancestor shows is an Add, and so is everything below it;
//   - a directory holding `.wh..wh..opq` is opaque (and so is everything below it): each name
//     the ancestors show there that it does not hold itself is a Delete;
//   - `.wh..wh.*` metadata (`.wh..wh.plnk`, `.wh..wh.aufs`) is never a change, and whiteout
//     files are never listed as paths.
// aufs merge rules for the ancestors (nearest first): in one branch a name wins over its own
// whiteout; `.wh.NAME` hides NAME in every branch below; a non-directory or an opaque directory
// hides the same directory in the branches below. Read-only: nothing here writes.
import { promises as fsp } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE_DIR, WHITEOUT_PREFIX } from '../../archive/whiteout';
import { ChangeKind, type Change } from '../../driver';
import { hasCode } from '../../errors';
import * as native from '../../native';
import { C, ScanField as F, ScanFlag, type TreeScan } from '../../native';

const CAPABILITY_XATTR = 'security.capability';

class DiffTree {
  readonly children: number[][];
  constructor(readonly scan: TreeScan) {
    this.children = Array.from({ length: scan.names.length + 1 }, () => [] as number[]);
    for (let i = 0; i < scan.names.length; i++) this.children[scan.parents[i]! + 1]!.push(i);
  }
  f(i: number, field: number): number { return this.scan.stats[i * F.count + field]!; }
  isDir(i: number): boolean { return (this.f(i, F.mode) & C.S_IFMT) === C.S_IFDIR; }
  capability(i: number): Buffer | null {
    const xs = this.scan.xattrs[i];
    if (!xs) return null;
    for (let k = 0; k + 1 < xs.length; k += 2) if (xs[k] === CAPABILITY_XATTR) return xs[k + 1] as Buffer;
    return null;
  }
}

async function lstatOrUndefined(p: string): Promise<BigIntStats | undefined> {
  try {
    return await fsp.lstat(p, { bigint: true });
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}

async function present(p: string): Promise<boolean> {
  return (await lstatOrUndefined(p)) !== undefined;
}

async function capabilityOf(p: string): Promise<Buffer | null> {
  try {
    return await native.lgetxattr(p, CAPABILITY_XATTR);
  } catch (err) {
    if (hasCode(err, 'ENODATA') || hasCode(err, 'ENOTSUP') || hasCode(err, 'ENOENT')) return null;
    throw err;
  }
}

/** The entry `name` the merged branches `dirs` (nearest first) show, or undefined. */
async function lowerLookup(dirs: readonly string[], name: string): Promise<{ path: string; st: BigIntStats } | undefined> {
  for (const dir of dirs) {
    const p = path.join(dir, name);
    const st = await lstatOrUndefined(p);
    if (st !== undefined) return { path: p, st };
    if (await present(path.join(dir, WHITEOUT_PREFIX + name))) return undefined;
  }
  return undefined;
}

/** The branch directories that make up the merged directory `name` below `dirs`. */
async function descend(dirs: readonly string[], name: string): Promise<string[]> {
  const out: string[] = [];
  for (const dir of dirs) {
    const p = path.join(dir, name);
    const st = await lstatOrUndefined(p);
    if (st === undefined) {
      if (await present(path.join(dir, WHITEOUT_PREFIX + name))) break;
      continue;
    }
    if (!st.isDirectory()) break;
    out.push(p);
    if (await present(path.join(p, WHITEOUT_OPAQUE_DIR))) break;
  }
  return out;
}

/** The ancestors' root directories that are visible (stopping after an opaque one). */
async function rootBranches(ancestorDiffs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const dir of ancestorDiffs) {
    out.push(dir);
    if (await present(path.join(dir, WHITEOUT_OPAQUE_DIR))) break;
  }
  return out;
}

/** The names the merged branches `dirs` show, sorted by bytes. */
async function lowerNames(dirs: readonly string[]): Promise<string[]> {
  const visible = new Set<string>();
  const hidden = new Set<string>();
  for (const dir of dirs) {
    const { names } = await native.scanDir(dir, 0);
    const whiteouts: string[] = [];
    for (const name of names) {
      if (name.startsWith(WHITEOUT_META_PREFIX)) continue;
      if (name.startsWith(WHITEOUT_PREFIX)) whiteouts.push(name.slice(WHITEOUT_PREFIX.length));
      else if (!hidden.has(name)) visible.add(name);
    }
    for (const name of whiteouts) if (!visible.has(name)) hidden.add(name);
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
  constructor(private readonly tree: DiffTree) {}

  /**
   * The changes inside diff directory `dir` (-1 = root) at `rel`, over the merged branches
   * `lowers`. `hidden`: an opaque directory above hides the lowers here too (they are still
   * asked, to tell Modify from Add and to list what is hidden as Deletes, as a tree comparison would).
   */
  async dir(dir: number, rel: string, lowers: readonly string[], reported: boolean, hidden: boolean): Promise<void> {
    const t = this.tree;
    const start = this.out.length;
    const entries = t.children[dir + 1]!;
    const names = new Set(entries.map((j) => t.scan.names[j]!));
    const opaque = hidden || names.has(WHITEOUT_OPAQUE_DIR);
    for (const j of entries) {
      const name = t.scan.names[j]!;
      if (name.startsWith(WHITEOUT_META_PREFIX)) continue; // opaque marker or aufs metadata
      const childRel = join(rel, name);
      if (name.startsWith(WHITEOUT_PREFIX)) {
        const victim = name.slice(WHITEOUT_PREFIX.length);
        // A name beside its own whiteout wins over it; an opaque dir lists what it hides below.
        if (names.has(victim) || opaque || lowers.length === 0) continue;
        if (await lowerLookup(lowers, victim) !== undefined) this.out.push({ path: join(rel, victim), kind: ChangeKind.Delete });
        continue;
      }
      const lower = lowers.length > 0 ? await lowerLookup(lowers, name) : undefined;
      if (lower === undefined) {
        this.out.push({ path: childRel, kind: ChangeKind.Add });
        if (t.isDir(j)) await this.dir(j, childRel, [], true, false);
        continue;
      }
      if (t.isDir(j) && lower.st.isDirectory()) {
        const st = lower.st;
        const differs = Number(st.mode) !== t.f(j, F.mode) || Number(st.uid) !== t.f(j, F.uid) || Number(st.gid) !== t.f(j, F.gid) ||
          !capEqual(await capabilityOf(lower.path), t.capability(j));
        if (differs) this.out.push({ path: childRel, kind: ChangeKind.Modify });
        await this.dir(j, childRel, await descend(lowers, name), differs, opaque);
        continue;
      }
      this.out.push({ path: childRel, kind: ChangeKind.Modify });
      if (t.isDir(j)) await this.dir(j, childRel, [], true, false);
    }
    if (opaque && lowers.length > 0) {
      for (const name of await lowerNames(lowers)) {
        if (!names.has(name)) this.out.push({ path: join(rel, name), kind: ChangeKind.Delete });
      }
    }
    if (this.out.length > start && !reported && rel !== '/') this.out.splice(start, 0, { path: rel, kind: ChangeKind.Modify });
  }
}

/**
 * The changes of the layer whose diff dir is `diffDir` relative to its ancestors' diff dirs
 * (`ancestorDiffs`, nearest first; empty for a layer without parent: everything is an Add).
 */
export async function aufsChanges(diffDir: string, ancestorDiffs: readonly string[]): Promise<Change[]> {
  const tree = new DiffTree(await native.scanTree(diffDir, ScanFlag.capability));
  const walker = new Walker(tree);
  await walker.dir(-1, '/', await rootBranches(ancestorDiffs), true, false);
  return walker.out;
}

/** Bytes of the regular files in a diff dir (whiteouts are empty), each hardlinked inode once. */
export async function diffDirSize(diffDir: string): Promise<number> {
  const scan = await native.scanTree(diffDir, 0);
  const seen = new Set<string>();
  let size = 0;
  for (let i = 0; i < scan.names.length; i++) {
    const at = (f: number): number => scan.stats[i * F.count + f]!;
    if ((at(F.mode) & C.S_IFMT) !== C.S_IFREG) continue;
    if (at(F.nlink) > 1) {
      const key = `${at(F.dev)}:${at(F.inoHigh)}:${at(F.inoLow)}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    size += at(F.size);
  }
  return size;
}
