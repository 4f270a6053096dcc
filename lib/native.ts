// native.ts: the only module that loads the addon. A typed facade over it: every call
// captures the caller's stack before crossing into native code and rethrows native errors as
// SyscallError carrying that stack (the message is the failed call itself). No policy here.
import bindings from 'bindings';
import { MkfsError, SyscallError } from './errors';

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

/** An ext4 feature name mkfsExt4 accepts (mke2fs's spelling; 'extents' is taken for 'extent'). */
export type Ext4Feature = 'has_journal' | 'ext_attr' | 'resize_inode' | 'dir_index' | 'filetype' | 'extent' | '64bit' |
  'flex_bg' | 'metadata_csum_seed' | 'sparse_super' | 'large_file' | 'huge_file' | 'dir_nlink' | 'extra_isize' |
  'metadata_csum' | 'uninit_bg';

/**
 * mkfsExt4's options; every one optional (defaults: mke2fs.conf's ext4 on Debian 12, with 4 KiB
 * blocks at every size). Unknown keys are refused.
 */
export interface MkfsExt4Options {
  /** 1024, 2048 or 4096 (default 4096). */
  blockSize?: 1024 | 2048 | 4096;
  /** 128 or 256 (default 256). */
  inodeSize?: 128 | 256;
  /** mke2fs -i (default by size as mke2fs.conf: 4096 under 512 MiB, 16384, 32768 from 4 TiB, 65536 from 16 TiB). */
  bytesPerInode?: number;
  /** mke2fs -N: at least this many inodes (rounded up to fill whole inode table blocks). */
  inodes?: number;
  /** mke2fs -m: blocks reserved for root, percent (default 5). */
  reservedPercent?: number;
  /** At most 16 bytes of UTF-8. */
  label?: string;
  /** 01234567-89ab-cdef-0123-456789abcdef; default random (v4). */
  uuid?: string;
  /** false: no journal (the same as '^has_journal'); applied after `features`, so it wins over them. Default true. */
  journal?: boolean;
  /** Journal size in blocks, 1024..10240000 and at most half the free blocks (default: by size, as mke2fs). */
  journalBlocks?: number;
  /** Discard the device first (BLKDISCARD; punched holes for a regular file); default true. */
  discard?: boolean;
  /** Leave unused inode tables to the kernel's lazy init (default true, as mke2fs). */
  lazyItableInit?: boolean;
  /** Do not zero the journal (default false, as mke2fs). */
  lazyJournalInit?: boolean;
  /**
   * The device reads zeroes wherever it was never written (e.g. a new thin device): inode
   * tables and journal are neither written nor left to the kernel's lazy init (default false).
   */
  assumeZeroed?: boolean;
  /** Changes to the default features, e.g. ['^has_journal', 'uninit_bg', '^metadata_csum']. */
  features?: Array<Ext4Feature | `^${Ext4Feature}` | 'extents' | '^extents'>;
  /** Format only the first N bytes of the device (default: all of it). */
  sizeBytes?: number;
}

/** What mkfsExt4 made. */
export interface MkfsExt4Result {
  blockSize: number; blocks: number; freeBlocks: number; reservedBlocks: number; inodes: number; inodeSize: number;
  groups: number; journalBlocks: number; uuid: string; features: Ext4Feature[];
  /** The device was discarded; itableZeroed: its discard reads back zeroes, so inode tables were not written. */
  discarded: boolean; itableZeroed: boolean;
}

/** A device number, split as the kernel's MAJOR()/MINOR() do. */
export interface DevNo { major: number; minor: number }

/**
 * How a device-mapper ioctl names its device: a name, or exactly one of {name}, {uuid} or the
 * device number (the kernel refuses more than one).
 */
export type DmDevId = string | { name: string } | { uuid: string } | DevNo;

/** A dm device's state flags (dm_ioctl.flags as the kernel returned them, decoded). */
export interface DmInfoFlags {
  readOnly: boolean; suspended: boolean; activePresent: boolean; inactivePresent: boolean;
  deferredRemove: boolean; internalSuspend: boolean; ueventGenerated: boolean;
}

