// check.ts: overlay2's probes of the kernel and the backing filesystem, run at init. The probes
// both overlay drivers share live in overlay-common/check.ts; this file binds them to overlay2's
// name and layout and adds overlay2's own (quota). driver.ts decides what to do with the
// answers. Nothing here mounts by itself.
import { IncompatibleFsError, InvalidOptionError } from '../../errors';
import { FsMagic, fsName } from '../../fsmagic';
import { readMountInfo } from '../../mount/apply';
import * as common from '../overlay-common/check';
import type { Overlay2Layout } from './layout';
import type { OverlayFeatures } from './mounts';

const NAME = 'overlay2';

/** Backing filesystems overlay cannot use as upper/lower (the engine's list). */
export const INCOMPATIBLE_BACKING = common.INCOMPATIBLE_BACKING;

/** NotSupportedError unless `overlay` is in /proc/filesystems (no module loading: nothing is spawned). */
export function checkOverlayFs(): Promise<void> {
  return common.checkOverlayFs(NAME);
}

/** IncompatibleFsError when the backing filesystem (statfs magic) is one overlay cannot sit on. */
export function checkBackingFs(magic: number, home: string): void {
  common.checkBackingFs(NAME, magic, home);
}

/** Makes staging/probe-<rnd>/, runs `fn` in it, then unmounts whatever is below it and removes it. */
export function withProbeDir<T>(layout: Overlay2Layout, fn: (dir: string) => Promise<T>): Promise<T> {
  return common.withProbeDir(layout.stagingDir, fn);
}

/** Whether readdir reports entry types (d_type) on the backing filesystem. */
export const supportsDType = common.supportsDType;

/** IncompatibleFsError with the engine's hint when d_type is missing. */
export function dTypeError(backing: string): IncompatibleFsError {
  return common.dTypeError(NAME, backing);
}

/** Which overlay features this kernel has (each is then turned off in every mount). */
export const overlayFeatures = common.overlayFeatures;

/** Whether diff/ can be read as the layer's diff (reason when not); see overlay-common/check.ts. */
export function nativeDiffProblem(layout: Overlay2Layout, features: OverlayFeatures): Promise<string | undefined> {
  return common.nativeDiffProblem(layout.stagingDir, features);
}

/**
 * overlay2.size needs XFS project quotas. Not implemented in this build (FS_IOC_FSSETXATTR +
 * quotactl Q_XSETQLIM): always refused, with the reason that applies to this backing filesystem.
 */
export async function checkQuota(magic: number, home: string): Promise<void> {
  if (magic !== FsMagic.Xfs) {
    throw new InvalidOptionError(`overlay2: a size (overlay2.size or storageOpt size) needs xfs with project quotas ` +
      `(mount option prjquota); ${home} is on ${fsName(magic)}`);
  }
  const prj = (await readMountInfo()).some((m) => m.fsType === 'xfs' && /(^|,)(prjquota|pquota)(,|$)/.test(m.superOptions) &&
    (home === m.mountPoint || home.startsWith(`${m.mountPoint}/`)));
  throw new InvalidOptionError(prj
    ? 'overlay2: per-layer size limits (XFS project quotas) are not implemented in this build'
    : `overlay2: a size needs project quotas on the xfs holding ${home}; mount it with prjquota`);
}
