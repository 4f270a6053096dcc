// driver.ts: the btrfs driver. Every layer is a btrfs subvolume: a layer without a parent is a
// new empty subvolume, a child is a writable snapshot of its parent's subvolume (copy-on-write,
// constant time). get returns the subvolume's path: nothing is mounted. Per-layer size limits
// are qgroup max_rfer limits (quota.ts). Diffs come from NaiveDiffDriver comparing trees. Owns
// home (layout.ts); must not write outside it, mount anything, or spawn processes: every btrfs
// operation is an ioctl through lib/native.ts.
//
// Crash safety, as in vfs: a name in subvolumes/ is always a complete layer. A plain snapshot
// is created there directly (the kernel makes it in one transaction: complete or absent);
// anything needing more steps is made under staging/ and published by one rename; a removal
// renames out of subvolumes/ first. Leftovers in staging/ are deleted at init. While a diff is applied
// (ApplyGuard), incomplete/<id> marks the layer incomplete: absent to exists() and get(),
// refused as a parent, and removable.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { ApplyGuard, CreateOptions, Driver, ProtoDriver } from '../../driver';
import { LayerExistsError, LayerNotFoundError, PrerequisitesError, hasCode } from '../../errors';
import { FsMagic, fsName, getFsMagic } from '../../fsmagic';
import { NaiveDiffDriver } from '../../naive-diff';
import * as native from '../../native';
import { C } from '../../native';
import { isNonEmptyDir } from '../../registry';
import { normalizeParent, validateId } from '../../util/ids';
import { writeFileAtomic } from '../../util/atomic-file';
import { LayerLocks } from '../../util/layer-locks';
import { MarkerSet } from '../../util/markers';
import { bytesToHuman } from '../../util/units';
import {
  BtrfsLayout, CREATE_PREFIX, EMPTY_LAYER_MODE, PRIVATE_DIR_MODE, REMOVE_PREFIX,
} from './layout';
import { type BtrfsOptions, parseCreateOptions, parseOptions } from './options';
import { type QuotaMode, destroyQgroup, enableQuota, qgroupIdOf, quotaStatus, setLimit } from './quota';
import { deleteSubvolume, isSubvolumeRoot, withDirFd } from './subvolumes';

/** The registered name. */
export const BTRFS = 'btrfs';

const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;

export class BtrfsDriver implements ProtoDriver, ApplyGuard {
  readonly name = BTRFS;
  /** Set by open() once home's locks are made. */
  private locks!: LayerLocks;
  private readonly incomplete: MarkerSet;
  private readonly pendingQgroups: MarkerSet;
  /** One enable at a time; later callers share its result. */
  private quotaEnabling: Promise<QuotaMode> | undefined;
  private readonly dirFds = new Map<'staging' | 'subvolumes', Promise<number>>();

  private constructor(private readonly layout: BtrfsLayout, private readonly options: BtrfsOptions) {
    this.incomplete = new MarkerSet(layout.incompleteDir);
    this.pendingQgroups = new MarkerSet(layout.pendingQgroupsDir);
  }

  /**
   * Checks the backing filesystem, makes the layout, sweeps staging/ and orphan quota files
   * (when no other process has home open), and turns quota on if min_space asks.
   */
  static async open(home: string, options: BtrfsOptions): Promise<BtrfsDriver> {
    const layout = new BtrfsLayout(home);
    const probe = await nearestExisting(layout.home);
    const magic = await getFsMagic(probe);
    if (magic !== FsMagic.Btrfs) {
      throw new PrerequisitesError(`btrfs: ${probe} is on ${fsName(magic)}, not btrfs`);
    }
    for (const dir of [layout.home, layout.subvolumesDir, layout.stagingDir, layout.quotasDir]) {
      await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    }
    const driver = new BtrfsDriver(layout, options);
    await driver.incomplete.init();
    await driver.pendingQgroups.init();
    driver.locks = await LayerLocks.open(layout.home, async () => {
      for (const name of await fsp.readdir(layout.stagingDir)) await driver.deleteStaged(name);
      for (const id of await fsp.readdir(layout.quotasDir)) {
        if (!(await driver.dirExists(id))) await unlinkIfPresent(layout.quota(id));
      }
    });
    try {
      if (options.minSpace > 0) await driver.ensureQuota();
      await driver.retryPendingQgroups();
    } catch (err) {
      await driver.cleanup();
      throw err;
    }
    return driver;
  }

