// apply.ts: THE only module that mounts. It turns MountSpec data (spec.ts) into syscalls through
// lib/native.ts, unmounts, and recognises existing mounts. Drivers never call mount(2),
// fsopen(2) & co. themselves.
//
// Overlay: with the new mount API and a kernel that takes `lowerdir+` (Linux 6.8+), one
// `fsconfig(lowerdir+)` per layer (up to the kernel's 500), then FSCONFIG_CMD_CREATE, fsmount,
// move_mount; each value is at most 255 bytes (fsconfig's string limit). Elsewhere (and for a
// spec with a longer value, e.g. upperdir= under a 255-byte layer id) mount(2) with one
// `lowerdir=a:b:c` string, which must fit in a page (4096 bytes with its NUL); when the
// absolute paths do not fit, the paths are made relative to the first lower's directory (the
// driver's short `l/` links) and mounted from a native thread that did unshare(CLONE_FS) +
// chdir there (native mountFrom) — the engine's fallback, without ever changing the process's
// cwd. A chain that does not fit even then is refused with MountLimitError. Kernels 5.2-6.4
// open overlay's fs_context in legacy mode, which takes any key, so the probe checks that.
// When the kernel refuses an fs_context, its own messages (read from the fsopen fd) are added
// to the error's message. aufs: applyMountSequence makes a mount(2) and then MS_REMOUNTs of it
// (branches appended past one page of data), detaching the mount if one of them fails.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { MountLimitError, hasCode } from '../errors';
import { FsMagic } from '../fsmagic';
import * as native from '../native';
import { MOUNT_API, MS } from '../native';
import type { DevNo } from '../native';
import { sameDev, splitDev } from '../devmapper/devno';
import { type MountSpec, mountData, splitOption, unquote } from './spec';

/** Most lower layers one overlay mount takes (the kernel's OVL_MAX_STACK). */
export const OVERLAY_MAX_LOWERS = 500;
/** Longest mount(2) data string: one page including its NUL. */
export const MOUNT_DATA_MAX = 4095;
/** Longest fsconfig(2) string value (the kernel copies at most 256 bytes including the NUL). */
export const FSCONFIG_VALUE_MAX = 255;

/** How overlay mounts are made on this kernel. */
export type OverlayMethod = 'lowerdir+' | 'mount-data';

let methodProbe: Promise<OverlayMethod> | undefined;

/** A key no filesystem's parser knows; only the legacy fs_context (mount(2) data) accepts it. */
const LEGACY_PROBE_KEY = 'graphdriver-probe-no-such-option';

/**
 * Whether the kernel takes fsopen("overlay") + fsconfig("lowerdir+"), probed once per process
 * on `probeDir` (an existing directory the caller owns) and cached.
 *
 * fsopen("overlay") succeeds on every kernel with the new mount API (5.2+), but before 6.5
 * overlay has no fs_context parser of its own: the kernel's legacy context takes ANY key
 * (lowerdir+ included) into a mount(2) data string and fails only at FSCONFIG_CMD_CREATE. So an
 * accepted lowerdir+ counts only if the context then refuses a key no filesystem has.
 */
export function overlayMethod(probeDir: string): Promise<OverlayMethod> {
  methodProbe ??= probeLowerdirPlus(probeDir).catch((err: unknown) => {
    methodProbe = undefined;
    throw err;
  });
  return methodProbe;
}

async function probeLowerdirPlus(probeDir: string): Promise<OverlayMethod> {
  let fd: number;
  try {
    fd = await native.fsopen('overlay', MOUNT_API.FSOPEN_CLOEXEC);
  } catch (err) {
    if (hasCode(err, 'ENOSYS') || hasCode(err, 'ENODEV') || hasCode(err, 'EPERM')) return 'mount-data';
    throw err;
  }
  try {
    try {
      await native.fsconfigSetString(fd, 'lowerdir+', probeDir);
    } catch (err) {
      if (hasCode(err, 'EINVAL')) return 'mount-data'; // overlay's own parser, without lowerdir+ (6.5-6.7)
      throw err;
    }
    try {
      await native.fsconfigSetFlag(fd, LEGACY_PROBE_KEY);
    } catch (err) {
      if (hasCode(err, 'EINVAL')) return 'lowerdir+'; // a real parser: it knew lowerdir+
      throw err;
    }
    return 'mount-data'; // the legacy context: lowerdir+ would fail at create
  } finally {
    native.closeSync(fd);
  }
}

