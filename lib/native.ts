// native.ts: the only module that loads the addon. A typed facade over it: every call
// captures the caller's stack before crossing into native code and rethrows native errors as
// SyscallError carrying that stack (the message is the failed call itself). No policy here.
import bindings from 'bindings';
import { SyscallError } from './errors';

export interface StatfsResult {
  f_type: number; f_bsize: number; f_blocks: number; f_bfree: number; f_bavail: number;
  f_files: number; f_ffree: number; f_fsid: [number, number]; f_namelen: number; f_frsize: number; f_flags: number;
}

export interface StatResult {
  dev: number; ino: bigint; mode: number; nlink: number; uid: number; gid: number;
  rdevMajor: number; rdevMinor: number; size: number; blocks: number;
  atimeSec: number; atimeNsec: number; mtimeSec: number; mtimeNsec: number; ctimeSec: number; ctimeNsec: number;
}

interface Addon {
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): Promise<void>;
  umount2(target: string, flags: number): Promise<void>;
  mountConstants: Record<string, number>;
  statfs(path: string): Promise<StatfsResult>;
  lgetxattr(path: string, name: string): Promise<Buffer>;
  getxattr(path: string, name: string): Promise<Buffer>;
  fgetxattr(fd: number, name: string): Promise<Buffer>;
  llistxattr(path: string): Promise<string[]>;
  listxattr(path: string): Promise<string[]>;
  flistxattr(fd: number): Promise<string[]>;
  lsetxattr(path: string, name: string, value: Buffer, flags: number): Promise<void>;
  setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void>;
  fsetxattr(fd: number, name: string, value: Buffer, flags: number): Promise<void>;
  lremovexattr(path: string, name: string): Promise<void>;
  xattrConstants: Record<string, number>;
  mknod(path: string, mode: number, major: number, minor: number): Promise<void>;
  mknodat(dirfd: number, name: string, mode: number, major: number, minor: number): Promise<void>;
  mkdirat(dirfd: number, name: string, mode: number): Promise<void>;
  symlinkat(target: string, dirfd: number, name: string): Promise<void>;
  linkat(olddirfd: number, oldname: string, newdirfd: number, newname: string, flags: number): Promise<void>;
  unlinkat(dirfd: number, name: string, flags: number): Promise<void>;
  renameat2(olddirfd: number, oldname: string, newdirfd: number, newname: string, flags: number): Promise<void>;
  readlinkat(dirfd: number, name: string): Promise<Buffer>;
  fstatat(dirfd: number, name: string, flags: number): Promise<StatResult>;
  fchownat(dirfd: number, name: string, uid: number, gid: number, flags: number): Promise<void>;
  fchmodat(dirfd: number, name: string, mode: number): Promise<void>;
  utimensat(dirfd: number, name: string, as: number, ans: number, ms: number, mns: number, flags: number): Promise<void>;
  open(path: string, flags: number, mode: number): Promise<number>;
  openat(dirfd: number, name: string, flags: number, mode: number): Promise<number>;
  openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): Promise<number>;
  closeSync(fd: number): void;
  fchmod(fd: number, mode: number): Promise<void>;
  fchown(fd: number, uid: number, gid: number): Promise<void>;
  removeAllAt(dirfd: number, name: string): Promise<void>;
  syncfs(fd: number): Promise<void>;
  fileConstants: Record<string, number>;
  ficlone(srcFd: number, dstFd: number): Promise<void>;
  copyFileRange(srcFd: number, dstFd: number, length: number): Promise<number>;
}

const addon = bindings('graphdriver') as Addon;

interface RawNativeError extends Error {
  code?: string; errno?: number; syscall?: string; path?: string; dest?: string;
}

/** Turns the addon's error into a SyscallError whose stack is the JS call site. */
function rethrow(site: Error, err: unknown): never {
  const raw = err as RawNativeError;
  if (raw && typeof raw.code === 'string' && typeof raw.syscall === 'string' && typeof raw.errno === 'number') {
    const e = new SyscallError(raw.message, {
      code: raw.code, errno: raw.errno, syscall: raw.syscall,
      ...(raw.path !== undefined ? { path: raw.path } : {}),
      ...(raw.dest !== undefined ? { dest: raw.dest } : {}),
    });
    const frames = (site.stack ?? '').split('\n').slice(1).join('\n');
    e.stack = `${e.name}: ${e.message}\n${frames}`;
    throw e;
  }
  throw err;
}

/** Wraps an async addon function so its errors carry the caller's stack. */
function wrap<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return function wrapped(...args: A): Promise<R> {
    const site = new Error();
    Error.captureStackTrace(site, wrapped);
    let p: Promise<R>;
    try {
      p = fn(...args);
    } catch (err) {
      return Promise.reject(err);
    }
    return p.catch((err: unknown) => rethrow(site, err));
  };
}

export const MS = Object.freeze({ ...addon.mountConstants }) as Readonly<Record<
  'MS_RDONLY' | 'MS_NOSUID' | 'MS_NODEV' | 'MS_NOEXEC' | 'MS_SYNCHRONOUS' | 'MS_REMOUNT' | 'MS_MANDLOCK' |
  'MS_DIRSYNC' | 'MS_NOATIME' | 'MS_NODIRATIME' | 'MS_BIND' | 'MS_MOVE' | 'MS_REC' | 'MS_SILENT' |
  'MS_POSIXACL' | 'MS_UNBINDABLE' | 'MS_PRIVATE' | 'MS_SLAVE' | 'MS_SHARED' | 'MS_RELATIME' | 'MS_KERNMOUNT' |
  'MS_I_VERSION' | 'MS_STRICTATIME' | 'MS_LAZYTIME' | 'MNT_FORCE' | 'MNT_DETACH' | 'MNT_EXPIRE' | 'UMOUNT_NOFOLLOW',
  number>>;

