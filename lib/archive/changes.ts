// changes.ts: the changes between two trees (the engine's ChangesDirs) and their size
// (ChangesSize). Reads only: lstat and security.capability of each entry. Never follows a
// symlink. Semantics kept from the engine:
//   - an entry is Modify when mode, uid, gid, rdev differ, or for non-directories when size
//     or mtime differ (an mtime with zero nanoseconds matches any with the same second, as
//     tar truncates), or when security.capability differs;
//   - a directory whose contents changed is reported Modify too (except '/'), before them;
//   - a deleted directory is one Delete; a parent of '' makes everything an Add.
import { promises as fsp } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { ChangeKind, type Change } from '../driver';
import { hasCode } from '../errors';
import { lgetxattr } from '../native';

interface Node {
  name: string;
  stat: BigIntStats;
  capability: Buffer | null;
  children: Map<string, Node> | null; // null for non-directories
  added: boolean;
}

const WALK_CONCURRENCY = 32;

async function readCapability(p: string, st: BigIntStats): Promise<Buffer | null> {
  if (st.isSymbolicLink()) return null;
  try {
    return await lgetxattr(p, 'security.capability');
  } catch (err) {
    if (hasCode(err, 'ENODATA') || hasCode(err, 'ENOTSUP') || hasCode(err, 'EOPNOTSUPP')) return null;
    throw err;
  }
}

/** Runs `fn` over items with at most `limit` in flight. */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers: Promise<void>[] = [];
  for (let w = 0; w < Math.min(limit, items.length); w++) {
    workers.push((async () => {
      while (next < items.length) await fn(items[next++]!);
    })());
  }
  await Promise.all(workers);
}

async function collect(dir: string, name: string, st: BigIntStats): Promise<Node> {
  const node: Node = { name, stat: st, capability: await readCapability(dir, st), children: null, added: false };
  if (!st.isDirectory()) return node;
  node.children = new Map();
  const names = (await fsp.readdir(dir)).sort();
  const kids: Node[] = new Array(names.length);
  await forEachLimit(names.map((n, i) => [n, i] as const), WALK_CONCURRENCY, async ([n, i]) => {
    const p = path.join(dir, n);
    kids[i] = await collect(p, n, await fsp.lstat(p, { bigint: true }));
  });
  for (const k of kids) node.children.set(k.name, k);
  return node;
}

function sameFsTime(a: BigIntStats, b: BigIntStats): boolean {
  if (a.mtimeNs === b.mtimeNs) return true;
  const sec = 1_000_000_000n;
  const zeroNsec = a.mtimeNs % sec === 0n || b.mtimeNs % sec === 0n;
  return zeroNsec && a.mtimeNs / sec === b.mtimeNs / sec;
}

function statDifferent(o: BigIntStats, n: BigIntStats): boolean {
  if (o.mode !== n.mode || o.uid !== n.uid || o.gid !== n.gid || o.rdev !== n.rdev) return true;
  if (!o.isDirectory() && (!sameFsTime(o, n) || o.size !== n.size)) return true;
  return false;
}

function capEqual(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return (a === null || a.length === 0) && (b === null || b.length === 0);
  return a.equals(b);
}

function addChanges(node: Node, nodePath: string, old: Node | null, out: Change[]): void {
  const sizeAtEntry = out.length;
  if (old === null) {
    out.push({ path: nodePath, kind: ChangeKind.Add });
    node.added = true;
  }
  const oldChildren = new Map<string, Node>(old !== null && node.children !== null && old.children !== null ? old.children : []);
  if (node.children !== null) {
    for (const [name, child] of node.children) {
      const childPath = nodePath === '/' ? `/${name}` : `${nodePath}/${name}`;
      const oldChild = oldChildren.get(name) ?? null;
      if (oldChild !== null) {
        if (statDifferent(oldChild.stat, child.stat) || !capEqual(oldChild.capability, child.capability)) {
          out.push({ path: childPath, kind: ChangeKind.Modify });
          child.added = true;
        }
        oldChildren.delete(name);
      }
      addChanges(child, childPath, oldChild, out);
    }
  }
  for (const name of oldChildren.keys()) {
    out.push({ path: nodePath === '/' ? `/${name}` : `${nodePath}/${name}`, kind: ChangeKind.Delete });
  }
  // Changes inside an unchanged directory still carry it, so its permissions are restored.
  if (out.length > sizeAtEntry && node.children !== null && !node.added && nodePath !== '/') {
    out.splice(sizeAtEntry, 0, { path: nodePath, kind: ChangeKind.Modify });
  }
}

/** The changes that turn `oldDir` into `newDir`; `oldDir` '' means an empty tree. */
export async function changesDirs(newDir: string, oldDir: string): Promise<Change[]> {
  const newRoot = await collect(newDir, '/', await fsp.lstat(newDir, { bigint: true }));
  let oldRoot: Node | null = null;
  if (oldDir !== '') oldRoot = await collect(oldDir, '/', await fsp.lstat(oldDir, { bigint: true }));
  const out: Change[] = [];
  if (oldRoot === null) {
    // Everything is new; the root itself is not a change.
    newRoot.added = true;
    addChanges(newRoot, '/', { ...newRoot, children: new Map() }, out);
  } else {
    addChanges(newRoot, '/', oldRoot, out);
  }
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
