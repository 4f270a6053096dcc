// driver.ts: the aufs driver (the engine's first default). Each layer keeps only its own
// changes in diff/<id>, with deletions as aufs whiteout files; layers/<id> lists its ancestors;
// get() of a layer with ancestors mounts aufs on mnt/<id> with diff/<id> as the writable branch
// over the ancestors' diffs (mounts.ts builds the calls as data, mount/apply.ts makes them). A
// layer without parent is returned as diff/<id> itself, unmounted. Counting is
// mount/refcount.ts under a per-id Locker. Owns home (layout.ts); must not write outside it,
// call mount(2) itself, or spawn processes.
//
// Diffs are native when the parent asked for is the layer's own (as the engine): diff() tars
// diff/<id> (whiteouts are already in tar form; top-level aufs metadata skipped), applyDiff()
// writes into diff/<id> keeping whiteouts as files, diffSize() sizes diff/<id>, changes() walks
// diff/<id> against the ancestors (changes.ts) — none of them mounts. Any other parent falls
// back to NaiveDiffDriver on mounted trees.
//
// Crash safety: layers/<id> is written in staging/ and renamed in last, so a layer exists whole
// or not at all; remove() unlinks it first, then renames diff/ and mnt/ aside into staging/ and
// deletes them. Directories left without a layers file, and staging/, are swept at init. While a
// diff is applied, incomplete/<id> marks the layer: absent to exists()/get(), refused as a
// parent, removable.
//
// Test seam: openAufsForTest() opens a driver without the kernel probe (aufs in
// /proc/filesystems, the dirperm1 mount) and with a caller's AufsMounter in place of the kernel's,
// because no kernel reachable from the tests has aufs. Every other syscall is real.
import { randomBytes } from 'node:crypto';
import { constants as fsc, promises as fsp } from 'node:fs';
import { applyLayer } from '../../archive/apply';
import { exportTree } from '../../archive/export';
import type { ApplyGuard, Change, CreateOptions, Driver } from '../../driver';
import { LayerExistsError, LayerNotFoundError, hasCode } from '../../errors';
import { FsMagic, fsName, getFsMagic } from '../../fsmagic';
import { applyMountSequence, isMountedAs, unmount } from '../../mount/apply';
import { NaiveDiffDriver } from '../../naive-diff';
import * as native from '../../native';
import { C } from '../../native';
import { normalizeParent, validateId } from '../../util/ids';
import { LayerLocks } from '../../util/layer-locks';
import { MarkerSet } from '../../util/markers';
import { aufsChanges, diffDirSize } from './changes';
import { type AufsMounter, backingMagic, checkAufsFs, checkBackingFs, probeDirperm1 } from './check';
import { AufsLayout, LAYERS_FILE_MODE, LAYERS_FILE_PREFIX, LAYER_DIR_MODE, PRIVATE_DIR_MODE, REMOVE_PREFIX } from './layout';
import { aufsMounts, formatLayersFile, parseLayersFile } from './mounts';
import { checkCreateOptions, parseOptions } from './options';
import { removeBelow } from '../../util/remove';

export type { AufsMounter } from './check';

/** The registered name. */
export const AUFS = 'aufs';

const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;

/** The kernel's mounter: mount(2) sequences through mount/apply.ts, aufs found by statfs magic. */
export const kernelMounter: AufsMounter = {
  mount: applyMountSequence,
  unmount: (target) => unmount(target),
  isMounted: (target) => isMountedAs(target, FsMagic.Aufs),
};

/** A layer as its layers file describes it. */
interface LayerRecord {
  /** Ancestor ids, nearest (the parent) first; empty for a layer without parent. */
  ancestors: string[];
}

export class AufsDriver implements Driver, ApplyGuard {
  readonly name = AUFS;
  /** Set by open() once home's locks are made. */
  private locks!: LayerLocks;
  /** Layers got with a mount, by id (their mount point). */
  private readonly mounted = new Map<string, string>();
  private readonly incomplete: MarkerSet;
  private readonly naive: NaiveDiffDriver;

