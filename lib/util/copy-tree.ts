// copy-tree.ts: an exact copy of a directory tree, as vfs needs to start a layer from its
// parent. Keeps everything `cp -a` keeps and more: file data (reflink first), every mode bit
// (setuid/setgid/sticky included), owners, xattrs of every namespace root can list
// (user, trusted, security incl. security.capability, system ACLs), hardlinks as hardlinks,
// symlink targets byte for byte, char/block devices, fifos, sockets, and nanosecond
// atime/mtime (a directory's after its children are written).
//
// Never follows a symlink in src, not even the root: every name is looked up relative to an
// fd of its parent directory with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW; node:fs calls that need a
// name go through /proc/self/fd/<dirfd>/<name>, which pins the parent the same way, and keeps
// paths short however deep the tree is. Must not: spawn processes, touch anything outside src
// and dst, or leave an fd open when it returns or throws.
//
// Order per entry, and why: data first (writing clears setuid and security.capability), then
// chown (which also clears them), then chmod, then xattrs (an ACL set before chmod would be
// overwritten by it; a default ACL set before the children exist would change their modes),
// then times (everything before bumps mtime/ctime; ctime cannot be set at all).
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SyscallError, hasCode } from '../errors';
import * as native from '../native';
import { C, type StatResult } from '../native';
import { forEachLimit } from './limit';

/** How many non-directory entries of one directory are copied at once (each holds two fds). */
const ENTRY_CONCURRENCY = 16;
/** Buffer size of the read/write fallback, used only where copy_file_range is refused. */
const READ_WRITE_CHUNK = 1 << 20;

const DIR_OPEN_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;

/** State of one copyTree call. */
interface CopyContext {
  /** dst's root directory: hardlinks name their first copy relative to it. */
  dstRootFd: number;
  /** (dev:ino) of a multiply-linked source inode -> dst-relative path of its first copy, when done. */
  links: Map<string, Promise<string>>;
  /** Cleared after the first FICLONE the filesystem refuses, so it is not retried per file. */
  tryReflink: boolean;
  /** Cleared after the first copy_file_range the filesystems refuse. */
  tryCopyFileRange: boolean;
}

/**
 * Copies the tree at `src` (a directory, not a symlink) to `dst`, which must not exist or be
 * an empty directory. dst's root gets src root's mode, owner, xattrs and times too.
 * On failure dst is left partly written; the caller removes it.
 */
export async function copyTree(src: string, dst: string): Promise<void> {
  if (typeof src !== 'string' || src === '') throw new TypeError('Expected a non-empty string for src');
  if (typeof dst !== 'string' || dst === '') throw new TypeError('Expected a non-empty string for dst');
  const srcFd = await native.open(src, DIR_OPEN_FLAGS, 0);
  try {
    const rootStat = await native.fstatat(srcFd, '', C.AT_EMPTY_PATH);
    await prepareDestination(dst);
    const dstFd = await native.open(dst, DIR_OPEN_FLAGS, 0);
    try {
      const ctx: CopyContext = { dstRootFd: dstFd, links: new Map(), tryReflink: true, tryCopyFileRange: true };
      await copyDirectoryContents(ctx, srcFd, dstFd, '');
      await applyOwnerModeXattrs({ fd: srcFd }, { fd: dstFd }, rootStat);
    } finally {
      native.closeSync(dstFd);
    }
    await native.utimensat(C.AT_FDCWD, dst, rootStat.atimeSec, rootStat.atimeNsec, rootStat.mtimeSec,
      rootStat.mtimeNsec, C.AT_SYMLINK_NOFOLLOW);
  } finally {
    native.closeSync(srcFd);
  }
}

/** Makes dst (mode 0700 until the copy sets src's) or checks that it is an empty directory. */
async function prepareDestination(dst: string): Promise<void> {
  try {
    await fsp.mkdir(dst, 0o700);
    return;
  } catch (err) {
    if (!hasCode(err, 'EEXIST')) throw err;
  }
  const st = await fsp.lstat(dst);
  if (!st.isDirectory()) throw errnoError('ENOTDIR', 'copyTree', dst, 'destination is not a directory');
  if ((await fsp.readdir(dst)).length > 0) {
    throw errnoError('ENOTEMPTY', 'copyTree', dst, 'destination directory is not empty');
  }
}

/** Copies every entry of one directory: other entries in parallel, then subdirectories one by one. */
async function copyDirectoryContents(ctx: CopyContext, srcDirFd: number, dstDirFd: number, rel: string): Promise<void> {
  const names = await readNames(srcDirFd, rel);
  const subdirs: Array<{ name: string; st: StatResult }> = [];
  await forEachLimit(names, ENTRY_CONCURRENCY, async (name) => {
    const st = await native.fstatat(srcDirFd, name, C.AT_SYMLINK_NOFOLLOW);
    if (fileType(st) === C.S_IFDIR) subdirs.push({ name, st });
    else await copyNonDirectory(ctx, srcDirFd, dstDirFd, path.join(rel, name), name, st);
  });
  // One subdirectory at a time keeps the open fds bounded by depth, not by width^depth.
  for (const { name } of subdirs) {
    await copyDirectory(ctx, srcDirFd, dstDirFd, path.join(rel, name), name);
  }
}