  async create(id: string, parent?: string, opts?: CreateOptions): Promise<void> {
    validateId(id);
    const parentId = normalizeParent(parent);
    const size = parseCreateOptions(opts, this.options);
    await this.locks.withLayers(parentId === '' ? [id] : [id, parentId], async () => {
      // The checks run at once (they are independent pool round trips); an incomplete layer
      // still holds its id until it is removed, and is refused as a parent.
      const [taken, parentIncomplete, src] = await Promise.allSettled([
        this.dirExists(id),
        parentId === '' ? Promise.resolve(false) : this.incomplete.has(parentId),
        parentId === '' ? Promise.resolve(-1) : native.open(this.layout.layer(parentId), DIR_FLAGS, 0),
      ]);
      const srcFd = src.status === 'fulfilled' ? src.value : -1;
      try {
        if (taken.status === 'rejected') throw taken.reason;
        if (taken.value) throw new LayerExistsError(id);
        if (parentIncomplete.status === 'rejected') throw parentIncomplete.reason;
        if (src.status === 'rejected') {
          throw hasCode(src.reason, 'ENOENT') || hasCode(src.reason, 'ENOTDIR') ? new LayerNotFoundError(parentId) : src.reason;
        }
        if (parentIncomplete.value) throw new LayerNotFoundError(parentId);
        await this.build(id, srcFd, size);
      } finally {
        if (srcFd >= 0) native.closeSync(srcFd);
      }
    });
  }

  /**
   * Makes layer `id`: a snapshot of srcFd, or a new subvolume when srcFd is -1. A plain snapshot
   * is made in place: the kernel creates it in one transaction, so after a crash it is complete
   * or absent. A new subvolume (chown/chmod) or a limited layer (qgroup limit) needs more steps
   * before it is complete, so it is made under a staging name and published by rename.
   */
  private async build(id: string, srcFd: number, size: number | undefined): Promise<void> {
    if (srcFd >= 0 && size === undefined) {
      await native.btrfsSnapCreate(await this.dirFd('subvolumes'), id, srcFd, false)
        .catch((err: unknown) => { throw hasCode(err, 'EEXIST') ? new LayerExistsError(id) : err; });
      return;
    }
    const stagedName = CREATE_PREFIX + randomBytes(8).toString('hex');
    const staged = this.layout.staging(stagedName);
    const stagingFd = await this.dirFd('staging');
    try {
      if (srcFd >= 0) {
        await native.btrfsSnapCreate(stagingFd, stagedName, srcFd, false);
      } else {
        await native.btrfsSubvolCreate(stagingFd, stagedName);
        await fsp.chown(staged, 0, 0);
        await fsp.chmod(staged, EMPTY_LAYER_MODE);
      }
      if (size !== undefined) await this.applyLimit(staged, size);
      await native.renameat2(stagingFd, stagedName, await this.dirFd('subvolumes'), id, C.RENAME_NOREPLACE)
        .catch((err: unknown) => { throw hasCode(err, 'EEXIST') ? new LayerExistsError(id) : err; });
    } catch (err) {
      // A leftover is deleted at the next init; the original error is the one that matters.
      await this.deleteStaged(stagedName).catch(() => undefined);
      throw err;
    }
    // The limit is already in force in the kernel; the file lets get() re-apply it.
    if (size !== undefined) await this.writeQuotaFile(id, size);
  }