  private dirperm1 = false;

  private constructor(private readonly layout: AufsLayout, private readonly mounter: AufsMounter) {
    this.incomplete = new MarkerSet(layout.incompleteDir);
    this.naive = new NaiveDiffDriver(this);
  }

  /**
   * Checks the backing filesystem, makes the layout and sweeps what a crash left (when no other
   * process has home open); `dirperm1` is probed through `mounter` unless given. Callers check
   * the kernel first (init does).
   */
  static async open(home: string, mounter: AufsMounter, dirperm1?: boolean): Promise<AufsDriver> {
    const layout = new AufsLayout(home);
    checkBackingFs(await backingMagic(layout.home), layout.home);
    for (const dir of [layout.home, layout.layersDir, layout.diffDir, layout.mntDir, layout.stagingDir]) {
      await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    }
    const driver = new AufsDriver(layout, mounter);
    await driver.incomplete.init();
    driver.locks = await LayerLocks.open(layout.home, () => driver.sweep());
    try {
      driver.dirperm1 = dirperm1 ?? await probeDirperm1(layout.stagingDir, mounter);
    } catch (err) {
      await driver.locks.close();
      throw err;
    }
    return driver;
  }

  /** Removes staging/ leftovers, and diff/, mnt/ and markers of ids without a layers file. */
  private async sweep(): Promise<void> {
    const l = this.layout;
    for (const name of await fsp.readdir(l.stagingDir)) await removeBelow(l.stagingDir, name);
    const ids = new Set(await fsp.readdir(l.layersDir));
    for (const dir of [l.diffDir, l.mntDir]) {
      for (const name of await fsp.readdir(dir)) {
        if (ids.has(name)) continue;
        await this.mounter.unmount(l.mnt(name)).catch(() => false);
        await removeBelow(dir, name);
      }
    }
    for (const id of await this.incomplete.list()) if (!ids.has(id)) await this.incomplete.clear(id);
  }

  async create(id: string, parent?: string, opts?: CreateOptions): Promise<void> {
    validateId(id);
    const parentId = normalizeParent(parent);
    checkCreateOptions(opts);
    await this.locks.withLayers(parentId === '' ? [id] : [id, parentId], async () => {
      if (await this.hasLayersFile(id)) throw new LayerExistsError(id);
      const ancestors = parentId === '' ? [] : (await this.record(parentId)).ancestors;
      const l = this.layout;
      // Directories without a layers file are what a crashed create or remove left: garbage
      // (unmounted first, so nothing is deleted through a union left mounted).
      await this.mounter.unmount(l.mnt(id));
      await removeBelow(l.diffDir, id);
      await removeBelow(l.mntDir, id);
      await this.incomplete.clear(id);
      const staged = l.staging(LAYERS_FILE_PREFIX + randomBytes(8).toString('hex'));
      try {
        for (const dir of [l.diff(id), l.mnt(id)]) {
          await fsp.mkdir(dir, { mode: LAYER_DIR_MODE });
          await fsp.chown(dir, 0, 0);
          await fsp.chmod(dir, LAYER_DIR_MODE); // mkdir's mode was masked by the umask
        }
        await writeSynced(staged, formatLayersFile(parentId, ancestors));
        await native.renameat2(C.AT_FDCWD, staged, C.AT_FDCWD, l.layersFile(id), C.RENAME_NOREPLACE)
          .catch((err: unknown) => { throw hasCode(err, 'EEXIST') ? new LayerExistsError(id) : err; });
      } catch (err) {
        await fsp.rm(staged, { force: true }).catch(() => undefined);
        if (!(err instanceof LayerExistsError)) {
          await removeBelow(l.diffDir, id).catch(() => undefined);
          await removeBelow(l.mntDir, id).catch(() => undefined);
        }
        throw err;
      }
    });
  }

