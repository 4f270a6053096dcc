// check.ts: overlay2's probes of the kernel and the backing filesystem, run at init. Each is a
// separate function; driver.ts decides what to do with the answers. Probes that need scratch
// space work in a fresh directory under home/staging/ and remove it (unmounting first) even on
// failure. Mounting goes through mount/apply.ts; nothing here mounts by itself.
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { IncompatibleFsError, InvalidOptionError, NotSupportedError, hasCode } from '../../errors';
import { FsMagic, fsName } from '../../fsmagic';
import { applyMount, readMountInfo, unmount } from '../../mount/apply';
import * as native from '../../native';
import { MERGED_DIR, PROBE_PREFIX, type Overlay2Layout } from './layout';
import { type OverlayFeatures, featureOptions } from './mounts';

const OVERLAY_PARAMETERS = '/sys/module/overlay/parameters';

/** Backing filesystems overlay cannot use as upper/lower (the engine's list). */
export const INCOMPATIBLE_BACKING: ReadonlyMap<number, string> = new Map([
  [FsMagic.Aufs, 'aufs'], [FsMagic.Ecryptfs, 'ecryptfs'], [FsMagic.Nfs, 'nfs'], [FsMagic.Overlay, 'overlayfs'],
  [FsMagic.Zfs, 'zfs'],
]);

/** NotSupportedError unless `overlay` is in /proc/filesystems (no module loading: nothing is spawned). */
export async function checkOverlayFs(): Promise<void> {
  const text = await fsp.readFile('/proc/filesystems', 'utf8');
  const has = text.split('\n').some((line) => line.split('\t').pop()?.trim() === 'overlay');
  if (!has) throw new NotSupportedError("overlay2: 'overlay' is not in /proc/filesystems (module not loaded?)");
}

/** IncompatibleFsError when the backing filesystem (statfs magic) is one overlay cannot sit on. */
export function checkBackingFs(magic: number, home: string): void {
  const name = INCOMPATIBLE_BACKING.get(magic);
  if (name !== undefined) {
    throw new IncompatibleFsError(`overlay2: the backing filesystem of ${home} is ${name}, which overlay cannot use`);
  }
}

/** Makes staging/probe-<rnd>/, runs `fn` in it, then unmounts whatever is below it and removes it. */
export async function withProbeDir<T>(layout: Overlay2Layout, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = layout.staging(PROBE_PREFIX + randomBytes(8).toString('hex'));
  await fsp.mkdir(dir, { mode: 0o700 });
  try {
    return await fn(dir);
  } finally {
    await unmount(path.join(dir, MERGED_DIR)).catch(() => false);
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/**
 * Whether readdir reports entry types (d_type) on the backing filesystem: Node's dirent is
 * neither a file nor a directory when getdents gave DT_UNKNOWN. Overlay needs d_type.
 */
export async function supportsDType(dir: string): Promise<boolean> {
  await fsp.writeFile(path.join(dir, 'f'), '');
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  const f = entries.find((e) => e.name === 'f');
  return f !== undefined && f.isFile();
}

/** IncompatibleFsError with the engine's hint when d_type is missing. */
export function dTypeError(backing: string): IncompatibleFsError {
  return new IncompatibleFsError(`overlay2: the backing filesystem (${backing}) does not support d_type; ` +
    (backing === 'xfs' ? 'reformat it with `mkfs.xfs -n ftype=1`' : 'use a filesystem that reports d_type') +
    ' (overlay would otherwise mishandle whiteouts)');
}

/** Which overlay features this kernel has (each is then turned off in every mount). */
export function overlayFeatures(): OverlayFeatures {
  const has = (p: string): boolean => existsSync(path.join(OVERLAY_PARAMETERS, p));
  return { index: has('index'), redirectDir: has('redirect_dir'), metacopy: has('metacopy') };
}

/**
 * Whether diff/ can be read as the layer's diff: mounts a probe overlay with the options every
 * layer gets, renames a lower directory and chowns a lower file through it, and looks for the
 * redirect and metacopy xattrs in the upper dir (the engine's doesSupportNativeDiff). Returns
 * the reason when it cannot, undefined when it can.
 */
export async function nativeDiffProblem(layout: Overlay2Layout, features: OverlayFeatures): Promise<string | undefined> {
  return withProbeDir(layout, async (dir) => {
    const [lower, upper, work, merged] = ['lower', 'upper', 'work', MERGED_DIR].map((n) => path.join(dir, n)) as [string, string, string, string];
    for (const d of [lower, upper, work, merged]) await fsp.mkdir(d);
    await fsp.mkdir(path.join(lower, 'd'));
    await fsp.writeFile(path.join(lower, 'd', 'f'), 'x');
    await fsp.writeFile(path.join(lower, 'file'), 'y');
    await applyMount({
      type: 'overlay', source: 'overlay', target: merged, flags: 0, lowerdirs: [lower],
      options: [`upperdir=${upper}`, `workdir=${work}`, ...featureOptions(features)],
    }, lower);
    try {
      try {
        await fsp.rename(path.join(merged, 'd'), path.join(merged, 'd2'));
      } catch (err) {
        if (!hasCode(err, 'EXDEV')) throw err; // EXDEV: redirect_dir is off, as wanted
      }
      await fsp.chown(path.join(merged, 'file'), 1, 1);
    } finally {
      await unmount(merged, false);
    }
    if (await hasXattr(path.join(upper, 'd2'), 'trusted.overlay.redirect')) return 'the kernel redirects renamed directories (redirect_dir)';
    if (await hasXattr(path.join(upper, 'file'), 'trusted.overlay.metacopy')) return 'the kernel copies up metadata only (metacopy)';
    return undefined;
  });
}

async function hasXattr(p: string, name: string): Promise<boolean> {
  try {
    await native.lgetxattr(p, name);
    return true;
  } catch (err) {
    if (hasCode(err, 'ENODATA') || hasCode(err, 'ENOENT')) return false;
    throw err;
  }
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
