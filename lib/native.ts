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

/** FS_IOC_FSGETXATTR's struct fsxattr (fsx_ prefix dropped). */
export interface FsXattrResult {
  xflags: number; extsize: number; nextents: number; projid: number; cowextsize: number;
}

/** Q_XGETQUOTA's struct fs_disk_quota, block counts converted to bytes (512-byte blocks). */
export interface XfsProjectQuota {
  id: number; flags: number; blockHardLimitBytes: number; blockSoftLimitBytes: number; usedBytes: number;
  inodeHardLimit: number; inodeSoftLimit: number; inodes: number;
}

/** One item of a BTRFS_IOC_TREE_SEARCH result; u64 key fields are BigInt. */
export interface BtrfsSearchItem {
  objectid: bigint; type: number; offset: bigint; transid: bigint; data: Buffer;
}

/** Op kinds of applyBatch (native/apply.cc); the op encoding is in lib/archive/apply-batch.ts. */
export const ApplyOpKind = Object.freeze({
  File: 0, Dir: 1, Symlink: 2, Link: 3, Char: 4, Block: 5, Fifo: 6, Whiteout: 7, DirTimes: 8,
} as const);

/** scanDir's result: entries sorted by name; `stats` holds SCAN_FIELDS numbers per entry. */
export interface ScanResult {
  names: string[];
  stats: Float64Array;
  /** Per entry: flat [name, value, ...] or null. */
  xattrs: Array<Array<string | Buffer> | null>;
}

/** scanTree's result: scanDir's fields for a whole tree in walk order, with each entry's directory. */
export interface TreeScan extends ScanResult {
  /** Index of the entry's directory, -1 for entries of the root. */
  parents: Int32Array;
  /** Symlink targets by entry index (with ScanFlag.linkTargets). */
  links?: Record<number, Buffer>;
}

/** Offsets within one entry's block of scanDir stats. */
export const ScanField = Object.freeze({
  mode: 0, uid: 1, gid: 2, rdevMajor: 3, rdevMinor: 4, size: 5, mtimeSec: 6, mtimeNsec: 7,
  inoHigh: 8, inoLow: 9, dev: 10, nlink: 11, blocks: 12, count: 13,
} as const);

/** scanDir flags. */
export const ScanFlag = Object.freeze({ capability: 1, allXattrs: 2, linkTargets: 4 } as const);

interface Addon {
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): Promise<void>;
  umount2(target: string, flags: number): Promise<void>;
  mountFrom(dir: string, source: string | null, target: string, fstype: string | null, flags: number, data: string | null): Promise<void>;
  mountConstants: Record<string, number>;
  fsopen(fstype: string, flags: number): Promise<number>;
  fsMountSequence(fstype: string, source: string, target: string, lowerdirs: string[], options: Array<[string, string | null]>, attrFlags: number): Promise<void>;
  fsconfigSetString(fd: number, key: string, value: string): Promise<void>;
  fsconfigSetStrings(fd: number, key: string, values: string[]): Promise<void>;
  fsconfigSetFlag(fd: number, key: string): Promise<void>;
  fsconfigCreate(fd: number): Promise<void>;
  fsmount(fd: number, flags: number, attrFlags: number): Promise<number>;
  moveMount(fromDirfd: number, fromPath: string, toDirfd: number, toPath: string, flags: number): Promise<void>;
  fsReadLog(fd: number): string[];
  mountApiConstants: Record<string, number>;
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
  flock(fd: number, operation: number): Promise<void>;
  fileConstants: Record<string, number>;
  applyBatch(rootFd: number, ops: Buffer, count: number, buffers: ArrayBufferLike[], xattrs: Array<string | Buffer>, extents: Buffer): Promise<number>;
  scanDir(path: string, flags: number): Promise<ScanResult>;
  scanTree(path: string, flags: number): Promise<TreeScan>;
  sparseMap(path: string): Promise<Float64Array>;
  readFilesInto(rootPath: string, paths: string[], sizes: number[], offsets: number[], target: Buffer): Promise<number[]>;
  copyTreeInto(srcDirFd: number, dstDirFd: number): Promise<number>;
  ficlone(srcFd: number, dstFd: number): Promise<void>;
  copyFileRange(srcFd: number, dstFd: number, length: number): Promise<number>;
  btrfsSubvolCreate(dirfd: number, name: string): Promise<void>;
  btrfsSnapCreate(dirfd: number, name: string, srcFd: number, readOnly: boolean): Promise<void>;
  btrfsSnapDestroy(dirfd: number, name: string): Promise<void>;
  btrfsSnapDestroyById(fd: number, subvolId: number | bigint): Promise<void>;
  btrfsInoLookup(fd: number): Promise<number>;
  btrfsTreeSearch(fd: number, treeId: bigint, minObjectid: bigint, maxObjectid: bigint, minType: bigint, maxType: bigint,
    minOffset: bigint, maxOffset: bigint, maxItems: bigint): Promise<BtrfsSearchItem[]>;
  btrfsQuotaEnable(fd: number): Promise<void>;
  btrfsQuotaEnableSimple(fd: number): Promise<void>;
  btrfsQgroupCreate(fd: number, qgroupId: number | bigint): Promise<void>;
  btrfsQgroupDestroy(fd: number, qgroupId: number | bigint): Promise<void>;
  btrfsQgroupLimit(fd: number, qgroupId: number | bigint, maxRfer: number | bigint): Promise<void>;
  btrfsQuotaRescanWait(fd: number): Promise<void>;
  btrfsConstants: Record<string, number>;
  fsGetXattrFd(fd: number): Promise<FsXattrResult>;
  fsSetProjectFd(fd: number, projid: number, inherit: boolean): Promise<void>;
  xfsSetProjectLimit(blockDevice: string, projid: number, hardBytes: number): Promise<void>;
  xfsGetProjectQuota(blockDevice: string, projid: number): Promise<XfsProjectQuota>;
  quotaConstants: Record<string, number>;
}