/** The names in a directory, refused if not valid UTF-8 (the addon takes names as strings). */
async function readNames(dirFd: number, rel: string): Promise<string[]> {
  const raw = await fsp.readdir(procPath(dirFd), { encoding: 'buffer' });
  return raw.map((bytes) => {
    const name = bytes.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(bytes)) {
      throw errnoError('EILSEQ', 'copyTree', path.join(rel, bytes.toString('latin1')),
        'file name is not valid UTF-8 and cannot be copied exactly');
    }
    return name;
  });
}

async function copyDirectory(ctx: CopyContext, srcParentFd: number, dstParentFd: number, rel: string,
  name: string): Promise<void> {
  const srcFd = await native.openat(srcParentFd, name, DIR_OPEN_FLAGS, 0);
  let st: StatResult;
  try {
    // The stat of the opened fd is the authority: the name may have changed since it was listed.
    st = await native.fstatat(srcFd, '', C.AT_EMPTY_PATH);
    await native.mkdirat(dstParentFd, name, 0o700);
    const dstFd = await native.openat(dstParentFd, name, DIR_OPEN_FLAGS, 0);
    try {
      await copyDirectoryContents(ctx, srcFd, dstFd, rel);
      await applyOwnerModeXattrs({ fd: srcFd }, { fd: dstFd }, st);
    } finally {
      native.closeSync(dstFd);
    }
  } finally {
    native.closeSync(srcFd);
  }
  await setTimes(dstParentFd, name, st);
}

/** Copies a non-directory; a second name of a multiply-linked inode becomes a hardlink. */
async function copyNonDirectory(ctx: CopyContext, srcDirFd: number, dstDirFd: number, rel: string, name: string,
  st: StatResult): Promise<void> {
  if (st.nlink <= 1) {
    await copyInode(ctx, srcDirFd, dstDirFd, rel, name, st);
    return;
  }
  const key = `${st.dev}:${st.ino}`;
  const first = ctx.links.get(key);
  if (first !== undefined) {
    const firstRel = await first;
    await native.linkat(ctx.dstRootFd, firstRel, dstDirFd, name, 0);
    return;
  }
  // Registered before any await, so a concurrent second name waits for this copy.
  const copied = copyInode(ctx, srcDirFd, dstDirFd, rel, name, st).then(() => rel);
  copied.catch(() => undefined); // the failure is reported by the await below, not as unhandled
  ctx.links.set(key, copied);
  await copied;
}

async function copyInode(ctx: CopyContext, srcDirFd: number, dstDirFd: number, rel: string, name: string,
  st: StatResult): Promise<void> {
  const type = fileType(st);
  if (type === C.S_IFREG) return copyRegularFile(ctx, srcDirFd, dstDirFd, rel, name, st);
  if (type === C.S_IFLNK) return copySymlink(srcDirFd, dstDirFd, name, st);
  if (type === C.S_IFCHR || type === C.S_IFBLK || type === C.S_IFIFO || type === C.S_IFSOCK) {
    return copySpecial(srcDirFd, dstDirFd, name, st);
  }
  throw errnoError('EINVAL', 'copyTree', rel, `unknown file type 0${type.toString(8)}`);
}

