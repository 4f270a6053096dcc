// driver.ts: the overlay driver (the engine's first overlay layout, before multi-lower overlay).
// An image layer is a complete tree in <id>/root; a container layer is an overlay of one lower
// root/ with its own <id>/upper (layout.ts). create() makes root/ for a layer without parent,
// upper/ + lower-id over a parent with root/, and a copy of the parent's upper/ and lower-id
// over an upper parent, so there is always exactly one lower. get() mounts upper layers on
// <id>/merged (spec from mounts.ts, applied by mount/apply.ts, counted by mount/refcount.ts
// under a per-id Locker) and returns root/ otherwise. Owns home; must not write outside it or
// spawn processes.
//
// applyDiff onto a clean upper layer whose parent has root/ builds a new root/ as a hardlink
// farm of the parent's (farm.ts), applies the tar on top in staging/ and exchanges the result
// with the layer in one renameat2(RENAME_EXCHANGE): the layer becomes a root/ layer whose
// unchanged files share inodes with its parent. archive/apply.ts replaces files rather than
// writing into them; a tar whose hardlink entries could reach a shared inode (tar-scan.ts) goes
// the naive way instead (through the mount, where copy-up protects the lower), as does every
// other applyDiff. Diffs of an upper layer against its lower are native on upper/ (overlay
// whiteouts converted; overlay-common/changes.ts) when init's probe finds upper/ trustworthy;
// anything else (root/ layers, another parent) compares trees with NaiveDiffDriver, which skips
// identical inodes — cheap on a farm.
//
// Crash safety: layers are built in staging/ and renamed (or exchanged) into layers/, so a name
// there is always a whole layer; staging/ is swept at init. An in-place (naive) apply marks the
// layer incomplete (ApplyGuard) until it is synced.
import { randomBytes } from 'node:crypto';
import { type ReadStream, promises as fsp } from 'node:fs';
import { applyLayer } from '../../archive/apply';
import { exportTree } from '../../archive/export';
import type { ApplyGuard, Change, CreateOptions, Driver } from '../../driver';
import { LayerExistsError, LayerNotFoundError, hasCode } from '../../errors';
import { FsMagic, fsName, getFsMagic } from '../../fsmagic';
import { isMountedAs, mountOverlayOnce, type OverlayMethod, overlayMethod, unmount } from '../../mount/apply';
import { NaiveDiffDriver } from '../../naive-diff';
import * as native from '../../native';
import { C } from '../../native';
import { copyTree } from '../../util/copy-tree';
import { normalizeParent, validateId } from '../../util/ids';
import { LayerLocks } from '../../util/layer-locks';
import { diffDirSize, overlayChanges } from '../overlay-common/changes';
import {
  PROBE_PREFIX, checkBackingFs, checkOverlayFs, dTypeError, nativeDiffProblem, overlayFeatures, supportsDType, withProbeDir,
  type OverlayFeatures,
} from '../overlay-common/check';
import { buildFarm } from './farm';
import {
  APPLY_PREFIX, CREATE_PREFIX, INCOMPLETE_FILE, LAYER_DIR_MODE, LOWER_ID_FILE, MERGED_DIR, OverlayLayout, PRIVATE_DIR_MODE,
  REMOVE_PREFIX, ROOT_DIR, ROOT_DIR_MODE, SPOOL_PREFIX, UPPER_DIR, WORK_DIR,
} from './layout';
import { upperMount } from './mounts';
import { checkCreateOptions, parseOptions } from './options';
import { type LayerRecord, layerDirExists, listLayerIds, markers, readRecord } from './records';
import { closeSpool, readSpool, spoolAndScan } from './tar-scan';
import { removeBelow } from '../../util/remove';

/** The registered name. */
export const OVERLAY = 'overlay';

const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;

/** What init found out about the kernel and the backing filesystem. */
interface Probes {
  method: OverlayMethod;
  features: OverlayFeatures;
  /** Why native diff is off, or undefined when it is on. */
  naiveReason: string | undefined;
}

export class OverlayDriver implements Driver, ApplyGuard {
  readonly name = OVERLAY;
  private readonly naive: NaiveDiffDriver;
  /** Counts of applyDiff by path, and why the last naive one was not a farm. */
  readonly applyStats = { farm: 0, naive: 0, lastNaiveReason: '' };

