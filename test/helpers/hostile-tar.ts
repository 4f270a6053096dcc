// hostile-tar.ts: exact tar bytes built entry by entry with the library's header writer, for
// tests of hostile layer tarballs, and a listing of a tree to prove nothing outside changed.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { endOfArchive, headerBlocks, padding, type WriteHeader } from '../../lib/archive/tar-writer';

export type Entry = Partial<WriteHeader> & { name: string; data?: string };

export function makeTar(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    parts.push(headerBlocks({ type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeSec: 1_600_000_000, ...e, size: e.type === undefined || e.type === 'file' ? data.length : 0 }));
    if ((e.type ?? 'file') === 'file') parts.push(data, Buffer.alloc(padding(data.length)));
  }
  parts.push(endOfArchive());
  return Buffer.concat(parts);
}

/** A listing of a tree: path, mode, size and content of every entry. */
export async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const n of (await fsp.readdir(path.join(dir, rel))).sort()) {
      const p = path.join(dir, rel, n);
      const st = await fsp.lstat(p);
      let content = '';
      if (st.isFile()) content = await fsp.readFile(p, 'utf8');
      if (st.isSymbolicLink()) content = await fsp.readlink(p);
      out.push(`${path.join(rel, n)} ${st.mode.toString(8)} ${st.size} ${content}`);
      if (st.isDirectory()) await walk(path.join(rel, n));
    }
  };
  await walk('');
  return out;
}