export const C = Object.freeze({ ...addon.fileConstants, ...addon.xattrConstants }) as Readonly<Record<
  'O_RDONLY' | 'O_WRONLY' | 'O_RDWR' | 'O_CREAT' | 'O_EXCL' | 'O_TRUNC' | 'O_APPEND' | 'O_NOFOLLOW' |
  'O_DIRECTORY' | 'O_PATH' | 'O_CLOEXEC' | 'O_NONBLOCK' | 'O_NOATIME' |
  'RESOLVE_NO_XDEV' | 'RESOLVE_NO_MAGICLINKS' | 'RESOLVE_NO_SYMLINKS' | 'RESOLVE_BENEATH' | 'RESOLVE_IN_ROOT' |
  'AT_FDCWD' | 'AT_SYMLINK_NOFOLLOW' | 'AT_REMOVEDIR' | 'AT_EMPTY_PATH' | 'AT_SYMLINK_FOLLOW' |
  'RENAME_NOREPLACE' | 'RENAME_EXCHANGE' | 'RENAME_WHITEOUT' |
  'S_IFMT' | 'S_IFREG' | 'S_IFDIR' | 'S_IFLNK' | 'S_IFCHR' | 'S_IFBLK' | 'S_IFIFO' | 'S_IFSOCK' |
  'XATTR_CREATE' | 'XATTR_REPLACE', number>>;

/** mount(2): mount(source, target, fstype, flags, data). */
export const mount = wrap(addon.mount);
/** umount2(2): umount2(target, flags). */
export const umount2 = wrap(addon.umount2);
/** statfs(2): every field of struct statfs; f_type unsigned 32-bit. */
export const statfs = wrap(addon.statfs);
/** lgetxattr(2): the value, without following a final symlink. */
export const lgetxattr = wrap(addon.lgetxattr);
/** getxattr(2): follows symlinks (use on /proc/self/fd/N of an O_PATH fd). */
export const getxattr = wrap(addon.getxattr);
/** fgetxattr(2). */
export const fgetxattr = wrap(addon.fgetxattr);
/** llistxattr(2): attribute names. */
export const llistxattr = wrap(addon.llistxattr);
/** listxattr(2): follows symlinks. */
export const listxattr = wrap(addon.listxattr);
/** flistxattr(2). */
export const flistxattr = wrap(addon.flistxattr);
/** lsetxattr(2). */
export const lsetxattr = wrap(addon.lsetxattr);
/** setxattr(2): follows symlinks. */
export const setxattr = wrap(addon.setxattr);
/** fsetxattr(2). */
export const fsetxattr = wrap(addon.fsetxattr);
/** lremovexattr(2). */
export const lremovexattr = wrap(addon.lremovexattr);
/** mknod(2) with makedev(major, minor). */
export const mknod = wrap(addon.mknod);
/** mknodat(2) with makedev(major, minor). */
export const mknodat = wrap(addon.mknodat);
/** mkdirat(2). */
export const mkdirat = wrap(addon.mkdirat);
/** symlinkat(2): symlinkat(target, dirfd, name). */
export const symlinkat = wrap(addon.symlinkat);
/** linkat(2). */
export const linkat = wrap(addon.linkat);
/** unlinkat(2). */
export const unlinkat = wrap(addon.unlinkat);
/** renameat2(2). */
export const renameat2 = wrap(addon.renameat2);
/** readlinkat(2): the raw target bytes. */
export const readlinkat = wrap(addon.readlinkat);
/** fstatat(2). */
export const fstatat = wrap(addon.fstatat);
/** fchownat(2). */
export const fchownat = wrap(addon.fchownat);
/** fchmodat(2): follows a final symlink; never pass a symlink's name. */
export const fchmodat = wrap(addon.fchmodat);
/** utimensat(2) with nanoseconds. */
export const utimensat = wrap(addon.utimensat);
/** open(2), always O_CLOEXEC. */
export const open = wrap(addon.open);
/** openat(2), always O_CLOEXEC. */
export const openat = wrap(addon.openat);
/** openat2(2), always O_CLOEXEC. */
export const openat2 = wrap(addon.openat2);
/** fchmod(2). */
export const fchmod = wrap(addon.fchmod);
/** fchown(2). */
export const fchown = wrap(addon.fchown);
/** Recursive fd-relative unlinkat(2) that never follows a symlink; a missing name is not an error. */
export const removeAllAt = wrap(addon.removeAllAt);
/** syncfs(2): flush the filesystem that holds `fd`. */
export const syncfs = wrap(addon.syncfs);
/** ioctl(dst, FICLONE, src): share extents (reflink). */
export const ficlone = wrap(addon.ficlone);
/** copy_file_range(2) loop until `length` bytes or EOF; resolves to bytes copied. */
export const copyFileRange = wrap(addon.copyFileRange);

/** close(2), synchronous (fds here are dirs and O_PATH handles; close never blocks on them). */
export function closeSync(fd: number): void {
  const site = new Error();
  try {
    addon.closeSync(fd);
  } catch (err) {
    rethrow(site, err);
  }
}
