// layout.ts: btrfs's on-disk layout, documented once; every on-disk name is a constant here.
// Pure path arithmetic: no filesystem access here.
//
//   home/                      <root>/btrfs, mode 0700, on a btrfs (checked by statfs at init)
//     subvolumes/              SUBVOLUMES_DIR, 0700: only complete layers live here
//       <id>/                  one layer: a subvolume (no parent) or a writable snapshot of its
//                              parent's subvolume; what get() returns, nothing is mounted
//     staging/                 STAGING_DIR, 0700: work in progress, never a layer
//       create-<random>/       a new subvolume, or a snapshot with a size limit, being made;
//                              renamed to subvolumes/<id> when complete
//       remove-<random>/       a layer renamed out of subvolumes/ and being deleted
//     quotas/                  QUOTAS_DIR, 0700
//       <id>                   the layer's size limit in bytes, decimal (the engine's format);
//                              set as its qgroup's max_rfer at create and again at get
//       .tmp-<random>          one being written (util/atomic-file.ts); renamed to <id>
//     incomplete/              INCOMPLETE_DIR, 0700
//       <id>                   empty file: a diff is being applied to subvolumes/<id> (or one
//                              failed); the layer is incomplete until removed
//     qgroups-pending/         PENDING_QGROUPS_DIR, 0700
//       <qgroupid>             empty file: a removed layer's qgroup the kernel would not destroy
//                              yet (EBUSY while the cleaner drops the subvolume); retried at
//                              init and cleanup
//
// Why: a name in subvolumes/ is always a complete layer. A plain snapshot is made there
// directly, because the kernel creates a snapshot in one transaction (after a crash it is whole
// or absent); a layer that needs more steps (chown, qgroup limit) is made under a staging name
// and published by one rename(2) (subvolumes rename like directories), so a crash leaves only
// staging/ garbage, removed at init. Staging names never embed the id, so a
// 255-byte id cannot overflow NAME_MAX. Quotas are files, not only qgroup state, because a
// qgroup limit is lost if quotas are ever disabled and re-enabled; get re-applies it.
import * as path from 'node:path';

export const SUBVOLUMES_DIR = 'subvolumes';
export const STAGING_DIR = 'staging';
export const QUOTAS_DIR = 'quotas';
export const INCOMPLETE_DIR = 'incomplete';
export const PENDING_QGROUPS_DIR = 'qgroups-pending';
/** Prefix of a staging entry holding a layer being created. */
export const CREATE_PREFIX = 'create-';
/** Prefix of a staging entry holding a layer being removed. */
export const REMOVE_PREFIX = 'remove-';

/** Mode of home and every directory the driver makes in it. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of the root directory of a layer made without a parent. */
export const EMPTY_LAYER_MODE = 0o755;
/** The inode number of every subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID). */
export const SUBVOLUME_ROOT_INO = 256n;

/** Absolute paths of one btrfs home. */
export class BtrfsLayout {
  readonly home: string;
  readonly subvolumesDir: string;
  readonly stagingDir: string;
  readonly quotasDir: string;
  readonly incompleteDir: string;
  readonly pendingQgroupsDir: string;

  constructor(home: string) {
    this.home = path.resolve(home);
    this.subvolumesDir = path.join(this.home, SUBVOLUMES_DIR);
    this.stagingDir = path.join(this.home, STAGING_DIR);
    this.quotasDir = path.join(this.home, QUOTAS_DIR);
    this.incompleteDir = path.join(this.home, INCOMPLETE_DIR);
    this.pendingQgroupsDir = path.join(this.home, PENDING_QGROUPS_DIR);
  }

  /** home/subvolumes/<id>: the layer's subvolume, and what get() returns. `id` must be validated. */
  layer(id: string): string {
    return path.join(this.subvolumesDir, id);
  }

  /** home/staging/<name>. */
  staging(name: string): string {
    return path.join(this.stagingDir, name);
  }

  /** home/quotas/<id>. */
  quota(id: string): string {
    return path.join(this.quotasDir, id);
  }
}