  private constructor(readonly layout: OverlayLayout, private readonly locks: LayerLocks, private readonly probes: Probes) {
    this.naive = new NaiveDiffDriver(this);
  }

  /** Checks kernel and backing filesystem, makes the layout, sweeps staging/ (when no other process has home open), probes. */
  static async open(home: string): Promise<OverlayDriver> {
    await checkOverlayFs(OVERLAY);
    const layout = new OverlayLayout(home);
    for (const dir of [layout.home, layout.layersDir, layout.stagingDir]) await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const magic = await getFsMagic(layout.home);
    checkBackingFs(OVERLAY, magic, layout.home);
    const locks = await LayerLocks.open(layout.home, async () => {
      for (const name of await fsp.readdir(layout.stagingDir)) {
        if (name.startsWith(PROBE_PREFIX) || name.startsWith(REMOVE_PREFIX) || name.startsWith(APPLY_PREFIX)) {
          await unmount(`${layout.staging(name)}/${MERGED_DIR}`);
        }
        await removeBelow(layout.stagingDir, name);
      }
    });
    try {
      if (!(await withProbeDir(layout.stagingDir, supportsDType))) throw dTypeError(OVERLAY, fsName(magic));
      const method = await withProbeDir(layout.stagingDir, overlayMethod);
      const features = overlayFeatures();
      const naiveReason = await nativeDiffProblem(layout.stagingDir, features);
      return new OverlayDriver(layout, locks, { method, features, naiveReason });
    } catch (err) {
      await locks.close();
      throw err;
    }
  }

  async create(id: string, parent?: string, opts?: CreateOptions): Promise<void> {
    validateId(id);
    const parentId = normalizeParent(parent);
    checkCreateOptions(opts);
    await this.locks.withLayers(parentId === '' ? [id] : [id, parentId], async () => {
      if (await layerDirExists(this.layout, id)) throw new LayerExistsError(id);
      const p = parentId === '' ? undefined : await this.record(parentId);
      const stagedName = CREATE_PREFIX + randomBytes(8).toString('hex');
      const staged = this.layout.staging(stagedName);
      try {
        await fsp.mkdir(staged, { mode: LAYER_DIR_MODE });
        if (p === undefined) {
          await mkdirOwned(`${staged}/${ROOT_DIR}`, ROOT_DIR_MODE, 0, 0);
        } else if (p.kind === 'root') {
          // upper/ is the merged root: it takes the parent root's mode (and owner).
          const st = await fsp.lstat(this.layout.root(p.id));
          await mkdirOwned(`${staged}/${UPPER_DIR}`, st.mode & 0o7777, st.uid, st.gid);
          await this.finishUpper(staged, p.id);
        } else {
          // Over an upper layer: its lower and a full copy of its upper/ (whiteouts, opaque xattrs and all).
          await copyTree(this.layout.upper(p.id), `${staged}/${UPPER_DIR}`);
          await this.finishUpper(staged, p.lowerId);
        }
        await native.renameat2(C.AT_FDCWD, staged, C.AT_FDCWD, this.layout.layer(id), C.RENAME_NOREPLACE)
          .catch((err: unknown) => { throw hasCode(err, 'EEXIST') || hasCode(err, 'ENOTEMPTY') ? new LayerExistsError(id) : err; });
      } catch (err) {
        await removeBelow(this.layout.stagingDir, stagedName).catch(() => undefined);
        throw err;
      }
    });
  }

  /** work/, merged/ and lower-id of an upper layer being built in `staged`. */
  private async finishUpper(staged: string, lowerId: string): Promise<void> {
    await fsp.mkdir(`${staged}/${WORK_DIR}`, { mode: PRIVATE_DIR_MODE });
    await fsp.mkdir(`${staged}/${MERGED_DIR}`, { mode: PRIVATE_DIR_MODE });
    await fsp.writeFile(`${staged}/${LOWER_ID_FILE}`, lowerId, { mode: 0o600 });
  }

  async remove(id: string): Promise<void> {
    validateId(id);
    await this.locks.withLayer(id, async () => {
      if (!(await layerDirExists(this.layout, id))) throw new LayerNotFoundError(id);
      // LayerBusyError while another process has it got; this process's own gets end here.
      await this.locks.removing(id, async () => {
        await unmount(this.layout.merged(id));
        const stagedName = REMOVE_PREFIX + randomBytes(8).toString('hex');
        await native.renameat2(C.AT_FDCWD, this.layout.layer(id), C.AT_FDCWD, this.layout.staging(stagedName), C.RENAME_NOREPLACE);
        await removeBelow(this.layout.stagingDir, stagedName);
      });
    });
  }