const addon = bindings('graphdriver') as Addon;

interface RawNativeError extends Error {
  code?: string; errno?: number; syscall?: string; path?: string; dest?: string; opIndex?: number;
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
    if (typeof raw.opIndex === 'number') (e as SyscallError & { opIndex?: number }).opIndex = raw.opIndex;
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
  'LOCK_SH' | 'LOCK_EX' | 'LOCK_NB' | 'LOCK_UN' |
  'XATTR_CREATE' | 'XATTR_REPLACE', number>>;

/** mount(2): mount(source, target, fstype, flags, data). */
export const mount = wrap(addon.mount);
/** mount(2) from a thread that did unshare(CLONE_FS) + chdir(dir): relative paths in data resolve against dir. */
export const mountFrom = wrap(addon.mountFrom);
/** umount2(2): umount2(target, flags). */
export const umount2 = wrap(addon.umount2);
export const MOUNT_API = Object.freeze({ ...addon.mountApiConstants }) as Readonly<Record<
  'FSOPEN_CLOEXEC' | 'FSMOUNT_CLOEXEC' | 'FSCONFIG_SET_FLAG' | 'FSCONFIG_SET_STRING' | 'FSCONFIG_CMD_CREATE' |
  'MOUNT_ATTR_RDONLY' | 'MOUNT_ATTR_NOSUID' | 'MOUNT_ATTR_NODEV' | 'MOUNT_ATTR_NOEXEC' | 'MOUNT_ATTR_NOATIME' |
  'MOUNT_ATTR_NODIRATIME' | 'MOVE_MOUNT_F_EMPTY_PATH' | 'MOVE_MOUNT_T_EMPTY_PATH', number>>;

/** fsopen + fsconfig (source, lowerdir+ each, options) + CMD_CREATE + fsmount + move_mount, in one pool job. */
export const fsMountSequence = wrap(addon.fsMountSequence);
/** fsopen(2): fsopen(fstype, flags) -> an fs_context fd. */
export const fsopen = wrap(addon.fsopen);
/** fsconfig(2): fsconfig(fd, FSCONFIG_SET_STRING, key, value, 0). */
export const fsconfigSetString = wrap(addon.fsconfigSetString);
/** fsconfig(2) once per value, in order: fsconfig(fd, FSCONFIG_SET_STRING, key, v, 0); rejects with `opIndex` of the failing value. */
export const fsconfigSetStrings = wrap(addon.fsconfigSetStrings);
/** fsconfig(2): fsconfig(fd, FSCONFIG_SET_FLAG, key, NULL, 0). */
export const fsconfigSetFlag = wrap(addon.fsconfigSetFlag);
/** fsconfig(2): fsconfig(fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0). */
export const fsconfigCreate = wrap(addon.fsconfigCreate);
/** fsmount(2): fsmount(fd, flags, attrFlags) -> a detached mount fd. */
export const fsmount = wrap(addon.fsmount);
/** move_mount(2): move_mount(fromDirfd, fromPath, toDirfd, toPath, flags). */
export const moveMount = wrap(addon.moveMount);

/** read(2) of an fs_context fd until ENODATA: the kernel's messages for it ("e overlay: ..."), draining them. Synchronous: the log is in memory. */
export function fsReadLog(fd: number): string[] {
  const site = new Error();
  try {
    return addon.fsReadLog(fd);
  } catch (err) {
    return rethrow(site, err);
  }
}

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
/** flock(2): flock(fd, operation); waits on the pool unless LOCK_NB. */
export const flock = wrap(addon.flock);
/** syncfs(2): flush the filesystem that holds `fd`. */
export const syncfs = wrap(addon.syncfs);
/** The archive engine's batched apply (native/apply.cc); rejects with `opIndex` of the failing op. */
export const applyBatch = wrap(addon.applyBatch);
/** getdents64 + fstatat of every entry of a directory (and optionally its xattrs), in one call. */
export const scanDir = wrap(addon.scanDir);
/** lseek(SEEK_DATA/SEEK_HOLE) over a file: its data extents as [offset, length, ...]. */
export const sparseMap = wrap(addon.sparseMap);
/** scanDir of a directory and of every directory below it, depth first, in one call. */
export const scanTree = wrap(addon.scanTree);
/** openat2(RESOLVE_BENEATH) + read + close of several files below a root, each into `target` at its offset. */
export const readFilesInto = wrap(addon.readFilesInto);
/** The vfs copy's hot loop (native/copytree.cc): everything below srcDirFd into dstDirFd, then the root's metadata. */
export const copyTreeInto = wrap(addon.copyTreeInto);
/** ioctl(dst, FICLONE, src): share extents (reflink). */
export const ficlone = wrap(addon.ficlone);
/** copy_file_range(2) loop until `length` bytes or EOF; resolves to bytes copied. */
export const copyFileRange = wrap(addon.copyFileRange);

export const BTRFS = Object.freeze({ ...addon.btrfsConstants }) as Readonly<Record<
  'BTRFS_FIRST_FREE_OBJECTID' | 'BTRFS_QUOTA_TREE_OBJECTID' | 'BTRFS_ROOT_TREE_OBJECTID' | 'BTRFS_QGROUP_STATUS_KEY' |
  'BTRFS_QGROUP_INFO_KEY' | 'BTRFS_QGROUP_LIMIT_KEY' | 'BTRFS_ROOT_ITEM_KEY' | 'BTRFS_QGROUP_STATUS_FLAG_ON' |
  'BTRFS_QGROUP_STATUS_FLAG_RESCAN' | 'BTRFS_QGROUP_STATUS_FLAG_INCONSISTENT' | 'BTRFS_QGROUP_STATUS_FLAG_SIMPLE_MODE',
  number>>;

/** ioctl(dirfd, BTRFS_IOC_SUBVOL_CREATE, {name}): a new empty subvolume `name` in dirfd. */
export const btrfsSubvolCreate = wrap(addon.btrfsSubvolCreate);
/** ioctl(dirfd, BTRFS_IOC_SNAP_CREATE_V2, {fd: srcFd, flags: readOnly ? BTRFS_SUBVOL_RDONLY : 0, name}). */
export const btrfsSnapCreate = wrap(addon.btrfsSnapCreate);
/** ioctl(dirfd, BTRFS_IOC_SNAP_DESTROY, {name}): deletes subvolume `name` in dirfd. */
export const btrfsSnapDestroy = wrap(addon.btrfsSnapDestroy);
/** ioctl(fd, BTRFS_IOC_SNAP_DESTROY_V2, {BTRFS_SUBVOL_SPEC_BY_ID, subvolid}). */
export const btrfsSnapDestroyById = wrap(addon.btrfsSnapDestroyById);
/** ioctl(fd, BTRFS_IOC_INO_LOOKUP, {treeid: 0, objectid: 256}): the tree id (= level-0 qgroup id) of fd's subvolume. */
export const btrfsInoLookup = wrap(addon.btrfsInoLookup);
const treeSearch = wrap(addon.btrfsTreeSearch);
/** The key range of one BTRFS_IOC_TREE_SEARCH. */
export interface BtrfsSearchKey {
  treeId: bigint; minObjectid: bigint; maxObjectid: bigint; minType: number; maxType: number;
  minOffset: bigint; maxOffset: bigint; maxItems: number;
}
/** ioctl(fd, BTRFS_IOC_TREE_SEARCH, {key}): one search (at most one 4 KiB buffer of items). */
export function btrfsTreeSearch(fd: number, k: BtrfsSearchKey): Promise<BtrfsSearchItem[]> {
  return treeSearch(fd, k.treeId, k.minObjectid, k.maxObjectid, BigInt(k.minType), BigInt(k.maxType),
    k.minOffset, k.maxOffset, BigInt(k.maxItems));
}
/** ioctl(fd, BTRFS_IOC_QUOTA_CTL, {cmd: BTRFS_QUOTA_CTL_ENABLE}): full qgroup accounting. */
export const btrfsQuotaEnable = wrap(addon.btrfsQuotaEnable);
/** ioctl(fd, BTRFS_IOC_QUOTA_CTL, {cmd: BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA}): simple quotas (Linux 6.7+). */
export const btrfsQuotaEnableSimple = wrap(addon.btrfsQuotaEnableSimple);
/** ioctl(fd, BTRFS_IOC_QGROUP_CREATE, {create: 1, qgroupid}). */
export const btrfsQgroupCreate = wrap(addon.btrfsQgroupCreate);
/** ioctl(fd, BTRFS_IOC_QGROUP_CREATE, {create: 0, qgroupid}): destroys the qgroup. */
export const btrfsQgroupDestroy = wrap(addon.btrfsQgroupDestroy);
/** ioctl(fd, BTRFS_IOC_QGROUP_LIMIT, {qgroupid, lim: {BTRFS_QGROUP_LIMIT_MAX_RFER, max_rfer}}). */
export const btrfsQgroupLimit = wrap(addon.btrfsQgroupLimit);
/** ioctl(fd, BTRFS_IOC_QUOTA_RESCAN_WAIT): waits for a running quota rescan. */
export const btrfsQuotaRescanWait = wrap(addon.btrfsQuotaRescanWait);

export const QUOTA = Object.freeze({ ...addon.quotaConstants }) as Readonly<Record<'FS_XFLAG_PROJINHERIT', number>>;
/** ioctl(fd, FS_IOC_FSGETXATTR, &fsx): xflags, extent sizes and project id of fd's inode. */
export const fsGetXattrFd = wrap(addon.fsGetXattrFd);
/**
 * ioctl(fd, FS_IOC_FSGETXATTR) then ioctl(fd, FS_IOC_FSSETXATTR) with fsx_projid = projid and
 * FS_XFLAG_PROJINHERIT set (inherit) or cleared; the other fields are kept.
 */
export const fsSetProjectFd = wrap(addon.fsSetProjectFd);
/**
 * quotactl(QCMD(Q_XSETQLIM, PRJQUOTA), blockDevice, projid, {FS_DQ_BHARD|FS_DQ_BSOFT}): hard and
 * soft block limit of project `projid` = hardBytes rounded up to 512-byte blocks (0 = no limit).
 */
export const xfsSetProjectLimit = wrap(addon.xfsSetProjectLimit);
/** quotactl(QCMD(Q_XGETQUOTA, PRJQUOTA), blockDevice, projid, &fs_disk_quota): limits and usage. */
export const xfsGetProjectQuota = wrap(addon.xfsGetProjectQuota);

/** close(2), synchronous (fds here are dirs and O_PATH handles; close never blocks on them). */
export function closeSync(fd: number): void {
  const site = new Error();
  try {
    addon.closeSync(fd);
  } catch (err) {
    rethrow(site, err);
  }
}
