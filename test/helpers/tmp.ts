// tmp.ts: temporary directories for tests. Each is fs.mkdtemp(os.tmpdir()/graphdriver-test-*)
// and is always removed; before removing, anything still mounted at or below it (a test's
// tmpfs, a driver's leftover mount) is detached (umount2 MNT_DETACH), deepest first, found by
// scanning /proc/self/mountinfo. Tests never leave mounts or directories behind.
import { promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MS, umount2 } from '../../lib/native';

/** Decodes the octal escapes (\040 for space, ...) mountinfo uses in paths. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points at or below `dir` (a realpath), deepest first; repeats stacked mounts. */
export function mountsUnder(dir: string): string[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    const mp = unescapeMountPath(fields[4]!);
    if (mp === dir || mp.startsWith(dir + '/')) found.push(mp);
  }
  return found.sort((a, b) => b.split('/').length - a.split('/').length || b.length - a.length);
}

/** Detaches every mount at or below `dir`, deepest first, until none is left. */
export async function unmountAllUnder(dir: string): Promise<void> {
  for (let round = 0; round < 64; round++) {
    const mps = mountsUnder(dir);
    if (mps.length === 0) return;
    for (const mp of mps) {
      try {
        await umount2(mp, MS.MNT_DETACH);
      } catch (err) {
        // Already gone (a parent's detach took it along): the next scan decides.
        if ((err as { code?: string }).code !== 'EINVAL' && (err as { code?: string }).code !== 'ENOENT') throw err;
      }
    }
  }
  throw new Error(`could not unmount everything under ${dir}: ${mountsUnder(dir).join(', ')}`);
}

/** A temp dir that removes itself (and unmounts what is under it) on cleanup(). */
export class TmpDir {
  private removed = false;
  private constructor(readonly path: string) {}

  /** fs.mkdtemp(os.tmpdir()/graphdriver-test-<prefix>*), realpath'd (mountinfo shows real paths). */
  static async create(prefix = ''): Promise<TmpDir> {
    const made = await fsp.mkdtemp(path.join(os.tmpdir(), `graphdriver-test-${prefix}`));
    return new TmpDir(await fsp.realpath(made));
  }

  /** An absolute path below this dir. */
  join(...parts: string[]): string {
    return path.join(this.path, ...parts);
  }

  /** Makes a fresh subdirectory and returns its path. */
  async mkdir(name: string, mode = 0o755): Promise<string> {
    const p = this.join(name);
    await fsp.mkdir(p, { recursive: true, mode });
    return p;
  }

  /** Unmounts anything below, then removes the tree. Safe to call twice. */
  async cleanup(): Promise<void> {
    if (this.removed) return;
    await unmountAllUnder(this.path);
    await fsp.rm(this.path, { recursive: true, force: true, maxRetries: 3 });
    this.removed = true;
  }
}

/** Makes `file` a sparse file of `size` bytes (truncate; no blocks written), mode 0600. */
export async function makeSparseFile(file: string, size: number): Promise<string> {
  const fh = await fsp.open(file, 'w', 0o600);
  try {
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
  return file;
}

/** Runs `fn` with a fresh TmpDir and always cleans it up, even when `fn` throws. */
export async function withTmpDir<T>(fn: (tmp: TmpDir) => Promise<T>, prefix = ''): Promise<T> {
  const tmp = await TmpDir.create(prefix);
  try {
    return await fn(tmp);
  } finally {
    await tmp.cleanup();
  }
}