  async remove(id: string): Promise<void> {
    validateId(id);
    await this.locks.withLayer(id, async () => {
      const l = this.layout;
      if (!(await this.hasLayersFile(id))) throw new LayerNotFoundError(id);
      // LayerBusyError while another process has it got; this process's own gets end here.
      await this.locks.removing(id, async () => {
        this.mounted.delete(id);
        if (await this.mounter.isMounted(l.mnt(id))) await this.mounter.unmount(l.mnt(id));
        await fsp.unlink(l.layersFile(id));
        const aside = REMOVE_PREFIX + randomBytes(8).toString('hex');
        await fsp.mkdir(l.staging(aside), { mode: PRIVATE_DIR_MODE });
        for (const [dir, name] of [[l.mnt(id), 'mnt'], [l.diff(id), 'diff']] as const) {
          await fsp.rename(dir, `${l.staging(aside)}/${name}`).catch((err: unknown) => { if (!hasCode(err, 'ENOENT')) throw err; });
        }
        await removeBelow(l.stagingDir, aside);
        await this.incomplete.clear(id);
      });
    });
  }

  async get(id: string, mountLabel?: string): Promise<string> {
    validateId(id);
    return this.locks.withLayer(id, async () => {
      const { ancestors } = await this.record(id);
      const l = this.layout;
      if (ancestors.length === 0) {
        await this.locks.use(id);
        return l.diff(id);
      }
      const target = l.mnt(id);
      const specs = aufsMounts({ rw: l.diff(id), ro: ancestors.map((a) => l.diff(a)), target, dirperm1: this.dirperm1, ...(mountLabel !== undefined ? { mountLabel } : {}) });
      await this.locks.use(id, async () => {
        // A mount of another process (or one left by a dead one) is taken over, not stacked.
        if (!(await this.mounter.isMounted(target))) {
          await fsp.mkdir(target, { recursive: true, mode: LAYER_DIR_MODE });
          await this.mounter.mount(specs);
        }
        this.mounted.set(id, target);
      });
      return target;
    });
  }

  async put(id: string): Promise<void> {
    validateId(id);
    await this.locks.withLayer(id, async () => {
      // Unmounted only when no other process has the layer got.
      await this.locks.unuse(id, async () => {
        const target = this.mounted.get(id);
        if (target !== undefined) await this.mounter.unmount(target);
      });
      if (this.locks.count(id) === 0) this.mounted.delete(id);
    });
  }

  async exists(id: string): Promise<boolean> {
    validateId(id);
    return (await this.hasLayersFile(id)) && !(await this.incomplete.has(id));
  }

  async status(): Promise<Array<[string, string]>> {
    const entries = await fsp.readdir(this.layout.layersDir, { withFileTypes: true });
    return [
      ['Root Dir', this.layout.home],
      ['Backing Filesystem', fsName(await getFsMagic(this.layout.home))],
      ['Dirs', String(entries.filter((e) => !e.isDirectory()).length)],
      ['Dirperm1 Supported', String(this.dirperm1)],
    ];
  }

  async cleanup(): Promise<void> {
    await this.locks.close(async (id) => {
      const target = this.mounted.get(id);
      if (target !== undefined) await this.mounter.unmount(target);
    });
    this.mounted.clear();
  }

  toString(): string {
    return this.name;
  }

  guardApply<T>(id: string, apply: () => Promise<T>): Promise<T> {
    validateId(id);
    return this.locks.applyGuarded(id, () => this.hasLayersFile(id), this, apply);
  }

  async beginApply(id: string): Promise<void> {
    validateId(id);
    await this.incomplete.set(id);
  }

  async endApply(id: string): Promise<void> {
    validateId(id);
    const fd = await native.open(this.layout.diff(id), DIR_FLAGS, 0);
    try {
      await native.syncfs(fd);
    } finally {
      native.closeSync(fd);
    }
    await this.incomplete.clear(id);
  }

  /** Whether `parent` is the layer's own parent: then diffs are read from diff/<id> natively. */
  private async isOwnParent(id: string, parent: string): Promise<boolean> {
    return ((await this.record(id)).ancestors[0] ?? '') === parent;
  }

