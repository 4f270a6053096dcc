// devno.ts: device numbers and device nodes without udev. A dm or loop device is known by its
// number (DM ioctls and sysfs give major:minor); its node is found in /dev (devtmpfs names it
// after the kernel's disk name, e.g. dm-3, loop7, read from /sys/dev/block/M:m/uevent) and
// checked by rdev, or made with mknod in a directory the caller owns when /dev has none (a
// container's /dev, a tmpfs without devtmpfs). Never a /dev/mapper/<name> symlink: udev makes
// those, and nothing here waits for udev.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { SyscallError } from '../errors';
import { C, mknod } from '../native';
import type { DevNo } from '../native';

/** Splits a dev_t as glibc's major()/minor() do (Node's stat().dev / rdev as number or bigint). */
export function splitDev(dev: number | bigint): DevNo {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

/** 'major:minor', the form dm tables and sysfs use. */
export function devString(dev: DevNo): string {
  return `${dev.major}:${dev.minor}`;
}

/** Parses 'major:minor'; undefined when it is not one. */
export function parseDevString(s: string): DevNo | undefined {
  const m = /^(\d+):(\d+)$/.exec(s.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

export function sameDev(a: DevNo, b: DevNo): boolean {
  return a.major === b.major && a.minor === b.minor;
}

function enoent(syscall: string, p: string, why: string): SyscallError {
  return new SyscallError(`ENOENT: no such file or directory, ${why}`, { code: 'ENOENT', errno: -2, syscall, path: p });
}

/**
 * The kernel's name for block device `dev` (DEVNAME in /sys/dev/block/M:m/uevent: 'dm-3',
 * 'loop7'), or undefined when sysfs does not show it.
 */
export async function kernelDevName(dev: DevNo): Promise<string | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(`/sys/dev/block/${devString(dev)}/uevent`, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^DEVNAME=(.+)$/m.exec(text);
  return m ? m[1]! : undefined;
}

/** True when `p` is a block device node whose rdev is `dev` (not following a final symlink). */
export async function isNodeOf(p: string, dev: DevNo): Promise<boolean> {
  try {
    const st = await fsp.lstat(p, { bigint: true });
    return st.isBlockDevice() && sameDev(splitDev(st.rdev), dev);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT' || (err as { code?: string }).code === 'ENOTDIR') return false;
    throw err;
  }
}

export interface BlockNodeOptions {
  /**
   * Where to mknod a node (named after the kernel's name, else 'blk-M-m') when /dev has none
   * for the device. Without it a missing /dev node is ENOENT. It must be on a mount without
   * `nodev` (a nodev tmpfs /tmp, for one), else opening the node fails with EACCES.
   */
  nodeDir?: string;
  /** The kernel name when the caller knows it (skips reading sysfs), e.g. `loop${n}`. */
  name?: string;
}

/**
 * A path to a block device node for `dev`: /dev/<kernel name> when that node exists with the
 * right rdev, else a node made (or found, right rdev) in `opts.nodeDir`; a wrong node there is
 * replaced. ENOENT (SyscallError, syscall 'stat') when neither is possible.
 */
export async function blockDeviceNode(dev: DevNo, opts: BlockNodeOptions = {}): Promise<string> {
  const name = opts.name ?? await kernelDevName(dev);
  if (name !== undefined) {
    const inDev = path.join('/dev', name);
    if (await isNodeOf(inDev, dev)) return inDev;
  }
  if (opts.nodeDir === undefined) {
    throw enoent('stat', name !== undefined ? path.join('/dev', name) : `/dev (${devString(dev)})`,
      `no block device node for ${devString(dev)} in /dev and no nodeDir to make one`);
  }
  const base = name !== undefined && !name.includes('/') ? name : `blk-${dev.major}-${dev.minor}`;
  const p = path.join(opts.nodeDir, base);
  if (await isNodeOf(p, dev)) return p;
  await fsp.rm(p, { force: true });
  await mknod(p, C.S_IFBLK | 0o600, dev.major, dev.minor);
  return p;
}