/** The new mount API's attributes for mount(2) flags; other flags are refused. */
function mountAttrs(flags: number): number {
  const table: Array<[number, number]> = [
    [MS.MS_RDONLY, MOUNT_API.MOUNT_ATTR_RDONLY], [MS.MS_NOSUID, MOUNT_API.MOUNT_ATTR_NOSUID],
    [MS.MS_NODEV, MOUNT_API.MOUNT_ATTR_NODEV], [MS.MS_NOEXEC, MOUNT_API.MOUNT_ATTR_NOEXEC],
    [MS.MS_NOATIME, MOUNT_API.MOUNT_ATTR_NOATIME], [MS.MS_NODIRATIME, MOUNT_API.MOUNT_ATTR_NODIRATIME],
  ];
  let attrs = 0;
  let rest = flags;
  for (const [ms, attr] of table) {
    if ((flags & ms) !== 0) {
      attrs |= attr;
      rest &= ~ms;
    }
  }
  if (rest !== 0) throw new RangeError(`mount flags 0x${rest.toString(16)} have no fsmount attribute`);
  return attrs;
}

/** Whether every value of `spec` (each lower, each option's) fits in one fsconfig string. */
function fitsFsconfig(spec: MountSpec): boolean {
  const values = [...(spec.lowerdirs ?? []), ...spec.options.map((o) => unquote(splitOption(o)[1] ?? ''))];
  return values.every((v) => Buffer.byteLength(v) <= FSCONFIG_VALUE_MAX);
}

/**
 * Throws MountLimitError when `spec` cannot be mounted by `method`: more lowers than the
 * kernel stacks, or a mount(2) data string over a page even with relative paths. With
 * 'lowerdir+', a spec holding a value over fsconfig's 255 bytes (an upperdir= under a long
 * layer id) is mounted through mount(2) data instead, so that form's limit applies to it.
 */
export function checkOverlayLimits(spec: MountSpec, method: OverlayMethod): void {
  const lowers = spec.lowerdirs ?? [];
  if (lowers.length > OVERLAY_MAX_LOWERS) {
    throw new MountLimitError(`overlay: ${lowers.length} lower layers, the kernel stacks at most ${OVERLAY_MAX_LOWERS}`);
  }
  if (method === 'lowerdir+' && fitsFsconfig(spec)) return;
  if (Buffer.byteLength(mountData(spec)) <= MOUNT_DATA_MAX) return;
  const relative = relativeForm(spec);
  const bytes = relative === undefined ? Buffer.byteLength(mountData(spec)) : Buffer.byteLength(relative.data);
  if (bytes > MOUNT_DATA_MAX) {
    const why = method === 'lowerdir+'
      ? `a value is longer than fsconfig's ${FSCONFIG_VALUE_MAX} bytes, so it needs mount(2)`
      : 'this kernel has no fsconfig lowerdir+';
    throw new MountLimitError(`overlay: the mount data for ${lowers.length} lower layers is ${bytes} bytes even with relative paths, ` +
      `over the page-size limit of ${MOUNT_DATA_MAX} (${why}; a shorter home path fits more layers)`);
  }
}

const PATH_OPTIONS = ['upperdir', 'workdir', 'lowerdir'];

/**
 * The overlay mount data with every path relative to the first lower's directory, and that
 * directory; undefined when there are no lowers.
 */
export function relativeForm(spec: MountSpec): { dir: string; data: string } | undefined {
  const lowers = spec.lowerdirs ?? [];
  if (lowers.length === 0) return undefined;
  const dir = path.dirname(lowers[0]!);
  const rel = (p: string): string => (path.isAbsolute(p) ? path.relative(dir, p) || '.' : p);
  const options = spec.options.map((o) => {
    const [key, value] = splitOption(o);
    return value !== undefined && PATH_OPTIONS.includes(key) ? `${key}=${rel(unquote(value))}` : o;
  });
  return { dir, data: mountData({ ...spec, lowerdirs: lowers.map(rel), options }) };
}

/**
 * fsopen + fsconfig (lowerdir+ per layer, then each option) + CMD_CREATE + fsmount + move_mount,
 * as one native call (one pool round trip; the kernel's fs_context messages come back in the
 * error's message).
 */
async function mountNewApi(spec: MountSpec): Promise<void> {
  const attrs = mountAttrs(spec.flags);
  const options: Array<[string, string | null]> = spec.options.map((o) => {
    const [key, value] = splitOption(o);
    return [key, value === undefined ? null : unquote(value)];
  });
  if ((spec.flags & MS.MS_RDONLY) !== 0) options.push(['ro', null]);
  await native.fsMountSequence(spec.type, spec.source, spec.target, [...(spec.lowerdirs ?? [])], options, attrs);
}

/**
 * Mounts `spec`. Overlay specs use the method the kernel allows (probed once on `probeDir`;
 * `method` overrides the probe, for tests of the fallback) and are checked against its limits
 * first — mount(2) data also where lowerdir+ exists but a value is too long for fsconfig;
 * other specs go through mount(2).
 */
