// subvolumes.ts: subvolume mechanics the btrfs driver composes: directory fds, telling a
// subvolume root from a plain directory, and deleting a subvolume together with every
// subvolume nested inside it (BTRFS_IOC_SNAP_DESTROY refuses one that has nested ones, with
// ENOTEMPTY). No layer policy (ids, staging, locks) here: callers pass directories and names.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { hasCode } from '../../errors';
import * as native from '../../native';
import { C } from '../../native';
import { SUBVOLUME_ROOT_INO } from './layout';

/** Runs `fn` with `dir` open as O_DIRECTORY|O_NOFOLLOW, closing it afterwards. */
export async function withDirFd<T>(dir: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = await native.open(dir, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW, 0);
  try {
    return await fn(fd);
  } finally {
    native.closeSync(fd);
  }
}

/** True when `p` is a directory whose inode number is 256: the root of a subvolume (on btrfs). */
export async function isSubvolumeRoot(p: string): Promise<boolean> {
  try {
    const st = await fsp.lstat(p, { bigint: true });
    return st.isDirectory() && st.ino === SUBVOLUME_ROOT_INO;
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/**
 * Calls `found(dir, name)` for each subvolume root below `dir` that is not inside another one
 * found (the first level of nesting); plain directories are walked, symlinks never followed.
 * The subvolume roots themselves are not entered: the caller recurses through deleteSubvolume.
 */
async function forEachNested(dir: string, found: (dir: string, name: string) => Promise<void>): Promise<void> {
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const p = path.join(dir, e.name);
    if (await isSubvolumeRoot(p)) await found(dir, e.name);
    else await forEachNested(p, found);
  }
}

/**
 * Deletes subvolume `dir/name` and, depth-first before it, every subvolume nested inside it.
 * With `qgroups`, appends the qgroup id (= tree id) of each deleted subvolume, for the caller
 * to destroy once the kernel lets it. `dir/name` must be a subvolume root.
 */
export async function deleteSubvolume(dir: string, name: string, qgroups?: number[]): Promise<void> {
  const p = path.join(dir, name);
  await forEachNested(p, (d, n) => deleteSubvolume(d, n, qgroups));
  if (qgroups !== undefined) qgroups.push(await withDirFd(p, (fd) => native.btrfsInoLookup(fd)));
  await withDirFd(dir, (fd) => native.btrfsSnapDestroy(fd, name));
}