  async diff(id: string, parent?: string): Promise<NodeJS.ReadableStream> {
    validateId(id);
    const parentId = normalizeParent(parent);
    if (!(await this.isOwnParent(id, parentId))) return this.naive.diff(id, parentId);
    return exportTree(this.layout.diff(id), undefined, { skipAufsMetadata: true });
  }

  async changes(id: string, parent?: string): Promise<Change[]> {
    validateId(id);
    const parentId = normalizeParent(parent);
    const { ancestors } = await this.record(id);
    if ((ancestors[0] ?? '') !== parentId) return this.naive.changes(id, parentId);
    return aufsChanges(this.layout.diff(id), ancestors.map((a) => this.layout.diff(a)));
  }

  async applyDiff(id: string, parent: string | undefined, diff: NodeJS.ReadableStream): Promise<number> {
    validateId(id);
    const parentId = normalizeParent(parent);
    if (diff === null || typeof diff !== 'object' || typeof (diff as AsyncIterable<Buffer>)[Symbol.asyncIterator] !== 'function') {
      throw new TypeError('Expected a readable stream for diff');
    }
    if (!(await this.isOwnParent(id, parentId))) return this.naive.applyDiff(id, parentId, diff);
    // Written straight into diff/<id>, whiteouts kept as aufs stores them, without mounting,
    // under the layer's lock (so it is not removed meanwhile). A failed or interrupted apply
    // leaves the incomplete marker: the layer is then absent and removable.
    return this.guardApply(id, () => applyLayer(this.layout.diff(id), diff, { whiteouts: 'keep' }));
  }

  async diffSize(id: string, parent?: string): Promise<number> {
    validateId(id);
    const parentId = normalizeParent(parent);
    if (!(await this.isOwnParent(id, parentId))) return this.naive.diffSize(id, parentId);
    return diffDirSize(this.layout.diff(id));
  }

  /** The record of a complete layer; LayerNotFoundError when absent or incomplete. */
  private async record(id: string): Promise<LayerRecord> {
    let text: string;
    try {
      text = await fsp.readFile(this.layout.layersFile(id), 'utf8');
    } catch (err) {
      if (hasCode(err, 'ENOENT') || hasCode(err, 'EISDIR')) throw new LayerNotFoundError(id);
      throw err;
    }
    if (await this.incomplete.has(id)) throw new LayerNotFoundError(id);
    return { ancestors: parseLayersFile(text) };
  }

  private async hasLayersFile(id: string): Promise<boolean> {
    try {
      return !(await fsp.lstat(this.layout.layersFile(id))).isDirectory();
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return false;
      throw err;
    }
  }

}

/** Writes `text` to a new file `file` and fsyncs it. */
async function writeSynced(file: string, text: string): Promise<void> {
  const fh = await fsp.open(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, LAYERS_FILE_MODE);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Whether home/layers holds at least one layers file (prior-driver detection in the registry). */
export async function hasLayers(home: string): Promise<boolean> {
  try {
    return (await fsp.readdir(new AufsLayout(home).layersDir, { withFileTypes: true })).some((e) => !e.isDirectory());
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** The InitFunc: validates options, needs aufs in the kernel (NotSupportedError), opens home. */
export async function init(home: string, options: string[]): Promise<Driver> {
  parseOptions(options);
  await checkAufsFs();
  return AufsDriver.open(home, kernelMounter);
}

/**
 * TEST ONLY — not exported from the package. Opens an aufs driver on `home` past the kernel
 * probe: no /proc/filesystems check and no dirperm1 probe mount (`dirperm1` is taken as given,
 * default false), and every mount, unmount and is-mounted question goes to `mounter` instead of
 * the kernel. This is the seam for the missing aufs module, not a mock of the filesystem: the
 * backing-filesystem check, layout, layers files, diff dirs, archive and scans are all real.
 */
export async function openAufsForTest(home: string, seam: { mounter: AufsMounter; dirperm1?: boolean }): Promise<AufsDriver> {
  return AufsDriver.open(home, seam.mounter, seam.dirperm1 ?? false);
}
