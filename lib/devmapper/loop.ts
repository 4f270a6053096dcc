// loop.ts: loop devices, like the engine's pkg/loopback, over native/loop.cc: attach a file
// (LOOP_CTL_GET_FREE, then LOOP_CONFIGURE, or LOOP_SET_FD + LOOP_SET_STATUS64 on kernels
// before 5.8), detach, find the device already backed by a file (after a restart), capacity
// and status. The choices live here, not in native code: another process may bind the free
// device first (EBUSY: ask for a free one again, a bounded number of times); LOOP_CONFIGURE
// answering EINVAL/ENOTTY means an older kernel (bind the old way from then on).
//
// Device nodes: /dev/loopN when devtmpfs has it, else mknod'ed in `nodeDir` (see devno.ts).
// Autoclear: the kernel unbinds an autoclear device at its last close, so attachLoop keeps the
// device open and returns that fd (`fd`); close it (detachLoop does) once something else holds
// the device (a dm table, a mount), and the binding then ends with that holder.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { hasCode, InvalidArgumentError } from '../errors';
import * as native from '../native';
import { closeSync, LOOP } from '../native';
import type { DevNo, LoopStatus } from '../native';
import { blockDeviceNode, parseDevString, sameDev, splitDev } from './devno';

export type { LoopStatus } from '../native';

/** An attached loop device. */
export interface LoopDevice {
  number: number;
  /** A node for it: /dev/loopN or one in nodeDir. */
  path: string;
  dev: DevNo;
  /** How it was bound. */
  method: 'LOOP_CONFIGURE' | 'LOOP_SET_FD';
  /** The device's open fd when kept (autoclear, or keepOpen); the caller closes it (or detachLoop does). */
  fd?: number;
}

export interface AttachOptions {
  /** Bind read-only (the backing file is opened O_RDONLY). */
  readOnly?: boolean;
  /** LO_FLAGS_AUTOCLEAR: unbind at the device's last close (implies keepOpen). */
  autoclear?: boolean;
  /** LO_FLAGS_DIRECT_IO: the loop driver bypasses the page cache of the backing file. */
  directIo?: boolean;
  /** LO_FLAGS_PARTSCAN: scan a partition table. */
  partscan?: boolean;
  /** Logical block size (512, 1024, 2048, 4096); 0 or absent: the kernel's default. */
  blockSize?: number;
  /** Where to mknod the loop node when /dev has none. */
  nodeDir?: string;
  /** Force the pre-5.8 path (LOOP_SET_FD + LOOP_SET_STATUS64), e.g. to test it. */
  legacy?: boolean;
  /** Return the device's open fd (default: autoclear). */
  keepOpen?: boolean;
  /** How many free devices to try when others keep taking them (EBUSY); default 16. */
  attempts?: number;
  /** The loop-control node (default /dev/loop-control). */
  controlPath?: string;
}

/** The number of /dev/loopN as the kernel has it: /sys/block/loopN/dev, else 7:N (no max_part). */
async function loopDevNo(n: number): Promise<DevNo> {
  try {
    const d = parseDevString(await fsp.readFile(`/sys/block/loop${n}/dev`, 'utf8'));
    if (d !== undefined) return d;
  } catch {
    // no sysfs: the classic numbering
  }
  return { major: LOOP.LOOP_MAJOR, minor: n };
}

/** A node for /dev/loopN (found in /dev, or made in nodeDir) and its device number. */
export async function loopNode(n: number, nodeDir?: string): Promise<{ path: string; dev: DevNo }> {
  const dev = await loopDevNo(n);
  const p = await blockDeviceNode(dev, { name: `loop${n}`, ...(nodeDir !== undefined ? { nodeDir } : {}) });
  return { path: p, dev };
}

/**
 * Attaches `file` to a free loop device. Errors are the native SyscallError: ENOENT (path =
 * the file) for a missing file, EBUSY when every attempt lost the race for a free device.
 */
