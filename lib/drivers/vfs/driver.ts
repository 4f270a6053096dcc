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
import type { ApplyGuard, CreateOptions, Driver, ProtoDriver } from '../../driver';
import { LayerExistsError, LayerNotFoundError, hasCode } from '../../errors';
import { fsName, getFsMagic } from '../../fsmagic';
import { NaiveDiffDriver } from '../../naive-diff';
import * as native from '../../native';
import { C } from '../../native';
import { copyTree } from '../../util/copy-tree';
import { normalizeParent, validateId } from '../../util/ids';
import { LayerLocks } from '../../util/layer-locks';
import { MarkerSet } from '../../util/markers';
import { removeBelow } from '../../util/remove';
import { CREATE_PREFIX, EMPTY_LAYER_MODE, PRIVATE_DIR_MODE, REMOVE_PREFIX, VfsLayout } from './layout';
import { checkCreateOptions, parseOptions } from './options';

/** The registered name. */
export const VFS = 'vfs';

export class VfsDriver implements ProtoDriver, ApplyGuard {
  readonly name = VFS;
  private readonly incomplete: MarkerSet;

  private constructor(private readonly layout: VfsLayout, private readonly locks: LayerLocks) {
    this.incomplete = new MarkerSet(layout.incompleteDir);
  }

  /** Makes home, dir/ and staging/ (0700) and removes what a crash left in staging/. */
  static async open(home: string): Promise<VfsDriver> {
    const layout = new VfsLayout(home);
    await fsp.mkdir(layout.home, { recursive: true, mode: PRIVATE_DIR_MODE });
    await fsp.mkdir(layout.layersDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    await fsp.mkdir(layout.stagingDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    await new MarkerSet(layout.incompleteDir).init();
    // What a crashed process left in staging/ is swept — unless another process has the home
    // open, when its work in progress must not be.
    const locks = await LayerLocks.open(layout.home, async () => {
      for (const name of await fsp.readdir(layout.stagingDir)) await removeStaged(layout, name);
    });
    return new VfsDriver(layout, locks);
  }

  async create(id: string, parent?: string, opts?: CreateOptions): Promise<void> {
    validateId(id);
    const parentId = normalizeParent(parent);
    checkCreateOptions(opts);
    await this.locks.withLayers(parentId === '' ? [id] : [id, parentId], async () => {
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
        await removeStaged(this.layout, stagedName).catch(() => undefined);
        throw err;
      }
    });
  }

  async remove(id: string): Promise<void> {
    validateId(id);
    await this.locks.withLayer(id, async () => {
      if (!(await this.dirExists(id))) throw new LayerNotFoundError(id);
      // Our own gets end here; another process that has the layer got makes this LayerBusyError.
      await this.locks.removing(id, async () => {
        const stagedName = REMOVE_PREFIX + randomBytes(8).toString('hex');
        await this.renameNoReplace(this.layout.layer(id), this.layout.staging(stagedName), id);
        await this.incomplete.clear(id);
        await removeStaged(this.layout, stagedName);
      });
    });
  }

  async get(id: string, _mountLabel?: string): Promise<string> {
    validateId(id);
    return this.locks.withLayer(id, async () => {
      if (!(await this.layerExists(id))) throw new LayerNotFoundError(id);
      await this.locks.use(id);
      return this.layout.layer(id);
    });
  }

  async put(id: string): Promise<void> {
    validateId(id);
    await this.locks.withLayer(id, async () => {
      await this.locks.unuse(id);
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
    await this.locks.close();
  }

  toString(): string {
    return this.name;
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

}

/** Removes staging/<name> and all below it without following symlinks; missing is fine. */
function removeStaged(layout: VfsLayout, name: string): Promise<void> {
  return removeBelow(layout.stagingDir, name);
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