  async get(id: string, mountLabel?: string): Promise<string> {
    validateId(id);
    return this.locks.withLayer(id, async () => {
      const rec = await this.record(id);
      if (rec.kind === 'root') {
        await this.locks.use(id);
        return this.layout.root(id);
      }
      const spec = upperMount(this.layout, id, rec.lowerId, this.probes.features, mountLabel);
      // Another process's mount of the layer is adopted, not mounted twice.
      await this.locks.use(id, () => mountOverlayOnce(spec, this.layout.layersDir));
      return spec.target;
    });
  }

  async put(id: string): Promise<void> {
    validateId(id);
    await this.locks.withLayer(id, async () => {
      // Unmounted only when no other process has the layer got.
      await this.locks.unuse(id, async () => { await unmount(this.layout.merged(id)); });
    });
  }

  async exists(id: string): Promise<boolean> {
    validateId(id);
    if (!(await layerDirExists(this.layout, id))) return false;
    return !(await markers(this.layout, id).has(INCOMPLETE_FILE));
  }

  async status(): Promise<Array<[string, string]>> {
    const p = this.probes;
    const out: Array<[string, string]> = [
      ['Backing Filesystem', fsName(await getFsMagic(this.layout.home))],
      ['Supports d_type', 'true'],
      ['Native Overlay Diff', String(p.naiveReason === undefined)],
    ];
    if (p.naiveReason !== undefined) out.push(['Naive Diff Reason', p.naiveReason]);
    out.push(['Layers', String((await listLayerIds(this.layout)).length)]);
    return out;
  }

  async cleanup(): Promise<void> {
    await this.locks.close(async (id) => { await unmount(this.layout.merged(id)); });
  }

  toString(): string {
    return this.name;
  }

  guardApply<T>(id: string, apply: () => Promise<T>): Promise<T> {
    validateId(id);
    return this.locks.applyGuarded(id, () => layerDirExists(this.layout, id), this, apply);
  }

  async beginApply(id: string): Promise<void> {
    validateId(id);
    await markers(this.layout, id).set(INCOMPLETE_FILE);
  }

  async endApply(id: string): Promise<void> {
    validateId(id);
    await syncDir(this.layout.layer(id));
    await markers(this.layout, id).clear(INCOMPLETE_FILE);
  }

  /** The record of `id` when native diffs on its upper/ answer for `parent`, else undefined. */
  private async nativeRecord(id: string, parent: string): Promise<LayerRecord & { kind: 'upper' } | undefined> {
    const rec = await this.record(id);
    if (this.probes.naiveReason !== undefined || rec.kind !== 'upper' || rec.lowerId !== parent) return undefined;
    return rec;
  }

  async diff(id: string, parent?: string): Promise<NodeJS.ReadableStream> {
    validateId(id);
    const parentId = normalizeParent(parent);
    const rec = await this.nativeRecord(id, parentId);
    if (rec === undefined) return this.naive.diff(id, parentId);
    return exportTree(this.layout.upper(id), undefined, { whiteouts: 'overlay' });
  }

  async changes(id: string, parent?: string): Promise<Change[]> {
    validateId(id);
    const parentId = normalizeParent(parent);
    const rec = await this.nativeRecord(id, parentId);
    if (rec === undefined) return this.naive.changes(id, parentId);
    return overlayChanges(this.layout.upper(id), [this.layout.root(rec.lowerId)]);
  }

  async diffSize(id: string, parent?: string): Promise<number> {
    validateId(id);
    const parentId = normalizeParent(parent);
    const rec = await this.nativeRecord(id, parentId);
    if (rec === undefined) return this.naive.diffSize(id, parentId);
    return diffDirSize(this.layout.upper(id));
  }

