// farm.ts: a hardlink farm of a complete tree, as the overlay driver builds a new image layer's
// root/ from its parent's (the engine's copy.DirCopy(..., copy.Hardlink)). Regular files are
// hardlinked — the new tree shares their inodes with the parent — while directories, symlinks,
// devices, fifos and sockets are recreated with their owner, mode, every xattr root can list
// (security.capability and trusted.overlay.opaque included) and nanosecond times, so nothing
// but file inodes is shared. The caller must then never write into a shared inode (apply.ts
// replaces files, never opens them for writing; tar-scan.ts proves the rest).
//
// Never follows a symlink in src: each name is looked up relative to its parent directory's fd
// (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW; linkat without AT_SYMLINK_FOLLOW); node:fs calls go through
// /proc/self/fd/<dirfd>/<name>. Writes only below dst, which must not exist. Leaves no fd open.
import { promises as fsp } from 'node:fs';
import * as native from '../../native';
import { C, ScanField as F, ScanFlag, type StatResult } from '../../native';
import { hasCode } from '../../errors';
import { forEachLimit } from '../../util/limit';

const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
/** Entries of one directory handled at once (each link or node is a few syscalls). */
const CONCURRENCY = 16;

/** What buildFarm made. */
export interface FarmStats {
  /** Regular files hardlinked (names, not inodes). */
  linked: number;
  /** Directories, symlinks and special files recreated (the root not counted). */
  recreated: number;
}

function procPath(fd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

/** Builds `dst` (must not exist) as a hardlink farm of the directory `src`. */
export async function buildFarm(src: string, dst: string): Promise<FarmStats> {
  const stats: FarmStats = { linked: 0, recreated: 0 };
  const srcFd = await native.open(src, DIR_FLAGS, 0);
  try {
    const st = await native.fstatat(srcFd, '', C.AT_EMPTY_PATH);
    await fsp.mkdir(dst, { mode: 0o700 });
    const dstFd = await native.open(dst, DIR_FLAGS, 0);
    try {
      await farmDir(srcFd, dstFd, src, stats);
      await dirMetadata(srcFd, dstFd, st);
    } finally {
      native.closeSync(dstFd);
    }
    await native.utimensat(C.AT_FDCWD, dst, st.atimeSec, st.atimeNsec, st.mtimeSec, st.mtimeNsec, C.AT_SYMLINK_NOFOLLOW);
  } finally {
    native.closeSync(srcFd);
  }
  return stats;
}

/** The entries of one directory: files linked and nodes made in parallel, then subdirectories one by one. */
async function farmDir(srcFd: number, dstFd: number, srcPath: string, stats: FarmStats): Promise<void> {
  // scanDir takes a path (it refuses /proc/self/fd magic links): the listing comes from the path,
  // every operation after it is relative to srcFd, and nodes are re-checked by fstatat.
  const scan = await native.scanDir(srcPath, ScanFlag.allXattrs);
  const subdirs: string[] = [];
  const indices = scan.names.map((_n, i) => i);
  await forEachLimit(indices, CONCURRENCY, async (i) => {
    const name = scan.names[i]!;
    const type = scan.stats[i * F.count + F.mode]! & C.S_IFMT;
    if (type === C.S_IFDIR) {
      subdirs.push(name);
    } else if (type === C.S_IFREG) {
      await native.linkat(srcFd, name, dstFd, name, 0);
      stats.linked++;
    } else {
      await recreateNode(srcFd, dstFd, name, type, scan.xattrs[i] ?? null);
      stats.recreated++;
    }
  });
  for (const name of subdirs.sort()) {
    const sub = await native.openat(srcFd, name, DIR_FLAGS, 0);
    let st: StatResult;
    try {
      st = await native.fstatat(sub, '', C.AT_EMPTY_PATH);
      await native.mkdirat(dstFd, name, 0o700);
      const dsub = await native.openat(dstFd, name, DIR_FLAGS, 0);
      try {
        await farmDir(sub, dsub, `${srcPath}/${name}`, stats);
        await dirMetadata(sub, dsub, st);
      } finally {
        native.closeSync(dsub);
      }
    } finally {
      native.closeSync(sub);
    }
    // Times last: making the children changed them.
    await native.utimensat(dstFd, name, st.atimeSec, st.atimeNsec, st.mtimeSec, st.mtimeNsec, C.AT_SYMLINK_NOFOLLOW);
    stats.recreated++;
  }
}

/** A directory's owner, mode (after chown, which clears setgid) and xattrs. */
async function dirMetadata(srcFd: number, dstFd: number, st: StatResult): Promise<void> {
  await native.fchown(dstFd, st.uid, st.gid);
  await native.fchmod(dstFd, st.mode & 0o7777);
  for (const name of await native.flistxattr(srcFd).catch(noXattrs)) {
    const value = await native.fgetxattr(srcFd, name).catch((err: unknown) => { if (hasCode(err, 'ENODATA')) return null; throw err; });
    if (value !== null) await native.fsetxattr(dstFd, name, value, 0);
  }
}

/** A symlink, device, fifo or socket made anew with the source's owner, mode, xattrs and times. */
async function recreateNode(srcFd: number, dstFd: number, name: string, type: number,
  xattrs: Array<string | Buffer> | null): Promise<void> {
  const st = await native.fstatat(srcFd, name, C.AT_SYMLINK_NOFOLLOW);
  if ((st.mode & C.S_IFMT) !== type) throw Object.assign(new Error(`farm: ${name} changed type while being linked`), { code: 'EAGAIN' });
  const isSymlink = type === C.S_IFLNK;
  if (isSymlink) {
    // node:fs takes the target as bytes, so a non-UTF-8 target is kept verbatim.
    await fsp.symlink(await native.readlinkat(srcFd, name), procPath(dstFd, name));
  } else {
    await native.mknodat(dstFd, name, type | 0o600, st.rdevMajor, st.rdevMinor);
  }
  await native.fchownat(dstFd, name, st.uid, st.gid, C.AT_SYMLINK_NOFOLLOW);
  // fchmodat follows a final symlink; a symlink's mode is always 0777 anyway.
  if (!isSymlink) await native.fchmodat(dstFd, name, st.mode & 0o7777);
  for (let k = 0; xattrs !== null && k + 1 < xattrs.length; k += 2) {
    try {
      await native.lsetxattr(procPath(dstFd, name), xattrs[k] as string, xattrs[k + 1] as Buffer, 0);
    } catch (err) {
      // The kernel refuses user.* on symlinks and special files (EPERM); a filesystem may refuse a namespace.
      if (!(hasCode(err, 'EPERM') || hasCode(err, 'ENOTSUP') || hasCode(err, 'EOPNOTSUPP'))) throw err;
    }
  }
  await native.utimensat(dstFd, name, st.atimeSec, st.atimeNsec, st.mtimeSec, st.mtimeNsec, C.AT_SYMLINK_NOFOLLOW);
}

function noXattrs(err: unknown): string[] {
  if (hasCode(err, 'ENOTSUP') || hasCode(err, 'EOPNOTSUPP')) return [];
  throw err;
}

