// tree-gen.ts: deterministic filesystem trees for the archive benchmarks. Owns the seeded
// PRNG and the generators: `generateRootfs` writes a tree with the size distribution of a
// Debian root filesystem (mostly small files with log-normal sizes around 4 KiB, a few 1–20 MiB
// files, ~8% symlinks, some hardlinks, setuid files, user.* xattrs, deep chains and wide
// directories, owners other than root, nanosecond mtimes); `addBigFiles` adds a few large files
// (for the 1 GiB layer); `modifyFiles` changes files by write-to-temp + rename, so a hardlink
// farm's other name keeps the old content. Same seed, same tree, byte for byte.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { C, lsetxattr, utimensat } from '../../lib/native';

/** xorshift128+ style PRNG on 32-bit halves (sfc32): fast, seeded, reproducible. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 20; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number { return this.u32() / 4294967296; }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.next() * xs.length)]!; }
  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

/** A pool of pseudo-random bytes that file contents are sliced from (tmpfs does not dedupe). */
export class BytePool {
  readonly buf: Buffer;
  constructor(prng: Prng, size = 64 << 20) {
    const words = new Uint32Array(size >>> 2);
    for (let i = 0; i < words.length; i++) words[i] = prng.u32();
    this.buf = Buffer.from(words.buffer, 0, words.length * 4);
  }
  /** `size` bytes starting at a random offset (wrapping into a fresh Buffer when needed). */
  slice(prng: Prng, size: number): Buffer {
    if (size <= this.buf.length) {
      const off = prng.int(0, this.buf.length - size);
      return this.buf.subarray(off, off + size);
    }
    const out = Buffer.allocUnsafe(size);
    for (let off = 0; off < size; off += this.buf.length) this.buf.copy(out, off, 0, Math.min(this.buf.length, size - off));
    return out;
  }
}

export interface RootfsSpec {
  /** Total entries (dirs + files + symlinks + hardlinks), default 25,000. */
  entries: number;
  /** Target bytes of file data, default 300 MiB. */
  bytes: number;
  /** Median size of a small file, default 4 KiB. */
  medianFile: number;
  seed: number;
}

export const DEFAULT_ROOTFS: RootfsSpec = { entries: 25_000, bytes: 300 << 20, medianFile: 4096, seed: 1 };

export interface TreeStats {
  dirs: number; files: number; symlinks: number; hardlinks: number; setuid: number; xattrs: number;
  largeFiles: number; bytes: number; maxDepth: number; widestDir: number;
}

const TOP = ['bin', 'etc', 'lib', 'opt', 'sbin', 'srv', 'var', 'usr', 'usr/lib', 'usr/share', 'usr/share/doc', 'usr/bin',
  'usr/lib/x86_64-linux-gnu', 'usr/share/locale', 'var/lib', 'var/cache'];
const SYLL = ['lib', 'core', 'x', 'gnu', 'net', 'py', 'perl', 'data', 'conf', 'doc', 'man', 'util', 'sys', 'io', 'font',
  'ssl', 'term', 'zone', 'info', 'share', 'apt', 'dpkg', 'kit', 'gtk', 'qt', 'bus', 'dev', 'pam', 'sec', 'mod'];
const EXT = ['', '', '.so', '.so.1', '.py', '.pm', '.gz', '.txt', '.conf', '.h', '.mo', '.html', '.json', '.pyc'];

function word(prng: Prng, parts: number): string {
  let s = '';
  for (let i = 0; i < parts; i++) s += (i > 0 && prng.chance(0.3) ? '-' : '') + prng.pick(SYLL);
  return s;
}

