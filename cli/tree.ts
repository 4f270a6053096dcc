// tree.ts: a small `ls -lR`-like listing of a mounted layer for the demo: one line per entry,
// sorted, with mode, size and symlink target. Read-only; lstat never follows links.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

export interface TreeEntry {
  path: string;
  mode: string;
  size: number;
  target?: string;
}

/** "drwxr-xr-x" from st_mode. */
export function modeString(mode: number): string {
  const type = (mode & 0o170000) === 0o040000 ? 'd' : (mode & 0o170000) === 0o120000 ? 'l' : (mode & 0o170000) === 0o020000 ? 'c'
    : (mode & 0o170000) === 0o060000 ? 'b' : (mode & 0o170000) === 0o010000 ? 'p' : (mode & 0o170000) === 0o140000 ? 's' : '-';
  let s = type;
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (mode >> shift) & 7;
    s += (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-');
  }
  return s;
}

/** Every entry under `root` (not root itself), depth first, names sorted, at most `limit`. */
export async function listTree(root: string, limit = 200): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await fsp.readdir(path.join(root, rel))).sort();
    for (const name of names) {
      if (out.length >= limit) return;
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = await fsp.lstat(path.join(root, r));
      const e: TreeEntry = { path: `/${r}`, mode: modeString(st.mode), size: st.isFile() ? st.size : 0 };
      if (st.isSymbolicLink()) e.target = await fsp.readlink(path.join(root, r));
      out.push(e);
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

/** The listing as text lines. */
export function formatTree(entries: readonly TreeEntry[]): string[] {
  return entries.map((e) => `  ${e.mode}  ${String(e.size).padStart(6)}  ${e.path}${e.target !== undefined ? ` -> ${e.target}` : ''}`);
}
