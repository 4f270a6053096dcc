// spec.ts: a mount described as data. Drivers build MountSpec values with pure functions and
// hand them to mount/apply.ts, the only module that turns them into syscalls. Nothing here
// touches the kernel or the filesystem.

/** One mount: what mount(2) or fsopen/fsconfig/fsmount/move_mount would be given. */
export interface MountSpec {
  /** Filesystem type, e.g. 'overlay'. */
  readonly type: string;
  /** The source shown in mountinfo, e.g. 'overlay'. */
  readonly source: string;
  /** Absolute path of the mount point. */
  readonly target: string;
  /** `key=value` or bare `flag` options, in order (e.g. 'upperdir=/x', 'redirect_dir=off', 'context="..."'). */
  readonly options: readonly string[];
  /** MS_* flags of mount(2) (MS_RDONLY is applied as MOUNT_ATTR_RDONLY with the new API). */
  readonly flags: number;
  /**
   * Overlay only: the lower directories, nearest (topmost) first. Kept apart from `options` so
   * apply.ts can pass one `lowerdir+` per layer (new mount API) or join them into one
   * `lowerdir=` string (mount(2)), whichever the kernel allows.
   */
  readonly lowerdirs?: readonly string[];
}

/** The SELinux context option for a mount label, quoted as mount(2) data carries it. */
export function contextOption(mountLabel: string): string {
  return `context="${mountLabel}"`;
}

/** Splits `key=value` into [key, value]; a bare flag gives [flag, undefined]. */
export function splitOption(option: string): [string, string | undefined] {
  const eq = option.indexOf('=');
  return eq < 0 ? [option, undefined] : [option.slice(0, eq), option.slice(eq + 1)];
}

/** A value without the double quotes mount(2) data needs around values holding commas. */
export function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}

/** The data string of mount(2) for `spec`: `lowerdir=a:b:c` (when any) then the options, comma-joined. */
export function mountData(spec: MountSpec): string {
  const parts: string[] = [];
  if (spec.lowerdirs !== undefined && spec.lowerdirs.length > 0) parts.push(`lowerdir=${spec.lowerdirs.join(':')}`);
  parts.push(...spec.options);
  return parts.join(',');
}