/** Writes a Debian-rootfs-like tree under `root` (which must exist and be empty). */
export async function generateRootfs(root: string, spec: RootfsSpec = DEFAULT_ROOTFS): Promise<TreeStats> {
  const prng = new Prng(spec.seed);
  const pool = new BytePool(prng);
  const st: TreeStats = { dirs: 0, files: 0, symlinks: 0, hardlinks: 0, setuid: 0, xattrs: 0, largeFiles: 0, bytes: 0, maxDepth: 0, widestDir: 0 };
  const nDirs = Math.round(spec.entries * 0.1);
  const nSymlinks = Math.round(spec.entries * 0.08);
  const nHardlinks = Math.round(spec.entries * 0.01);
  const nFiles = spec.entries - nDirs - nSymlinks - nHardlinks;
  const dirs: string[] = [];
  const width = new Map<string, number>();
  const used = new Set<string>();
  const mk = async (rel: string): Promise<void> => {
    await fsp.mkdir(path.join(root, rel), { mode: 0o755 });
    dirs.push(rel);
    used.add(rel);
    st.dirs++;
    st.maxDepth = Math.max(st.maxDepth, rel.split('/').length);
  };
  const fresh = (dir: string, base: string): string => {
    let rel = `${dir}/${base}`;
    for (let k = 2; used.has(rel); k++) rel = `${dir}/${base}.${k}`;
    used.add(rel);
    width.set(dir, (width.get(dir) ?? 0) + 1);
    return rel;
  };
  for (const t of TOP) await mk(t);
  // Wide directories (like usr/share/doc, usr/lib/x86_64-linux-gnu) get a share of everything.
  const wide = ['usr/share/doc', 'usr/lib/x86_64-linux-gnu', 'usr/bin'];
  const parentFor = (): string => (prng.chance(0.25) ? prng.pick(wide) : dirs[Math.floor(Math.pow(prng.next(), 0.7) * dirs.length)]!);
  // One deep chain (like usr/lib/python3/dist-packages/.../tests/data).
  let deep = 'usr/lib';
  for (let i = 0; i < 24; i++) { deep = fresh(deep, word(prng, 1)); await mk(deep); }
  while (st.dirs < nDirs) await mk(fresh(parentFor(), word(prng, prng.int(1, 3))));

  const files: string[] = [];
  const sigma = 1.5;
  const smallBudget = spec.bytes * 0.8;
  const times: Array<[string, number, number]> = [];
  for (let i = 0; i < nFiles; i++) {
    const rel = fresh(parentFor(), word(prng, prng.int(1, 3)) + prng.pick(EXT));
    let size = Math.min(1 << 20, Math.round(spec.medianFile * Math.exp(sigma * prng.normal())));
    if (prng.chance(0.02)) size = 0;
    if (st.bytes + size > smallBudget) size = Math.min(size, 512);
    const p = path.join(root, rel);
    await fsp.writeFile(p, pool.slice(prng, size));
    st.bytes += size;
    st.files++;
    files.push(rel);
    let mode = prng.chance(0.15) ? 0o755 : 0o644;
    if (st.setuid < 6 && prng.chance(0.001)) { mode = 0o4755; st.setuid++; }
    if (prng.chance(0.03)) await fsp.chown(p, prng.int(1, 1000), prng.int(1, 1000));
    await fsp.chmod(p, mode);
    if (prng.chance(0.02)) {
      await lsetxattr(p, `user.${word(prng, 1)}`, pool.slice(prng, prng.int(1, 64)), 0);
      st.xattrs++;
    }
    times.push([rel, 1_600_000_000 + prng.int(0, 80_000_000), prng.int(0, 999_999_999)]);
  }
  // Large files (shared libraries, locale archives, firmware) fill the budget up to `bytes`.
  while (st.bytes < spec.bytes) {
    const size = Math.min(spec.bytes - st.bytes, prng.int(1 << 20, 20 << 20));
    const rel = fresh(parentFor(), `${word(prng, 2)}.so.${st.largeFiles}`);
    await fsp.writeFile(path.join(root, rel), pool.slice(prng, size), { mode: 0o644 });
    files.push(rel);
    st.bytes += size;
    st.files++;
    st.largeFiles++;
  }
  for (let i = 0; i < nSymlinks; i++) {
    const rel = fresh(parentFor(), word(prng, prng.int(1, 2)));
    const target = prng.chance(0.5) ? `/${prng.pick(files)}` : path.posix.relative(path.posix.dirname(rel), prng.pick(files));
    await fsp.symlink(target, path.join(root, rel));
    st.symlinks++;
  }
  const smallFiles = files.slice(0, nFiles);
  for (let i = 0; i < nHardlinks; i++) {
    const rel = fresh(parentFor(), word(prng, prng.int(1, 2)));
    await fsp.link(path.join(root, prng.pick(smallFiles)), path.join(root, rel));
    st.hardlinks++;
  }
  for (const [rel, sec, nsec] of times) await utimensat(C.AT_FDCWD, path.join(root, rel), sec, nsec, sec, nsec, C.AT_SYMLINK_NOFOLLOW);
  st.widestDir = Math.max(...width.values());
  return st;
}

/** Adds `count` large files of pseudo-random data, `totalBytes` in all, under `root/rel`. */
export async function addBigFiles(root: string, rel: string, totalBytes: number, count: number, seed: number): Promise<void> {
  const prng = new Prng(seed);
  const pool = new BytePool(prng, 16 << 20);
  await fsp.mkdir(path.join(root, rel), { recursive: true, mode: 0o755 });
  const each = Math.floor(totalBytes / count);
  for (let i = 0; i < count; i++) {
    const fh = await fsp.open(path.join(root, rel, `big-${i}.bin`), 'w', 0o644);
    try {
      const size = i === count - 1 ? totalBytes - each * (count - 1) : each;
      for (let off = 0; off < size;) {
        const n = Math.min(pool.buf.length, size - off);
        await fh.write(pool.slice(prng, n), 0, n, off);
        off += n;
      }
    } finally {
      await fh.close();
    }
  }
}

/** Regular files under `root` (relative paths), in sorted walk order. */
export async function listFiles(root: string, limit = Infinity): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const ent of (await fsp.readdir(path.join(root, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (out.length >= limit) return;
      const r = rel === '' ? ent.name : `${rel}/${ent.name}`;
      if (ent.isDirectory()) await walk(r);
      else if (ent.isFile()) out.push(r);
    }
  };
  await walk('');
  return out;
}

/**
 * Changes `count` files spread over `root` (new content, one more byte) the way a copy-up does:
 * write a temp file beside it, then rename over it, so other hardlinks keep the old inode.
 */
export async function modifyFiles(root: string, count: number, seed: number): Promise<string[]> {
  const prng = new Prng(seed);
  const files = await listFiles(root);
  const chosen = new Set<string>();
  while (chosen.size < Math.min(count, files.length)) chosen.add(prng.pick(files));
  for (const rel of chosen) {
    const p = path.join(root, rel);
    const st = await fsp.stat(p);
    const data = Buffer.concat([await fsp.readFile(p), Buffer.from('\n# changed\n')]);
    const tmp = `${p}.bench-tmp`;
    await fsp.writeFile(tmp, data, { mode: st.mode & 0o7777 });
    await fsp.chown(tmp, st.uid, st.gid);
    await fsp.chmod(tmp, st.mode & 0o7777);
    await fsp.rename(tmp, p);
  }
  return [...chosen].sort();
}