  async remove(id: string): Promise<void> {
    validateId(id);
    await this.locks.withLayer(id, async () => {
      if (!(await this.dirExists(id))) throw new LayerNotFoundError(id);
      // LayerBusyError while another process has it got; this process's own gets end here.
      await this.locks.removing(id, async () => {
        // The quota file goes first: a crash then leaves a layer whose limit is only in the
        // kernel, never a quota file that a later layer of the same id would inherit.
        await unlinkIfPresent(this.layout.quota(id));
        const stagedName = REMOVE_PREFIX + randomBytes(8).toString('hex');
        await native.renameat2(await this.dirFd('subvolumes'), id, await this.dirFd('staging'), stagedName, C.RENAME_NOREPLACE);
        await this.incomplete.clear(id);
        await this.deleteStaged(stagedName);
      });
    });
  }

  async get(id: string, _mountLabel?: string): Promise<string> {
    validateId(id);
    return this.locks.withLayer(id, async () => {
      if (!(await this.layerExists(id))) throw new LayerNotFoundError(id);
      await this.locks.use(id, () => this.reapplyLimit(id));
      return this.layout.layer(id);
    });
  }

  async put(id: string): Promise<void> {
    validateId(id);
    await this.locks.withLayer(id, () => this.locks.unuse(id));
  }

  async exists(id: string): Promise<boolean> {
    validateId(id);
    return this.layerExists(id);
  }

  async status(): Promise<Array<[string, string]>> {
    const magic = await getFsMagic(this.layout.home);
    const quota = await withDirFd(this.layout.home, (fd) => quotaStatus(fd));
    const subvolumes = (await fsp.readdir(this.layout.subvolumesDir)).length;
    const incomplete = (await this.incomplete.list()).length;
    const s: Array<[string, string]> = [
      ['Backing Filesystem', fsName(magic)],
      ['Quota Enabled', String(quota.mode !== 'off')],
    ];
    if (quota.mode !== 'off') s.push(['Quota Mode', quota.mode + (quota.inconsistent ? ' (inconsistent)' : '')]);
    if (this.options.minSpace > 0) s.push(['Min Space', bytesToHuman(this.options.minSpace)]);
    s.push(['Subvolumes', String(subvolumes)], ['Layers', String(subvolumes - incomplete)],
      ['Incomplete Layers', String(incomplete)], ['Pending Qgroup Removals', String((await this.pendingQgroups.list()).length)]);
    return s;
  }

  guardApply<T>(id: string, apply: () => Promise<T>): Promise<T> {
    validateId(id);
    return this.locks.applyGuarded(id, () => this.dirExists(id), this, apply);
  }

  async beginApply(id: string): Promise<void> {
    validateId(id);
    await this.incomplete.set(id);
  }

  async endApply(id: string): Promise<void> {
    validateId(id);
    await withDirFd(this.layout.layer(id), (fd) => native.syncfs(fd));
    await this.incomplete.clear(id);
  }

  /** Nothing is mounted; retries qgroup removals the kernel refused earlier. Quota stays on. */
  async cleanup(): Promise<void> {
    await this.retryPendingQgroups();
    await this.locks.close();
    const open = [...this.dirFds.values()];
    this.dirFds.clear();
    for (const fd of open) native.closeSync(await fd);
  }

  toString(): string {
    return this.name;
  }

  /** staging/ or subvolumes/, opened once for the driver's life (closed by cleanup). */
  private dirFd(which: 'staging' | 'subvolumes'): Promise<number> {
    let fd = this.dirFds.get(which);
    if (fd === undefined) {
      fd = native.open(which === 'staging' ? this.layout.stagingDir : this.layout.subvolumesDir, DIR_FLAGS, 0);
      this.dirFds.set(which, fd);
      fd.catch(() => { this.dirFds.delete(which); });
    }
    return fd;
  }

  /** Turns quota on once per driver (a no-op when it is on already); resolves to its mode. */
  private ensureQuota(): Promise<QuotaMode> {
    if (this.quotaEnabling === undefined) {
      this.quotaEnabling = withDirFd(this.layout.home, (fd) => enableQuota(fd));
      this.quotaEnabling.catch(() => { this.quotaEnabling = undefined; });
    }
    return this.quotaEnabling;
  }

