// driver.ts: the vfs driver. Every layer is a plain directory holding its whole tree; a
// child starts as a full copy of its parent (util/copy-tree.ts). Nothing is mounted, so it
// works on any filesystem, at the price of disk space and create time. Diffs come from
// NaiveDiffDriver comparing trees. Owns home (layout.ts); must not write outside it, mount
// anything, or spawn processes.
//
// Crash safety: a layer is built in staging/ and published by one rename into dir/, so a
// name in dir/ is always a complete layer; a removal renames out of dir/ first, so a half
// deleted tree is never seen as a layer. Leftovers in staging/ are removed at init. While a
// diff is applied (ApplyGuard), incomplete/<id> marks the layer incomplete: it is then absent
// to exists() and get(), refused as a parent, and removable.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { ApplyGuard, CreateOptions, Driver, ProtoDriver } from '../../driver';
import { LayerBusyError, LayerExistsError, LayerNotFoundError, hasCode } from '../../errors';
import { fsName, getFsMagic } from '../../fsmagic';
import { RefCounter } from '../../mount/refcount';
import { NaiveDiffDriver } from '../../naive-diff';
import * as native from '../../native';
import { C } from '../../native';
import { copyTree } from '../../util/copy-tree';
import { normalizeParent, validateId } from '../../util/ids';
import { FileLocks } from '../../util/file-lock';
import { Locker, STRIPES } from '../../util/locker';
import { MarkerSet } from '../../util/markers';
import {
  CREATE_PREFIX, DRIVER_LOCK, EMPTY_LAYER_MODE, LAYER_LOCKS_DIR, PRIVATE_DIR_MODE, REMOVE_PREFIX, VfsLayout,
} from './layout';
import { checkCreateOptions, parseOptions } from './options';

/** The registered name. */
export const VFS = 'vfs';
const DRIVER_LOCK_PATH = DRIVER_LOCK;


export class VfsDriver implements ProtoDriver, ApplyGuard {
  readonly name = VFS;
  private readonly layout: VfsLayout;
  private readonly locks: Locker;
  /** Cross-process locks: DRIVER_LOCK shared while staging/ is in use, exclusive to sweep it. */
  private readonly driverLock: FileLocks;
  private readonly refs = new RefCounter();
  private readonly incomplete: MarkerSet;
  /** The in-use lock fd of each layer this process has got. */
  private readonly inUseFds = new Map<string, number>();

  private constructor(layout: VfsLayout) {
    this.layout = layout;
    this.incomplete = new MarkerSet(layout.incompleteDir);
    this.locks = new Locker(new FileLocks(layout.layerLocksDir));
    this.driverLock = new FileLocks(layout.locksDir);
  }

