// check.ts: aufs's probes of the kernel and the backing filesystem, run at init. driver.ts
// decides what to do with the answers. The one probe that mounts (dirperm1) builds its mount as
// data (mounts.ts) and makes it through the driver's mounter, i.e. mount/apply.ts.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { IncompatibleFsError, NotSupportedError, hasCode } from '../../errors';
import { FsMagic, fsName, getFsMagic } from '../../fsmagic';
import type { MountSpec } from '../../mount/spec';
import { PROBE_PREFIX } from './layout';
import { dirperm1ProbeMount } from './mounts';

/** What the driver needs of mounting; the kernel's is in driver.ts, a test's records calls. */
export interface AufsMounter {
  /** Makes the calls in order (mount, then MS_REMOUNTs), leaving nothing mounted if one fails. */
  mount(specs: readonly MountSpec[]): Promise<void>;
  /** Unmounts `target`; false when nothing was mounted there. */
  unmount(target: string): Promise<boolean>;
  /** Whether an aufs is mounted at `target`. */
  isMounted(target: string): Promise<boolean>;
}

/** Backing filesystems aufs cannot sit on (the engine's list). */
export const INCOMPATIBLE_BACKING: ReadonlyMap<number, string> = new Map([
  [FsMagic.Aufs, 'aufs'], [FsMagic.Btrfs, 'btrfs'], [FsMagic.Ecryptfs, 'ecryptfs'],
]);

/** Whether /proc/filesystems text lists `aufs` (second tab-separated column, or the whole line). */
export function listsAufs(procFilesystems: string): boolean {
  return procFilesystems.split('\n').some((line) => line.split('\t').pop()?.trim() === 'aufs');
}

/** NotSupportedError unless `aufs` is in /proc/filesystems (no modprobe: nothing is spawned). */
export async function checkAufsFs(): Promise<void> {
  if (!listsAufs(await fsp.readFile('/proc/filesystems', 'utf8'))) {
    throw new NotSupportedError("aufs: 'aufs' is not in /proc/filesystems (the kernel has no aufs module loaded; it was never in mainline Linux)");
  }
}

/** statfs magic of `home`, or of its nearest existing ancestor while it does not exist yet (the engine looks at its parent). */
export async function backingMagic(home: string): Promise<number> {
  for (let dir = home; ; dir = path.dirname(dir)) {
    try {
      return await getFsMagic(dir);
    } catch (err) {
      if (!hasCode(err, 'ENOENT') || dir === path.dirname(dir)) throw err;
    }
  }
}

/** IncompatibleFsError when `magic` is a filesystem aufs cannot use as a branch. */
export function checkBackingFs(magic: number, home: string): void {
  const name = INCOMPATIBLE_BACKING.get(magic);
  if (name !== undefined) throw new IncompatibleFsError(`aufs: the backing filesystem of ${home} is ${name}, which aufs cannot use (found ${fsName(magic)})`);
}

/**
 * Whether aufs takes the `dirperm1` option: mounts a one-branch aufs with it in
 * staging/probe-<rnd>/ (the engine's useDirperm). The probe dir is unmounted and removed after.
 */
export async function probeDirperm1(stagingDir: string, mounter: AufsMounter): Promise<boolean> {
  const dir = path.join(stagingDir, PROBE_PREFIX + randomBytes(8).toString('hex'));
  const branch = path.join(dir, 'base');
  const union = path.join(dir, 'union');
  await fsp.mkdir(dir, { mode: 0o700 });
  try {
    await fsp.mkdir(branch);
    await fsp.mkdir(union);
    try {
      await mounter.mount([dirperm1ProbeMount(branch, union)]);
    } catch {
      return false;
    }
    await mounter.unmount(union);
    return true;
  } finally {
    await mounter.unmount(union).catch(() => false);
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
