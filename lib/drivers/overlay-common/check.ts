// check.ts: the kernel and backing-filesystem probes both overlay drivers (overlay, overlay2)
// run at init, moved here from overlay2/check.ts so neither driver reaches into the other.
// Each probe is a separate function taking the driver's name (for messages) and, where it needs
// scratch space, the driver's staging directory: it works in a fresh probe-<rnd>/ there and
// removes it (unmounting first) even on failure. Mounting goes through mount/apply.ts; the
// drivers decide what to do with the answers.
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { IncompatibleFsError, NotSupportedError, hasCode } from '../../errors';
import { FsMagic } from '../../fsmagic';
import { applyMount, unmount } from '../../mount/apply';
import * as native from '../../native';

const OVERLAY_PARAMETERS = '/sys/module/overlay/parameters';
/** Prefix of a probe's scratch directory in a driver's staging dir. */
export const PROBE_PREFIX = 'probe-';
/** The probe's mount point inside its scratch directory. */
const PROBE_MERGED = 'merged';

/** Backing filesystems overlay cannot use as upper/lower (the engine's list). */
export const INCOMPATIBLE_BACKING: ReadonlyMap<number, string> = new Map([
  [FsMagic.Aufs, 'aufs'], [FsMagic.Ecryptfs, 'ecryptfs'], [FsMagic.Nfs, 'nfs'], [FsMagic.Overlay, 'overlayfs'],
  [FsMagic.Zfs, 'zfs'],
]);

/** Overlay features the kernel has, each turned off explicitly in every mount when it exists. */
export interface OverlayFeatures {
  /** `index=off`: no inode index (layers are moved and removed freely). */
  index: boolean;
  /** `redirect_dir=off`: a renamed lower directory is copied, never redirected, so the upper dir holds a plain diff. */
  redirectDir: boolean;
  /** `metacopy=off`: copy-up copies data, so an upper file is always whole. */
  metacopy: boolean;
}

/** NotSupportedError unless `overlay` is in /proc/filesystems (no module loading: nothing is spawned). */
export async function checkOverlayFs(driver: string): Promise<void> {
  const text = await fsp.readFile('/proc/filesystems', 'utf8');
  const has = text.split('\n').some((line) => line.split('\t').pop()?.trim() === 'overlay');
  if (!has) throw new NotSupportedError(`${driver}: 'overlay' is not in /proc/filesystems (module not loaded?)`);
}

/** IncompatibleFsError when the backing filesystem (statfs magic) is one overlay cannot sit on. */
export function checkBackingFs(driver: string, magic: number, home: string): void {
  const name = INCOMPATIBLE_BACKING.get(magic);
  if (name !== undefined) {
    throw new IncompatibleFsError(`${driver}: the backing filesystem of ${home} is ${name}, which overlay cannot use`);
  }
}

/** Makes stagingDir/probe-<rnd>/, runs `fn` in it, then unmounts whatever is below it and removes it. */
export async function withProbeDir<T>(stagingDir: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = path.join(stagingDir, PROBE_PREFIX + randomBytes(8).toString('hex'));
  await fsp.mkdir(dir, { mode: 0o700 });
  try {
    return await fn(dir);
  } finally {
    await unmount(path.join(dir, PROBE_MERGED)).catch(() => false);
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
export function dTypeError(driver: string, backing: string): IncompatibleFsError {
  return new IncompatibleFsError(`${driver}: the backing filesystem (${backing}) does not support d_type; ` +
    (backing === 'xfs' ? 'reformat it with `mkfs.xfs -n ftype=1`' : 'use a filesystem that reports d_type') +
    ' (overlay would otherwise mishandle whiteouts)');
}

/** Which overlay features this kernel has (each is then turned off in every mount). */
export function overlayFeatures(): OverlayFeatures {
  const has = (p: string): boolean => existsSync(path.join(OVERLAY_PARAMETERS, p));
  return { index: has('index'), redirectDir: has('redirect_dir'), metacopy: has('metacopy') };
}

/** The options that turn the kernel's features off, in a fixed order. */
export function featureOptions(features: OverlayFeatures): string[] {
  const out: string[] = [];
  if (features.index) out.push('index=off');
  if (features.redirectDir) out.push('redirect_dir=off');
  if (features.metacopy) out.push('metacopy=off');
  return out;
}

/**
 * Whether an upper dir can be read as the layer's diff: mounts a probe overlay with the options
 * every layer gets, renames a lower directory and chowns a lower file through it, and looks for
 * the redirect and metacopy xattrs in the upper dir (the engine's doesSupportNativeDiff).
 * Returns the reason when it cannot, undefined when it can.
 */
export async function nativeDiffProblem(stagingDir: string, features: OverlayFeatures): Promise<string | undefined> {
  return withProbeDir(stagingDir, async (dir) => {
    const [lower, upper, work, merged] = ['lower', 'upper', 'work', PROBE_MERGED].map((n) => path.join(dir, n)) as [string, string, string, string];
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