/** The device info the device-level dm ioctls return. */
export interface DmInfo {
  name: string; uuid: string; dev: DevNo; openCount: number; eventNr: number; targetCount: number;
  rawFlags: number; flags: DmInfoFlags;
}

/** One table line as DM_TABLE_LOAD takes it: start and length in 512-byte sectors. */
export interface DmTargetSpec { start: number | bigint; length: number | bigint; type: string; params: string }
/** One target as DM_TABLE_STATUS returns it (params: its status line, or its table line). Sectors as numbers. */
export interface DmTarget { start: number; length: number; type: string; params: string }
/** One DM_LIST_DEVICES record; eventNr from dm interface 4.37, uuid from 4.46 ('' = none). */
export interface DmListEntry { name: string; dev: DevNo; eventNr?: number; uuid?: string }
export interface DmTableStatus { info: DmInfo; targets: DmTarget[] }
export interface DmVersion { major: number; minor: number; patch: number }
export interface DmTargetVersion { name: string; version: [number, number, number] }

/** What loopConfigure / loopSetFd bound: the device number, and its fd when asked to keep it open. */
export interface LoopBound { fd: number | null; dev: DevNo }
/** LOOP_GET_STATUS64's struct loop_info64. `fileName` is the kernel's copy, cut at 63 bytes. */
export interface LoopStatus {
  number: number; backing: { dev: DevNo; inode: bigint }; offset: number; sizeLimit: number; rawFlags: number;
  flags: { readOnly: boolean; autoclear: boolean; partscan: boolean; directIo: boolean }; fileName: string;
}

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
  dmOpenControl(path?: string | null): Promise<number>;
  dmVersion(controlFd: number): Promise<DmVersion>;
  dmListDevices(controlFd: number): Promise<DmListEntry[]>;
  dmListVersions(controlFd: number): Promise<DmTargetVersion[]>;
  dmGetTargetVersion(controlFd: number, target: string): Promise<[number, number, number]>;
  dmDevCreate(controlFd: number, name: string, uuid: string | null, flags: number): Promise<DmInfo>;
  dmDevRemove(controlFd: number, dev: DmDevId, flags: number): Promise<void>;
  dmDevSuspend(controlFd: number, dev: DmDevId, flags: number): Promise<DmInfo>;
  dmDevStatus(controlFd: number, dev: DmDevId): Promise<DmInfo>;
  dmTableLoad(controlFd: number, dev: DmDevId, targets: DmTargetSpec[], flags: number): Promise<DmInfo>;
  dmTableClear(controlFd: number, dev: DmDevId): Promise<DmInfo>;
  dmTableStatus(controlFd: number, dev: DmDevId, flags: number): Promise<DmTableStatus>;
  dmTableDeps(controlFd: number, dev: DmDevId, flags: number): Promise<DevNo[]>;
  dmTargetMsg(controlFd: number, dev: DmDevId, sector: number | bigint, message: string): Promise<string | null>;
  dmConstants: Record<string, number>;
  loopCtlGetFree(path?: string | null): Promise<number>;
  loopConfigure(device: string, backing: string, flags: number, blockSize: number, keepOpen: boolean): Promise<LoopBound>;
  loopSetFd(device: string, backing: string, flags: number, blockSize: number, keepOpen: boolean): Promise<LoopBound>;
  loopClrFd(target: string | number): Promise<void>;
  loopSetCapacity(target: string | number): Promise<void>;
  loopGetStatus64(target: string | number): Promise<LoopStatus>;
  blkGetSize64(target: string | number): Promise<number>;
  blkSszGet(target: string | number): Promise<number>;
  blkDiscard(target: string | number, offset: number | bigint, length: number | bigint): Promise<void>;
  loopConstants: Record<string, number>;
  mkfsExt4(path: string, opts?: MkfsExt4Options): Promise<MkfsExt4Result>;
  mkfsExt4Features: string[];
  mkfsExt4DefaultFeatures: string[];
}

const addon = bindings('graphdriver') as Addon;