  /** Sets `bytes` as the max_rfer limit of the subvolume at `subvol`. */
  private async applyLimit(subvol: string, bytes: number): Promise<void> {
    await this.ensureQuota();
    await withDirFd(subvol, async (fd) => setLimit(fd, await qgroupIdOf(fd), bytes));
  }

  /** Re-applies quotas/<id> (if any) on first get: a limit is lost if quota was ever re-enabled. */
  private async reapplyLimit(id: string): Promise<void> {
    let text: string;
    try {
      text = await fsp.readFile(this.layout.quota(id), 'utf8');
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return;
      throw err;
    }
    const bytes = Number(text.trim());
    // A file that is not a size is ignored, as the engine does, rather than making the layer unusable.
    if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes < this.options.minSpace) return;
    await this.applyLimit(this.layout.layer(id), bytes);
  }

  /** Writes quotas/<id> atomically (util/atomic-file.ts). */
  private async writeQuotaFile(id: string, bytes: number): Promise<void> {
    await writeFileAtomic(this.layout.quota(id), String(bytes));
  }

  /** Deletes staging/<name>: a subvolume with its nested ones (and their qgroups), or a plain entry. */
  private async deleteStaged(name: string): Promise<void> {
    const p = this.layout.staging(name);
    if (!(await isSubvolumeRoot(p))) {
      await withDirFd(this.layout.stagingDir, (fd) => native.removeAllAt(fd, name));
      return;
    }
    const qgroups: number[] = [];
    await deleteSubvolume(this.layout.stagingDir, name, qgroups);
    await withDirFd(this.layout.home, async (fd) => {
      for (const q of qgroups) {
        if ((await destroyQgroup(fd, q)) === 'busy') await this.pendingQgroups.set(String(q));
      }
    });
  }

  /** Destroys the qgroups of earlier removals that the kernel was still cleaning up. */
  private async retryPendingQgroups(): Promise<void> {
    const pending = await this.pendingQgroups.list();
    if (pending.length === 0) return;
    await withDirFd(this.layout.home, async (fd) => {
      for (const name of pending) {
        const q = Number(name);
        if (!Number.isSafeInteger(q) || q <= 0 || (await destroyQgroup(fd, q)) === 'done') await this.pendingQgroups.clear(name);
      }
    });
  }

  /** A complete layer: its subvolume exists and no incomplete marker names it. */
  private async layerExists(id: string): Promise<boolean> {
    return (await this.dirExists(id)) && !(await this.incomplete.has(id));
  }

  /** The layer's subvolume exists (complete or not). */
  private async dirExists(id: string): Promise<boolean> {
    try {
      return (await fsp.lstat(this.layout.layer(id))).isDirectory();
    } catch (err) {
      if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
      throw err;
    }
  }

}

/** `p` itself, or its nearest ancestor that exists (home may not exist before the first init). */
async function nearestExisting(p: string): Promise<string> {
  for (let cur = p; ; cur = path.dirname(cur)) {
    try {
      await fsp.stat(cur);
      return cur;
    } catch (err) {
      if (!hasCode(err, 'ENOENT') || cur === path.dirname(cur)) throw err;
    }
  }
}

async function unlinkIfPresent(p: string): Promise<void> {
  try {
    await fsp.unlink(p);
  } catch (err) {
    if (!hasCode(err, 'ENOENT')) throw err;
  }
}

/** Whether home/subvolumes holds at least one layer (prior-driver detection in the registry). */
export function hasLayers(home: string): Promise<boolean> {
  return isNonEmptyDir(new BtrfsLayout(home).subvolumesDir);
}

/** The InitFunc: validates options, checks the filesystem, and adds diffs by tree comparison. */
export async function init(home: string, options: string[]): Promise<Driver> {
  const opts = parseOptions(options);
  return new NaiveDiffDriver(await BtrfsDriver.open(home, opts));
}
