// check.ts: overlay2's probes of the kernel and the backing filesystem, run at init. The probes
// both overlay drivers share live in overlay-common/check.ts; this file binds them to overlay2's
// name and layout; overlay2's own quota probe is in quota.ts. driver.ts decides what to do with the
// answers. Nothing here mounts by itself.
import { IncompatibleFsError } from '../../errors';
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