interface RawNativeError extends Error {
  code?: string; errno?: number; syscall?: string; path?: string; dest?: string; opIndex?: number; ext2Code?: string;
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
  if (raw && raw.code === MkfsError.code && typeof raw.syscall === 'string') {
    // libext2fs's own error codes have no errno: MkfsError, with the caller's stack too.
    const e = new MkfsError(raw.message, {
      syscall: raw.syscall,
      ...(raw.path !== undefined ? { path: raw.path } : {}),
      ...(raw.ext2Code !== undefined ? { ext2Code: raw.ext2Code } : {}),
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

/** The ext4 features mkfsExt4 accepts, and the ones it sets by default (mke2fs.conf's ext4). */
export const EXT4_FEATURES = Object.freeze([...addon.mkfsExt4Features]) as readonly Ext4Feature[];
export const EXT4_DEFAULT_FEATURES = Object.freeze([...addon.mkfsExt4DefaultFeatures]) as readonly Ext4Feature[];
/**
 * Makes an ext4 filesystem on `path` (a block device or a regular file) in-process with
 * libext2fs, the way mke2fs does; refuses a mounted device (EBUSY). Rejects with SyscallError
 * for errno failures (ENOENT, EBUSY, ENOSPC...), MkfsError (ERR_GRAPHDRIVER_MKFS) for
 * libext2fs's own codes and size checks; bad options throw TypeError/RangeError
 * (ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE) before anything is touched.
 */
export const mkfsExt4 = wrap(addon.mkfsExt4);

// Device-mapper (native/dm.cc). Every call takes the control fd first: dmOpenControl()'s, or
// -1 to open /dev/mapper/control for that call alone. Errors: SyscallError with the ioctl's
// name as `syscall` ('DM_DEV_CREATE') and the device (name, uuid or 'major:minor') as `path`.
// Sector counts are numbers (exact to 2^53 sectors); flags are the DM_* constants below.
export const DM = Object.freeze({ ...addon.dmConstants }) as Readonly<Record<
  'DM_READONLY_FLAG' | 'DM_SUSPEND_FLAG' | 'DM_PERSISTENT_DEV_FLAG' | 'DM_STATUS_TABLE_FLAG' | 'DM_ACTIVE_PRESENT_FLAG' |
  'DM_INACTIVE_PRESENT_FLAG' | 'DM_BUFFER_FULL_FLAG' | 'DM_SKIP_BDGET_FLAG' | 'DM_SKIP_LOCKFS_FLAG' | 'DM_NOFLUSH_FLAG' |
  'DM_QUERY_INACTIVE_TABLE_FLAG' | 'DM_UEVENT_GENERATED_FLAG' | 'DM_UUID_FLAG' | 'DM_SECURE_DATA_FLAG' | 'DM_DATA_OUT_FLAG' |
  'DM_DEFERRED_REMOVE' | 'DM_INTERNAL_SUSPEND_FLAG' | 'DM_NAME_LEN' | 'DM_UUID_LEN' | 'DM_MAX_TYPE_NAME', number>>;
/** open(path ?? '/dev/mapper/control', O_RDWR | O_CLOEXEC): the control fd (close with closeSync). */
export const dmOpenControl = wrap(addon.dmOpenControl);
/** ioctl(DM_VERSION): the kernel's dm ioctl interface version (ENOENT from open: no device-mapper). */
export const dmVersion = wrap(addon.dmVersion);
/** ioctl(DM_LIST_DEVICES, DM_UUID_FLAG): every dm device, buffer grown while DM_BUFFER_FULL_FLAG. */
export const dmListDevices = wrap(addon.dmListDevices);
/** ioctl(DM_LIST_VERSIONS): the targets loaded now and their versions. */
export const dmListVersions = wrap(addon.dmListVersions);
/** ioctl(DM_GET_TARGET_VERSION, {name: target}): loads the target's module; EINVAL if there is none. */
export const dmGetTargetVersion = wrap(addon.dmGetTargetVersion);
/** ioctl(DM_DEV_CREATE, {name, uuid, flags}): a device without a table; EEXIST for a taken name or uuid. */
export const dmDevCreate = wrap(addon.dmDevCreate);
/** ioctl(DM_DEV_REMOVE, {dev, flags}): EBUSY when open, unless flags has DM_DEFERRED_REMOVE (then removed at last close). */
export const dmDevRemove = wrap(addon.dmDevRemove);
/** ioctl(DM_DEV_SUSPEND, {dev, flags}): suspends with DM_SUSPEND_FLAG (+ DM_NOFLUSH_FLAG / DM_SKIP_LOCKFS_FLAG), else resumes (swapping in a loaded table). */
export const dmDevSuspend = wrap(addon.dmDevSuspend);
/** ioctl(DM_DEV_STATUS, {dev}): the device's info; ENXIO when there is none. */
export const dmDevStatus = wrap(addon.dmDevStatus);
/** ioctl(DM_TABLE_LOAD, {dev, flags, targets}): loads the inactive table (DM_READONLY_FLAG: read-only). */
export const dmTableLoad = wrap(addon.dmTableLoad);
/** ioctl(DM_TABLE_CLEAR, {dev}): drops the inactive table. */
export const dmTableClear = wrap(addon.dmTableClear);
/** ioctl(DM_TABLE_STATUS, {dev, flags}): info and each target's status line (its table line with DM_STATUS_TABLE_FLAG). */
export const dmTableStatus = wrap(addon.dmTableStatus);
/** ioctl(DM_TABLE_DEPS, {dev, flags}): the devices the table uses. */
export const dmTableDeps = wrap(addon.dmTableDeps);
/** ioctl(DM_TARGET_MSG, {dev, sector, message}): the target's answer, or null when it gave none. */
export const dmTargetMsg = wrap(addon.dmTargetMsg);

// Loop and block devices (native/loop.cc). A `target` is a device path (opened for the call) or
// an fd. Sizes and offsets are numbers (EOVERFLOW past 2^53 bytes); inode numbers are bigint.
export const LOOP = Object.freeze({ ...addon.loopConstants }) as Readonly<Record<
  'LO_FLAGS_READ_ONLY' | 'LO_FLAGS_AUTOCLEAR' | 'LO_FLAGS_PARTSCAN' | 'LO_FLAGS_DIRECT_IO' | 'LO_NAME_SIZE' | 'LOOP_MAJOR',
  number>>;
/** ioctl(open(path ?? '/dev/loop-control'), LOOP_CTL_GET_FREE): N of a free /dev/loopN. */
export const loopCtlGetFree = wrap(addon.loopCtlGetFree);
/**
 * ioctl(open(device), LOOP_CONFIGURE, {fd: open(backing), block_size, info: {lo_flags, lo_file_name}}):
 * binds in one step (Linux 5.8+; EINVAL/ENOTTY before). EBUSY: already bound. keepOpen: resolves
 * with the device's fd (needed with LO_FLAGS_AUTOCLEAR, which unbinds at the last close).
 */
export const loopConfigure = wrap(addon.loopConfigure);
/** The same with LOOP_SET_FD + LOOP_SET_STATUS64 (+ LOOP_SET_DIRECT_IO, LOOP_SET_BLOCK_SIZE); unbinds again if a later step fails. */
export const loopSetFd = wrap(addon.loopSetFd);
/** ioctl(target, LOOP_CLR_FD): unbinds at the device's last close; ENXIO when not bound. */
export const loopClrFd = wrap(addon.loopClrFd);
/** ioctl(target, LOOP_SET_CAPACITY): takes the backing file's new size. */
export const loopSetCapacity = wrap(addon.loopSetCapacity);
/** ioctl(target, LOOP_GET_STATUS64): number, backing dev/inode, offset, size limit, flags, file name; ENXIO when not bound. */
export const loopGetStatus64 = wrap(addon.loopGetStatus64);
/** ioctl(target, BLKGETSIZE64): size in bytes. */
export const blkGetSize64 = wrap(addon.blkGetSize64);
/** ioctl(target, BLKSSZGET): logical sector size in bytes. */
export const blkSszGet = wrap(addon.blkSszGet);
/** ioctl(target, BLKDISCARD, [offset, length]): bytes, multiples of the logical sector size; a path is opened O_WRONLY. */
export const blkDiscard = wrap(addon.blkDiscard);

/** close(2), synchronous (fds here are dirs and O_PATH handles; close never blocks on them). */
export function closeSync(fd: number): void {
  const site = new Error();
  try {
    addon.closeSync(fd);
  } catch (err) {
    rethrow(site, err);
  }
}
