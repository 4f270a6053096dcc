// fsmagic.ts: backing-filesystem detection by statfs(2) f_type, with the name table drivers
// and status() use. Values are the kernel's magic numbers (include/uapi/linux/magic.h) as
// unsigned 32-bit numbers.
import { statfs } from './native';

export const FsMagic = Object.freeze({
  Unsupported: 0x00000000,
  Aufs: 0x61756673,
  Btrfs: 0x9123683e,
  Cramfs: 0x28cd3d45,
  Ecryptfs: 0xf15f,
  Erofs: 0xe0f5e1e2,
  Extfs: 0x0000ef53,
  F2fs: 0xf2f52010,
  Fuse: 0x65735546,
  Gpfs: 0x47504653,
  Jffs2: 0x000072b6,
  Jfs: 0x3153464a,
  Nfs: 0x00006969,
  Overlay: 0x794c7630,
  Ramfs: 0x858458f6,
  Reiserfs: 0x52654973,
  Smb: 0x0000517b,
  Smb2: 0xfe534d42,
  Cifs: 0xff534d42,
  Squashfs: 0x73717368,
  Tmpfs: 0x01021994,
  Vxfs: 0xa501fcf5,
  Xfs: 0x58465342,
  Zfs: 0x2fc12fc1,
  Bcachefs: 0xca451a4e,
  Proc: 0x00009fa0,
  Sysfs: 0x62656572,
} as const);

export type FsMagicName = keyof typeof FsMagic;

const names = new Map<number, string>([
  [FsMagic.Unsupported, '<unknown>'],
  [FsMagic.Aufs, 'aufs'],
  [FsMagic.Btrfs, 'btrfs'],
  [FsMagic.Cramfs, 'cramfs'],
  [FsMagic.Ecryptfs, 'ecryptfs'],
  [FsMagic.Erofs, 'erofs'],
  [FsMagic.Extfs, 'extfs'],
  [FsMagic.F2fs, 'f2fs'],
  [FsMagic.Fuse, 'fuse'],
  [FsMagic.Gpfs, 'gpfs'],
  [FsMagic.Jffs2, 'jffs2'],
  [FsMagic.Jfs, 'jfs'],
  [FsMagic.Nfs, 'nfs'],
  [FsMagic.Overlay, 'overlayfs'],
  [FsMagic.Ramfs, 'ramfs'],
  [FsMagic.Reiserfs, 'reiserfs'],
  [FsMagic.Smb, 'smb'],
  [FsMagic.Smb2, 'smb2'],
  [FsMagic.Cifs, 'cifs'],
  [FsMagic.Squashfs, 'squashfs'],
  [FsMagic.Tmpfs, 'tmpfs'],
  [FsMagic.Vxfs, 'vxfs'],
  [FsMagic.Xfs, 'xfs'],
  [FsMagic.Zfs, 'zfs'],
  [FsMagic.Bcachefs, 'bcachefs'],
  [FsMagic.Proc, 'proc'],
  [FsMagic.Sysfs, 'sysfs'],
]);

/** The name of a filesystem magic number, or `<unknown>` with the number in hex. */
export function fsName(magic: number): string {
  const name = names.get(magic >>> 0);
  if (name !== undefined) return name;
  return `<unknown 0x${(magic >>> 0).toString(16)}>`;
}

/** statfs(path).f_type as an unsigned 32-bit number. */
export async function getFsMagic(path: string): Promise<number> {
  if (typeof path !== 'string' || path === '') throw new TypeError('Expected a non-empty string for path');
  const st = await statfs(path);
  return st.f_type >>> 0;
}
