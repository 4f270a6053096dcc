// quota.ts: btrfs quota (qgroup) policy over the native ioctls: whether quota is on, turning it
// on (simple quotas where the kernel has them, else full qgroups plus a rescan wait), a layer's
// qgroup id, its max_rfer limit, and destroying it. Every function takes an open fd anywhere on
// the filesystem. Quota is never turned off here: the engine once disabled it on cleanup and
// users lost limits they had set outside it.
import { hasCode } from '../../errors';
import * as native from '../../native';
import { BTRFS } from '../../native';

export type QuotaMode = 'off' | 'simple' | 'full';

export interface QuotaStatus {
  mode: QuotaMode;
  /** The kernel says some qgroup numbers are out of date (full mode, until a rescan). */
  inconsistent: boolean;
}

/**
 * Reads the quota status item (0, BTRFS_QGROUP_STATUS_KEY, 0) of the quota tree with
 * BTRFS_IOC_TREE_SEARCH. No quota tree (ENOENT) means quota is off.
 */
export async function quotaStatus(fd: number): Promise<QuotaStatus> {
  let items: native.BtrfsSearchItem[];
  try {
    items = await native.btrfsTreeSearch(fd, {
      treeId: BigInt(BTRFS.BTRFS_QUOTA_TREE_OBJECTID), minObjectid: 0n, maxObjectid: 0n,
      minType: BTRFS.BTRFS_QGROUP_STATUS_KEY, maxType: BTRFS.BTRFS_QGROUP_STATUS_KEY, minOffset: 0n, maxOffset: 0n, maxItems: 1,
    });
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return { mode: 'off', inconsistent: false };
    throw err;
  }
  const item = items.find((i) => i.type === BTRFS.BTRFS_QGROUP_STATUS_KEY);
  // struct btrfs_qgroup_status_item { le64 version, generation, flags, rescan }.
  if (item === undefined || item.data.length < 24) return { mode: 'off', inconsistent: false };
  const flags = item.data.readBigUInt64LE(16);
  if ((flags & BigInt(BTRFS.BTRFS_QGROUP_STATUS_FLAG_ON)) === 0n) return { mode: 'off', inconsistent: false };
  return {
    mode: (flags & BigInt(BTRFS.BTRFS_QGROUP_STATUS_FLAG_SIMPLE_MODE)) !== 0n ? 'simple' : 'full',
    inconsistent: (flags & BigInt(BTRFS.BTRFS_QGROUP_STATUS_FLAG_INCONSISTENT)) !== 0n,
  };
}

/**
 * Turns quota on unless it is on already; resolves to the mode in force. Simple quotas are
 * preferred: no rescan, and a snapshot's limit counts only what the layer itself writes, not the
 * data it shares with its parent. Kernels before 6.7 reject that command (EINVAL), so full
 * qgroups are used there, after waiting for the rescan that makes their numbers right.
 */
export async function enableQuota(fd: number): Promise<QuotaMode> {
  const current = await quotaStatus(fd);
  if (current.mode !== 'off') return current.mode;
  try {
    await native.btrfsQuotaEnableSimple(fd);
    return 'simple';
  } catch (err) {
    if (!hasCode(err, 'EINVAL') && !hasCode(err, 'EOPNOTSUPP') && !hasCode(err, 'ENOTSUP')) throw err;
  }
  await native.btrfsQuotaEnable(fd);
  await native.btrfsQuotaRescanWait(fd);
  return 'full';
}

/** The level-0 qgroup id of the subvolume whose root is open as `subvolFd` (= its tree id). */
export function qgroupIdOf(subvolFd: number): Promise<number> {
  return native.btrfsInoLookup(subvolFd);
}

/** Sets `bytes` as max_rfer of qgroup 0/<qgroupId>, creating the qgroup if the kernel has none. */
export async function setLimit(fd: number, qgroupId: number, bytes: number): Promise<void> {
  try {
    await native.btrfsQgroupLimit(fd, qgroupId, bytes);
  } catch (err) {
    // Subvolumes made before quota was on get their qgroup at enable; this covers any other gap.
    if (!hasCode(err, 'ENOENT')) throw err;
    await native.btrfsQgroupCreate(fd, qgroupId);
    await native.btrfsQgroupLimit(fd, qgroupId, bytes);
  }
}

/**
 * Destroys qgroup 0/<qgroupId> of a deleted subvolume. Resolves 'done' when it is gone (or
 * was never there, or quota is off), 'busy' when the kernel still counts the subvolume's
 * extents (EBUSY until the cleaner has dropped it): the caller retries later.
 */
export async function destroyQgroup(fd: number, qgroupId: number): Promise<'done' | 'busy'> {
  try {
    await native.btrfsQgroupDestroy(fd, qgroupId);
    return 'done';
  } catch (err) {
    if (hasCode(err, 'EBUSY')) return 'busy';
    // ENOENT: already gone (newer kernels delete it themselves); ENOTCONN: quota is off.
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTCONN')) return 'done';
    throw err;
  }
}