  /** Makes home, dir/ and staging/ (0700) and removes what a crash left in staging/. */
  static async open(home: string): Promise<VfsDriver> {
    const layout = new VfsLayout(home);
    await fsp.mkdir(layout.home, { recursive: true, mode: PRIVATE_DIR_MODE });
    await fsp.mkdir(layout.layersDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    await fsp.mkdir(layout.stagingDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const driver = new VfsDriver(layout);
    await driver.incomplete.init();
    await driver.makeLockFiles();
    // What a crashed process left in staging/ is swept — unless another process is using the
    // home right now (it holds DRIVER_LOCK shared), when its work in progress must not be.
    await driver.driverLock.tryExclusive(DRIVER_LOCK, async () => {
      for (const name of await fsp.readdir(layout.stagingDir)) await driver.removeStaged(name);
    });
    return driver;
  }

  async create(id: string, parent?: string, opts?: CreateOptions): Promise<void> {
    validateId(id);
    const parentId = normalizeParent(parent);
    checkCreateOptions(opts);
    await this.locks.withAll(parentId === '' ? [id] : [id, parentId], () => this.driverLock.shared(DRIVER_LOCK, async () => {
      // An incomplete layer still holds its id until it is removed.
      if (await this.dirExists(id)) throw new LayerExistsError(id);
      if (parentId !== '' && !(await this.layerExists(parentId))) throw new LayerNotFoundError(parentId);
      const stagedName = CREATE_PREFIX + randomBytes(8).toString('hex');
      const staged = this.layout.staging(stagedName);
      try {
        if (parentId !== '') {
          await copyTree(this.layout.layer(parentId), staged);
        } else {
          await fsp.mkdir(staged, EMPTY_LAYER_MODE);
          await fsp.chown(staged, 0, 0);
          await fsp.chmod(staged, EMPTY_LAYER_MODE); // mkdir's mode was masked by the umask
        }
        await this.renameNoReplace(staged, this.layout.layer(id), id);
      } catch (err) {
        // A leftover is removed at the next init; the original error is the one that matters.
        await this.removeStaged(stagedName).catch(() => undefined);
        throw err;
      }
    }));
  }

  async remove(id: string): Promise<void> {
    validateId(id);
    await this.locks.with(id, () => this.driverLock.shared(DRIVER_LOCK, async () => {
      if (!(await this.dirExists(id))) throw new LayerNotFoundError(id);
      // Our own gets end here; another process's get holds the in-use lock shared: refuse then.
      this.refs.forget(id);
      this.releaseInUse(id);
      const inUse = await native.open(this.layout.inUse(id), C.O_RDWR | C.O_CREAT | C.O_NOFOLLOW, 0o600);
      try {
        try {
          await native.flock(inUse, C.LOCK_EX | C.LOCK_NB);
        } catch (err) {
          if (hasCode(err, 'EAGAIN') || hasCode(err, 'EWOULDBLOCK')) throw new LayerBusyError(id);
          throw err;
        }
        const stagedName = REMOVE_PREFIX + randomBytes(8).toString('hex');
        await this.renameNoReplace(this.layout.layer(id), this.layout.staging(stagedName), id);
        await this.incomplete.clear(id);
        // Unlinked while locked and under the id's lock: no getter can be opening it now.
        await fsp.rm(this.layout.inUse(id), { force: true });
        await this.removeStaged(stagedName);
      } finally {
        native.closeSync(inUse);
      }
    }));
  }

  /** Holds the layer's in-use lock shared (one fd per got layer) so no other process removes it. */
  private async holdInUse(id: string): Promise<void> {
    const fd = await native.open(this.layout.inUse(id), C.O_RDWR | C.O_CREAT | C.O_NOFOLLOW, 0o600);
    try {
      // Removers take it exclusively only briefly and under the id's lock, which we hold.
      await native.flock(fd, C.LOCK_SH | C.LOCK_NB);
    } catch (err) {
      native.closeSync(fd);
      if (hasCode(err, 'EAGAIN') || hasCode(err, 'EWOULDBLOCK')) throw new LayerBusyError(id, `layer ${JSON.stringify(id)} is being removed by another process`);
      throw err;
    }
    this.inUseFds.set(id, fd);
  }

  private releaseInUse(id: string): void {
    const fd = this.inUseFds.get(id);
    if (fd === undefined) return;
    this.inUseFds.delete(id);
    native.closeSync(fd);
  }

  async get(id: string, _mountLabel?: string): Promise<string> {
    validateId(id);
    return this.locks.with(id, async () => {
      if (!(await this.layerExists(id))) throw new LayerNotFoundError(id);
      await this.refs.acquire(id, () => this.holdInUse(id));
      return this.layout.layer(id);
    });
  }

  async put(id: string): Promise<void> {
    validateId(id);
    await this.locks.with(id, async () => {
      await this.refs.release(id, async () => this.releaseInUse(id));
    });
  }

  async exists(id: string): Promise<boolean> {
    validateId(id);
    return this.layerExists(id);
  }

  async status(): Promise<Array<[string, string]>> {
    const magic = await getFsMagic(this.layout.home);
    const incomplete = (await this.incomplete.list()).length;
    return [
      ['Backing Filesystem', fsName(magic)],
      ['Layers', String((await countLayers(this.layout.layersDir)) - incomplete)],
      ['Incomplete Layers', String(incomplete)],
    ];
  }

  async guardApply<T>(id: string, apply: () => Promise<T>): Promise<T> {
    validateId(id);
    return this.locks.with(id, async () => {
      if (!(await this.dirExists(id))) throw new LayerNotFoundError(id);
      await this.incomplete.set(id);
      const result = await apply();
      await this.syncLayer(id);
      await this.incomplete.clear(id);
      return result;
    });
  }

  async beginApply(id: string): Promise<void> {
    validateId(id);
    await this.incomplete.set(id);
  }

  async endApply(id: string): Promise<void> {
    validateId(id);
    await this.syncLayer(id);
    await this.incomplete.clear(id);
  }

  /** syncfs on the layer's filesystem: its data is on disk before it is marked complete. */
  private async syncLayer(id: string): Promise<void> {
    const fd = await native.open(this.layout.layer(id), C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW, 0);
    try {
      await native.syncfs(fd);
    } finally {
      native.closeSync(fd);
    }
  }

  async cleanup(): Promise<void> {
    // Nothing is mounted; layers stay on disk. Gets still outstanding are released.
    for (const id of [...this.inUseFds.keys()]) {
      this.refs.forget(id);
      this.releaseInUse(id);
    }
  }

  toString(): string {
    return this.name;
  }

  /** Creates the lock files once, so later operations (even refused ones) create nothing. */
  private async makeLockFiles(): Promise<void> {
    await fsp.mkdir(this.layout.layerLocksDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    await fsp.mkdir(path.dirname(this.layout.inUse('x')), { recursive: true, mode: PRIVATE_DIR_MODE });
    const names = [DRIVER_LOCK_PATH, ...Array.from({ length: STRIPES }, (_, k) => path.join(LAYER_LOCKS_DIR, String(k)))];
    for (const name of names) {
      const fh = await fsp.open(path.join(this.layout.locksDir, name), 'a', 0o600);
      await fh.close();
    }
  }

  /** A complete layer: its directory exists and no incomplete marker names it. */
  private async layerExists(id: string): Promise<boolean> {
    return (await this.dirExists(id)) && !(await this.incomplete.has(id));
  }

  /** The layer's directory exists (complete or not). */
  private async dirExists(id: string): Promise<boolean> {
    try {
      return (await fsp.lstat(this.layout.layer(id))).isDirectory();
    } catch (err) {
      if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
      throw err;
    }
  }


  /** rename(2) that never replaces: renameat2 RENAME_NOREPLACE, or check-then-rename where the filesystem lacks it. */
  private async renameNoReplace(from: string, to: string, id: string): Promise<void> {
    try {
      await native.renameat2(C.AT_FDCWD, from, C.AT_FDCWD, to, C.RENAME_NOREPLACE);
      return;
    } catch (err) {
      if (hasCode(err, 'EEXIST')) throw new LayerExistsError(id);
      if (!hasCode(err, 'EINVAL')) throw err;
    }
    // No RENAME_NOREPLACE here; the per-id lock keeps this process from racing itself.
    const taken = await fsp.lstat(to).then(() => true, (err: unknown) => {
      if (hasCode(err, 'ENOENT')) return false;
      throw err;
    });
    if (taken) throw new LayerExistsError(id);
    await fsp.rename(from, to);
  }

  /** Removes staging/<name> and all below it without following symlinks; missing is fine. */
  private async removeStaged(name: string): Promise<void> {
    const dirFd = await native.open(this.layout.stagingDir, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW, 0);
    try {
      await native.removeAllAt(dirFd, name);
    } finally {
      native.closeSync(dirFd);
    }
  }
}

async function countLayers(layersDir: string): Promise<number> {
  const entries = await fsp.readdir(layersDir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).length;
}

/** Whether home/dir holds at least one layer (prior-driver detection in the registry). */
export async function hasLayers(home: string): Promise<boolean> {
  try {
    return (await countLayers(new VfsLayout(home).layersDir)) > 0;
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** The InitFunc: validates options, opens home, and adds diffs by tree comparison. */
export async function init(home: string, options: string[]): Promise<Driver> {
  parseOptions(options);
  return new NaiveDiffDriver(await VfsDriver.open(home));
}
