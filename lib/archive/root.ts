// root.ts: a layer root as a directory handle. Every path inside it is resolved by the
// kernel relative to the root fd with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): an
// absolute symlink or a `..` met on the way resolves inside the root, as under chroot.
// Callers then act on a final name with *at calls that never follow it. No path string is
// joined and trusted; nothing is cached between calls.
import { ArchiveError, hasCode } from '../errors';
import { C, closeSync, fchmodat, fchownat, mkdirat, open, openat2 } from '../native';

const RESOLVE = C.RESOLVE_IN_ROOT | C.RESOLVE_NO_MAGICLINKS;

/** Limits on entry names, against hostile archives. */
export const NAME_LIMITS = Object.freeze({ maxDepth: 1024, maxComponent: 255, maxPath: 4096 });

/**
 * Splits an archive name into clean components inside the root. `.` and empty components go;
 * `..` pops one; a relative name that climbs above the root is refused. An absolute name is
 * root-relative, and `..` at its root stays at the root (as filepath.Clean does).
 */
export function cleanName(name: string, what = 'entry'): string[] {
  if (name.includes('\0')) throw new ArchiveError(`${what} name contains NUL`, name);
  if (Buffer.byteLength(name) > NAME_LIMITS.maxPath) throw new ArchiveError(`${what} name longer than ${NAME_LIMITS.maxPath} bytes`, name);
  const absolute = name.startsWith('/');
  const parts: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (parts.length === 0) {
        if (absolute) continue;
        throw new ArchiveError(`${what} climbs out of the layer`, name);
      }
      parts.pop();
      continue;
    }
    if (Buffer.byteLength(c) > NAME_LIMITS.maxComponent) throw new ArchiveError(`${what} has a name component longer than ${NAME_LIMITS.maxComponent} bytes`, name);
    parts.push(c);
  }
  if (parts.length > NAME_LIMITS.maxDepth) throw new ArchiveError(`${what} is nested deeper than ${NAME_LIMITS.maxDepth} directories`, name);
  return parts;
}

export class Root {
  private constructor(readonly fd: number, readonly path: string) {}

  /** Opens `dir` as a root handle (O_PATH | O_DIRECTORY). */
  static async open(dir: string): Promise<Root> {
    return new Root(await open(dir, C.O_PATH | C.O_DIRECTORY, 0), dir);
  }

  close(): void {
    closeSync(this.fd);
  }

  /** An O_PATH fd of the directory at `components`, resolved inside the root. Caller closes it. */
  openDir(components: readonly string[]): Promise<number> {
    return openat2(this.fd, components.length === 0 ? '.' : components.join('/'), C.O_PATH | C.O_DIRECTORY, 0, RESOLVE);
  }

  /** Like openDir, creating missing directories (mode 0755, as the engine's MkdirAll) on the way. */
  async openDirCreate(components: readonly string[]): Promise<number> {
    try {
      return await this.openDir(components);
    } catch (err) {
      if (!hasCode(err, 'ENOENT')) throw err;
    }
    let parent = -1;
    try {
      for (let i = 0; i < components.length; i++) {
        const prefix = components.slice(0, i + 1);
        let fd: number;
        try {
          fd = await this.openDir(prefix);
        } catch (err) {
          if (!hasCode(err, 'ENOENT')) throw err;
          const at = parent === -1 ? this.fd : parent;
          try {
            await mkdirat(at, components[i]!, 0o755);
            // Implied directories are 0755 root-owned, whatever the umask and our fsgid.
            await fchownat(at, components[i]!, 0, 0, C.AT_SYMLINK_NOFOLLOW);
            await fchmodat(at, components[i]!, 0o755);
          } catch (mkErr) {
            if (!hasCode(mkErr, 'EEXIST')) throw mkErr;
          }
          fd = await this.openDir(prefix);
        }
        if (parent !== -1) closeSync(parent);
        parent = fd;
      }
    } catch (err) {
      if (parent !== -1) closeSync(parent);
      throw err;
    }
    return parent === -1 ? this.openDir([]) : parent;
  }
}

/** A path that names `name` inside the directory `dirfd` without following `name` itself. */
export function procPath(dirfd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dirfd}` : `/proc/self/fd/${dirfd}/${name}`;
}