  async applyDiff(id: string, parent: string | undefined, diff: NodeJS.ReadableStream): Promise<number> {
    validateId(id);
    const parentId = normalizeParent(parent);
    if (diff === null || typeof diff !== 'object' || typeof (diff as AsyncIterable<Buffer>)[Symbol.asyncIterator] !== 'function') {
      throw new TypeError('Expected a readable stream for diff');
    }
    const spoolName = SPOOL_PREFIX + randomBytes(8).toString('hex');
    const spool = this.layout.staging(spoolName);
    try {
      const outcome = await this.locks.withLayer(id, async () => {
        const why = await this.farmRefusal(id, parentId);
        if (why !== undefined) return { naiveReason: why, input: diff };
        const scan = await spoolAndScan(diff as AsyncIterable<Buffer>, spool);
        if (!scan.farmSafe) return { naiveReason: scan.reason ?? 'unsafe tar', input: readSpool(spool) };
        return { size: await this.farmApply(id, parentId, spool) };
      });
      if (outcome.size !== undefined) {
        this.applyStats.farm++;
        return outcome.size;
      }
      this.applyStats.naive++;
      this.applyStats.lastNaiveReason = outcome.naiveReason;
      try {
        return await this.naive.applyDiff(id, parentId, outcome.input);
      } finally {
        if (outcome.input !== diff) await closeSpool(outcome.input as ReadStream);
      }
    } finally {
      await fsp.rm(spool, { force: true });
    }
  }

  /** Why applyDiff(id, parent) cannot build a farm (undefined: it can). Called under id's lock. */
  private async farmRefusal(id: string, parent: string): Promise<string | undefined> {
    if (parent === '') return 'no parent';
    const rec = await this.record(id);
    if (rec.kind !== 'upper') return 'the layer is already a complete tree';
    if (rec.lowerId !== parent) return 'the parent given is not the layer\'s lower';
    if ((await this.record(parent)).kind !== 'root') return 'the parent has no root/';
    if (this.locks.count(id) > 0 || (await isMountedAs(this.layout.merged(id), FsMagic.Overlay))) return 'the layer is mounted';
    if ((await fsp.readdir(this.layout.upper(id))).length > 0) return 'the layer\'s upper/ is not empty';
    return undefined;
  }

  /** The farm path: staging/apply-<rnd>/root farmed from the parent, the tar applied, then exchanged in. */
  private async farmApply(id: string, parent: string, spool: string): Promise<number> {
    const stagedName = APPLY_PREFIX + randomBytes(8).toString('hex');
    const staged = this.layout.staging(stagedName);
    try {
      await fsp.mkdir(staged, { mode: LAYER_DIR_MODE });
      await buildFarm(this.layout.root(parent), `${staged}/${ROOT_DIR}`);
      const input = readSpool(spool);
      let size: number;
      try {
        size = await applyLayer(`${staged}/${ROOT_DIR}`, input);
      } finally {
        await closeSpool(input);
      }
      await syncDir(staged);
      // One step: layers/<id> becomes the new root/ layer; the old upper layer lands in staging/.
      await native.renameat2(C.AT_FDCWD, staged, C.AT_FDCWD, this.layout.layer(id), C.RENAME_EXCHANGE);
      return size;
    } finally {
      await removeBelow(this.layout.stagingDir, stagedName);
    }
  }

  /** The record of a complete layer; LayerNotFoundError when absent or incomplete. */
  private async record(id: string): Promise<LayerRecord> {
    if (!(await layerDirExists(this.layout, id))) throw new LayerNotFoundError(id);
    const rec = await readRecord(this.layout, id);
    if (rec.incomplete) throw new LayerNotFoundError(id);
    return rec;
  }

}

/** mkdir, then chown and chmod (mkdir's mode is masked by the umask; chown clears setgid). */
async function mkdirOwned(p: string, mode: number, uid: number, gid: number): Promise<void> {
  await fsp.mkdir(p, { mode: 0o700 });
  await fsp.chown(p, uid, gid);
  await fsp.chmod(p, mode);
}

/** syncfs(2) on the filesystem holding `dir`. */
async function syncDir(dir: string): Promise<void> {
  const fd = await native.open(dir, DIR_FLAGS, 0);
  try {
    await native.syncfs(fd);
  } finally {
    native.closeSync(fd);
  }
}

/** Whether home holds at least one layer (prior-driver detection in the registry). */
export async function hasLayers(home: string): Promise<boolean> {
  try {
    return (await listLayerIds(new OverlayLayout(home))).length > 0;
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** The InitFunc: validates options, checks kernel and filesystem, opens home. */
export async function init(home: string, options: string[]): Promise<Driver> {
  parseOptions(options);
  return OverlayDriver.open(home);
}