export async function applyMount(spec: MountSpec, probeDir: string, method?: OverlayMethod): Promise<void> {
  if (spec.type === 'overlay') {
    const how = method ?? await overlayMethod(probeDir);
    checkOverlayLimits(spec, how);
    if (how === 'lowerdir+' && fitsFsconfig(spec)) return mountNewApi(spec);
    const data = mountData(spec);
    const relative = Buffer.byteLength(data) > MOUNT_DATA_MAX ? relativeForm(spec) : undefined;
    if (relative !== undefined) return native.mountFrom(relative.dir, spec.source, spec.target, spec.type, spec.flags, relative.data);
  }
  await native.mount(spec.source, spec.target, spec.type, spec.flags, mountData(spec) || null);
}

/**
 * Applies mount(2) calls on one target in order: the first mounts (no MS_REMOUNT), each later
 * one is an MS_REMOUNT of that mount (aufs adds the branches that did not fit in one page of
 * mount data this way, one `append:` per call). Every data string must fit in a page
 * (MountLimitError otherwise, before any call). If a remount fails, the mount is detached
 * before the error is rethrown, so a half-built union never stays mounted.
 */
export async function applyMountSequence(specs: readonly MountSpec[]): Promise<void> {
  const [first, ...rest] = specs;
  if (first === undefined) return;
  if ((first.flags & MS.MS_REMOUNT) !== 0) throw new RangeError('the first mount of a sequence must not be MS_REMOUNT');
  for (const spec of rest) {
    if (spec.target !== first.target || (spec.flags & MS.MS_REMOUNT) === 0) {
      throw new RangeError(`every later mount of a sequence must be an MS_REMOUNT of ${first.target}`);
    }
  }
  for (const spec of specs) {
    const bytes = Buffer.byteLength(mountData(spec));
    if (bytes > MOUNT_DATA_MAX) throw new MountLimitError(`${spec.type}: mount data of ${bytes} bytes is over the page-size limit of ${MOUNT_DATA_MAX}`);
  }
  await native.mount(first.source, first.target, first.type, first.flags, mountData(first) || null);
  try {
    for (const spec of rest) await native.mount(spec.source, spec.target, spec.type, spec.flags, mountData(spec) || null);
  } catch (err) {
    await unmount(first.target).catch(() => false);
    throw err;
  }
}

/**
 * Mounts an overlay `spec` unless one is already mounted at its target — a mount left by an
 * earlier process (or driver instance) is taken over, not stacked — making the mount point
 * first. What both overlay drivers do on a layer's first get.
 */
export async function mountOverlayOnce(spec: MountSpec, probeDir: string): Promise<void> {
  if (await isMountedAs(spec.target, FsMagic.Overlay)) return;
  await fsp.mkdir(spec.target, { recursive: true, mode: 0o700 });
  await applyMount(spec, probeDir);
}

/**
 * umount2(target, detach ? MNT_DETACH : 0). Resolves false when nothing was mounted there
 * (EINVAL), true when something was unmounted.
 */
export async function unmount(target: string, detach = true): Promise<boolean> {
  try {
    await native.umount2(target, detach ? MS.MNT_DETACH : 0);
    return true;
  } catch (err) {
    if (hasCode(err, 'EINVAL') || hasCode(err, 'ENOENT')) return false;
    throw err;
  }
}

/**
 * Whether a filesystem of type `magic` is mounted at `target`: statfs(target) says `magic`
 * and statfs of its parent does not (two syscalls; right whenever the parent is not itself of
 * that type, which the overlay drivers check at init). False when target does not exist.
 */
export async function isMountedAs(target: string, magic: number): Promise<boolean> {
  try {
    const [here, above] = await Promise.all([native.statfs(target), native.statfs(path.dirname(target))]);
    return (here.f_type >>> 0) === magic && (above.f_type >>> 0) !== magic;
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** Whether `target` is the root of a mount of block device `dev` (its st_dev is the device's). */
export async function isMountOf(target: string, dev: DevNo): Promise<boolean> {
  try {
    return sameDev(splitDev((await fsp.lstat(target)).dev), dev);
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** Decodes mountinfo's octal escapes (\040 for a space). */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** One line of /proc/self/mountinfo, the fields used here. */
export interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
  superOptions: string;
}

/** Parses /proc/self/mountinfo text (man 5 proc_pid_mountinfo). */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (fields.length < 5 || sep < 0 || fields.length < sep + 4) continue;
    out.push({
      mountPoint: unescapeMountPath(fields[4]!), fsType: fields[sep + 1]!,
      source: unescapeMountPath(fields[sep + 2]!), superOptions: fields[sep + 3]!,
    });
  }
  return out;
}

/** The mounts listed in /proc/self/mountinfo. */
export async function readMountInfo(): Promise<MountInfo[]> {
  return parseMountInfo(await fsp.readFile('/proc/self/mountinfo', 'utf8'));
}

/** The mountinfo entries whose mount point is exactly `target` (stacked mounts repeat), by mountinfo. */
export async function mountsAt(target: string): Promise<MountInfo[]> {
  return (await readMountInfo()).filter((m) => m.mountPoint === target);
}