export async function attachLoop(file: string, opts: AttachOptions = {}): Promise<LoopDevice> {
  const blockSize = opts.blockSize ?? 0;
  if (![0, 512, 1024, 2048, 4096].includes(blockSize)) {
    throw new InvalidArgumentError('blockSize', `loop block size must be 512, 1024, 2048 or 4096, got ${blockSize}`);
  }
  const attempts = opts.attempts ?? 16;
  if (!Number.isInteger(attempts) || attempts < 1) throw new InvalidArgumentError('attempts', `attempts must be a positive integer, got ${attempts}`);
  const backing = path.resolve(file);
  const flags = (opts.readOnly === true ? LOOP.LO_FLAGS_READ_ONLY : 0) | (opts.autoclear === true ? LOOP.LO_FLAGS_AUTOCLEAR : 0) |
    (opts.directIo === true ? LOOP.LO_FLAGS_DIRECT_IO : 0) | (opts.partscan === true ? LOOP.LO_FLAGS_PARTSCAN : 0);
  const keepOpen = opts.keepOpen ?? opts.autoclear === true;
  let legacy = opts.legacy === true;
  let lastBusy: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const n = await native.loopCtlGetFree(opts.controlPath ?? null);
    const node = await loopNode(n, opts.nodeDir);
    for (;;) {
      try {
        const bind = legacy ? native.loopSetFd : native.loopConfigure;
        const bound = await bind(node.path, backing, flags, blockSize, keepOpen);
        const out: LoopDevice = { number: n, path: node.path, dev: bound.dev, method: legacy ? 'LOOP_SET_FD' : 'LOOP_CONFIGURE' };
        if (bound.fd !== null) out.fd = bound.fd;
        return out;
      } catch (err) {
        if (!legacy && (hasCode(err, 'EINVAL') || hasCode(err, 'ENOTTY')) && (err as { syscall?: string }).syscall === 'LOOP_CONFIGURE') {
          legacy = true; // a kernel before 5.8: the same device, the old way
          continue;
        }
        if (hasCode(err, 'EBUSY') && /^LOOP_(CONFIGURE|SET_FD)$/.test((err as { syscall?: string }).syscall ?? '')) {
          lastBusy = err; // bound by someone else since LOOP_CTL_GET_FREE: ask again
          break;
        }
        throw err;
      }
    }
  }
  throw lastBusy;
}

/** A device to act on: an attached LoopDevice (its kept fd when it has one), a node path, or an fd. */
export type LoopTarget = LoopDevice | string | number;

function targetOf(t: LoopTarget): string | number {
  if (typeof t === 'object') return t.fd ?? t.path;
  return t;
}

/**
 * LOOP_CLR_FD: the kernel unbinds at the device's last close. For a LoopDevice with a kept fd
 * that fd is closed here too (even when the ioctl failed), so the unbind can happen.
 * ENXIO when the device is not bound.
 */
export async function detachLoop(t: LoopTarget): Promise<void> {
  try {
    await native.loopClrFd(targetOf(t));
  } finally {
    if (typeof t === 'object' && t.fd !== undefined) {
      const fd = t.fd;
      delete t.fd;
      closeSync(fd);
    }
  }
}

/** LOOP_SET_CAPACITY: the device takes its backing file's current size. */
export async function setCapacity(t: LoopTarget): Promise<void> {
  await native.loopSetCapacity(targetOf(t));
}

/** LOOP_GET_STATUS64 of the device; ENXIO when it is not bound. */
export async function getStatus(t: LoopTarget): Promise<LoopStatus> {
  return native.loopGetStatus64(targetOf(t));
}

/** A bound loop device found by findLoopsFor. */
export interface FoundLoop {
  number: number; path: string; dev: DevNo; status: LoopStatus;
}

/**
 * Every bound loop device whose backing file is `file` (same device and inode, as
 * LOOP_GET_STATUS64 reports them: a renamed file still matches). Bound devices are listed from
 * /sys/block/loopN/loop; nodes as loopNode (nodeDir for a /dev without them).
 */
export async function findLoopsFor(file: string, opts: { nodeDir?: string } = {}): Promise<FoundLoop[]> {
  const st = await fsp.stat(file, { bigint: true });
  const fileDev = splitDev(st.dev);
  const found: FoundLoop[] = [];
  let names: string[];
  try {
    names = await fsp.readdir('/sys/block');
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return found;
    throw err;
  }
  const numbers = names.map((name) => /^loop(\d+)$/.exec(name)).filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1])).sort((a, b) => a - b);
  for (const n of numbers) {
    try {
      await fsp.access(`/sys/block/loop${n}/loop`); // present only while bound
    } catch {
      continue;
    }
    const node = await loopNode(n, opts.nodeDir);
    let status: LoopStatus;
    try {
      status = await native.loopGetStatus64(node.path);
    } catch (err) {
      if (hasCode(err, 'ENXIO')) continue; // unbound meanwhile
      throw err;
    }
    if (sameDev(status.backing.dev, fileDev) && status.backing.inode === st.ino) found.push({ number: n, path: node.path, dev: node.dev, status });
  }
  return found;
}

/** The first bound loop device backed by `file`, or null. */
export async function findLoopFor(file: string, opts: { nodeDir?: string } = {}): Promise<FoundLoop | null> {
  return (await findLoopsFor(file, opts))[0] ?? null;
}