async function copyRegularFile(ctx: CopyContext, srcDirFd: number, dstDirFd: number, rel: string, name: string,
  listed: StatResult): Promise<void> {
  // O_NONBLOCK: should the name have become a fifo since it was listed, open must not hang.
  const srcFd = await native.openat(srcDirFd, name, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK, 0);
  let st: StatResult;
  try {
    st = await native.fstatat(srcFd, '', C.AT_EMPTY_PATH);
    if (fileType(st) !== C.S_IFREG || st.ino !== listed.ino) {
      throw errnoError('EAGAIN', 'copyTree', rel, 'source entry changed while being copied');
    }
    const dstFd = await native.openat(dstDirFd, name, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    try {
      await copyData(ctx, srcFd, dstFd, st.size);
      await applyOwnerModeXattrs({ fd: srcFd }, { fd: dstFd }, st);
    } finally {
      await closeAsync(dstFd);
    }
  } finally {
    await closeAsync(srcFd);
  }
  await setTimes(dstDirFd, name, st);
}

/** FICLONE, else copy_file_range, else read/write; each refusal is remembered for the call. */
async function copyData(ctx: CopyContext, srcFd: number, dstFd: number, size: number): Promise<void> {
  if (size === 0) return;
  if (ctx.tryReflink) {
    try {
      await native.ficlone(srcFd, dstFd);
      return;
    } catch (err) {
      if (!isRefusal(err, ['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOTTY'])) throw err;
      ctx.tryReflink = false;
    }
  }
  if (ctx.tryCopyFileRange) {
    try {
      await native.copyFileRange(srcFd, dstFd, size);
      return;
    } catch (err) {
      if (!isRefusal(err, ['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS'])) throw err;
      ctx.tryCopyFileRange = false;
    }
  }
  await readWriteCopy(srcFd, dstFd, size);
}

/** Positional read/write from offset 0, so it also overwrites anything a refused call wrote. */
async function readWriteCopy(srcFd: number, dstFd: number, size: number): Promise<void> {
  const buffer = Buffer.allocUnsafe(Math.min(READ_WRITE_CHUNK, size));
  let position = 0;
  while (position < size) {
    const n = await new Promise<number>((resolve, reject) => {
      fs.read(srcFd, buffer, 0, Math.min(buffer.length, size - position), position,
        (err, bytes) => (err ? reject(err) : resolve(bytes)));
    });
    if (n === 0) break;
    let written = 0;
    while (written < n) {
      written += await new Promise<number>((resolve, reject) => {
        fs.write(dstFd, buffer, written, n - written, position + written,
          (err, bytes) => (err ? reject(err) : resolve(bytes)));
      });
    }
    position += n;
  }
}

async function copySymlink(srcDirFd: number, dstDirFd: number, name: string, st: StatResult): Promise<void> {
  const target = await native.readlinkat(srcDirFd, name);
  // node:fs takes the target as bytes, so a non-UTF-8 target is kept verbatim.
  await fsp.symlink(target, procPath(dstDirFd, name));
  await native.fchownat(dstDirFd, name, st.uid, st.gid, C.AT_SYMLINK_NOFOLLOW);
  // A symlink's mode is always 0777 and cannot be changed; only its xattrs remain.
  await copyXattrs({ path: procPath(srcDirFd, name) }, { path: procPath(dstDirFd, name) }, true);
  await setTimes(dstDirFd, name, st);
}

/** Char/block devices, fifos and sockets: mknod makes each of them, with the source's major/minor. */
async function copySpecial(srcDirFd: number, dstDirFd: number, name: string, st: StatResult): Promise<void> {
  await native.mknodat(dstDirFd, name, fileType(st) | 0o600, st.rdevMajor, st.rdevMinor);
  await native.fchownat(dstDirFd, name, st.uid, st.gid, C.AT_SYMLINK_NOFOLLOW);
  // fchmodat follows a final symlink; this name is the node just made, never a symlink.
  await native.fchmodat(dstDirFd, name, st.mode & 0o7777);
  await copyXattrs({ path: procPath(srcDirFd, name) }, { path: procPath(dstDirFd, name) }, false);
  await setTimes(dstDirFd, name, st);
}

/** An inode to read or write xattrs on: an open fd, or a path whose final symlink is not followed. */
type XattrHandle = { fd: number } | { path: string };

/** chown, then chmod (chown clears setuid/setgid), then xattrs (chown clears security.capability). */
async function applyOwnerModeXattrs(src: { fd: number }, dst: { fd: number }, st: StatResult): Promise<void> {
  await native.fchown(dst.fd, st.uid, st.gid);
  await native.fchmod(dst.fd, st.mode & 0o7777);
  await copyXattrs(src, dst, false);
}

/**
 * Copies every xattr. The kernel refuses user.* on symlinks (EPERM), and a filesystem may
 * refuse some namespace on them (ENOTSUP): only for symlinks are those skipped.
 */
async function copyXattrs(src: XattrHandle, dst: XattrHandle, isSymlink: boolean): Promise<void> {
  let names: string[];
  try {
    names = 'fd' in src ? await native.flistxattr(src.fd) : await native.llistxattr(src.path);
  } catch (err) {
    if (isRefusal(err, ['ENOTSUP', 'EOPNOTSUPP'])) return; // the source filesystem has no xattrs
    throw err;
  }
  for (const name of names) {
    let value: Buffer;
    try {
      value = 'fd' in src ? await native.fgetxattr(src.fd, name) : await native.lgetxattr(src.path, name);
    } catch (err) {
      if (hasCode(err, 'ENODATA')) continue; // removed since it was listed
      throw err;
    }
    try {
      if ('fd' in dst) await native.fsetxattr(dst.fd, name, value, 0);
      else await native.lsetxattr(dst.path, name, value, 0);
    } catch (err) {
      if (isSymlink && isRefusal(err, ['EPERM', 'ENOTSUP', 'EOPNOTSUPP'])) continue;
      throw err;
    }
  }
}

async function setTimes(dirFd: number, name: string, st: StatResult): Promise<void> {
  await native.utimensat(dirFd, name, st.atimeSec, st.atimeNsec, st.mtimeSec, st.mtimeNsec, C.AT_SYMLINK_NOFOLLOW);
}


function fileType(st: StatResult): number {
  return st.mode & C.S_IFMT;
}

/** /proc/self/fd/<fd>[/<name>]: the directory the fd holds, whatever its path is now. */
function procPath(dirFd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dirFd}` : `/proc/self/fd/${dirFd}/${name}`;
}

function isRefusal(err: unknown, codes: readonly string[]): boolean {
  return codes.some((code) => hasCode(err, code));
}

function closeAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}

function errnoError(code: string, syscall: string, where: string, message: string): SyscallError {
  const errno = (os.constants.errno as Record<string, number | undefined>)[code] ?? 0;
  return new SyscallError(`${code}: ${message}, ${syscall} '${where}'`, { code, errno: -errno, syscall, path: where });
}
