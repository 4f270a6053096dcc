// driver.ts: the overlay2 driver (the engine's later default). Each layer keeps only its own
// changes in <id>/diff; a child names its ancestors' diffs in <id>/lower (short l/ names) and
// get() mounts overlayfs over them on <id>/merged: diff/ as the upper dir for a layer nobody
// built on, or — once a child was made on it (`committed`) — read-only with its diff as the
// topmost lower. A layer without parent is returned as diff/ itself, unmounted (as the engine).
// Mount specs come from mounts.ts (pure) and are applied by mount/apply.ts; counting is
// mount/refcount.ts under a per-id Locker. Owns home (layout.ts); must not write outside it or
// spawn processes.
//
// Diffs are native when check.ts finds diff/ trustworthy (no redirect_dir / metacopy for the
// options every mount carries: index=off, redirect_dir=off, metacopy=off where the kernel has
// them): diff() exports diff/ with overlay whiteouts converted, applyDiff() writes straight into
// diff/ in overlay form, diffSize() sizes diff/, changes() walks diff/ only (changes.ts). A
// parent other than the layer's own, or an unsafe kernel, falls back to NaiveDiffDriver on the
// mounted trees, and status() says which is in use.
//
// Sizes (overlay2.size, storageOpt size) are XFS project quotas (quota.ts): probed at init when
// overlay2.size is given, else on the first create asking for a size; refused with the reason
// on any other backing filesystem. The project id is set on the staged layer dir before diff/.
//
// Crash safety: a layer is built in staging/ and renamed into layers/, so a name there is whole
// or absent; l/ links lost in a crash are rebuilt at init. While a diff is applied,
// <id>/incomplete marks the layer: absent to exists()/get(), refused as a parent, removable.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { ApplyGuard, Change, CreateOptions, Driver } from '../../driver';
import { LayerExistsError, LayerNotFoundError, MountLimitError, hasCode } from '../../errors';
import { fsName, getFsMagic } from '../../fsmagic';
import { applyLayer } from '../../archive/apply';
import { exportTree } from '../../archive/export';
import { checkOverlayLimits, mountOverlayOnce, type OverlayMethod, overlayMethod, unmount } from '../../mount/apply';
import { NaiveDiffDriver } from '../../naive-diff';
import * as native from '../../native';
import { C } from '../../native';
import { normalizeParent, validateId } from '../../util/ids';
import { LayerLocks } from '../../util/layer-locks';
import { diffDirSize, overlayChanges } from '../overlay-common/changes';
import {
  checkBackingFs, checkOverlayFs, dTypeError, nativeDiffProblem, overlayFeatures, supportsDType, withProbeDir,
} from './check';
import {
  COMMITTED_FILE, CREATE_PREFIX, DIFF_DIR_MODE, INCOMPLETE_FILE, LAYER_DIR_MODE, LINK_FILE, LOWER_FILE, MERGED_DIR,
  Overlay2Layout, PRIVATE_DIR_MODE, PROBE_PREFIX, REMOVE_PREFIX, WORK_DIR,
} from './layout';
import { MAX_CHAIN_DEPTH, type OverlayFeatures, childLowers, formatLowerFile, layerMount } from './mounts';
import { type Overlay2Options, parseCreateOptions, parseOptions } from './options';
import { QuotaControl, effectiveSize } from './quota';
import { type FullRecord, ensureLink, layerDirExists, listLayerIds, markers, newShortId, parentOf, readRecord, repairLinks } from './records';
import { removeBelow } from '../../util/remove';

/** The registered name. */
export const OVERLAY2 = 'overlay2';

const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;

/** What init found out about the kernel and the backing filesystem. */
interface Probes {
  magic: number;
  method: OverlayMethod;
  features: OverlayFeatures;
  /** Why native diff is off, or undefined when it is on. */
  naiveReason: string | undefined;
  repairedLinks: number;
}

export class Overlay2Driver implements Driver, ApplyGuard {
  readonly name = OVERLAY2;
  private readonly naive: NaiveDiffDriver;
  /** The quota probe's result once it succeeded (or is running); reset when it failed. */
  private quotaCtl: Promise<QuotaControl> | undefined;

  private constructor(private readonly layout: Overlay2Layout, private readonly locks: LayerLocks, private readonly probes: Probes,
    private readonly options: Overlay2Options, quotaCtl: QuotaControl | undefined) {
    this.naive = new NaiveDiffDriver(this);
    if (quotaCtl !== undefined) this.quotaCtl = Promise.resolve(quotaCtl);
  }

  /** The quota control, probing home's filesystem on first use; InvalidOptionError when sizes cannot be enforced. */
  private quota(): Promise<QuotaControl> {
    if (this.quotaCtl === undefined) {
      const probing = QuotaControl.probe(this.layout, this.probes.magic);
      this.quotaCtl = probing;
      probing.catch(() => { if (this.quotaCtl === probing) this.quotaCtl = undefined; });
    }
    return this.quotaCtl;
  }

  /**
   * Checks kernel and backing filesystem, makes the layout, sweeps staging/ (when no other
   * process has home open), probes, repairs l/.
   */
  static async open(home: string, options: Overlay2Options): Promise<Overlay2Driver> {
    await checkOverlayFs();
    const layout = new Overlay2Layout(home);
    for (const dir of [layout.home, layout.layersDir, layout.linksDir, layout.stagingDir]) await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const magic = await getFsMagic(layout.home);
    checkBackingFs(magic, layout.home);
    const locks = await LayerLocks.open(layout.home, async () => {
      for (const name of await fsp.readdir(layout.stagingDir)) {
        if (name.startsWith(PROBE_PREFIX)) await unmount(`${layout.staging(name)}/${MERGED_DIR}`);
        await removeBelow(layout.stagingDir, name);
      }
    });
    try {
      if (!(await withProbeDir(layout, supportsDType))) throw dTypeError(fsName(magic));
      const quotaCtl = options.quota > 0 ? await QuotaControl.probe(layout, magic) : undefined;
      const method = await withProbeDir(layout, overlayMethod);
      const features = overlayFeatures();
      const problem = await nativeDiffProblem(layout, features);
      const repairedLinks = await repairLinks(layout);
      return new Overlay2Driver(layout, locks, { magic, method, features, naiveReason: problem, repairedLinks }, options, quotaCtl);
    } catch (err) {
      await locks.close();
      throw err;
    }
  }

  async create(id: string, parent?: string, opts?: CreateOptions): Promise<void> {
    validateId(id);
    const parentId = normalizeParent(parent);
    const size = effectiveSize(parseCreateOptions(opts), this.options.quota);
    const quota = size > 0 ? await this.quota() : undefined;
    await this.locks.withLayers(parentId === '' ? [id] : [id, parentId], async () => {
      if (await layerDirExists(this.layout, id)) throw new LayerExistsError(id);
      let lowers: string[] = [];
      if (parentId !== '') {
        const p = await this.record(parentId);
        lowers = childLowers(p.short, p.lowers);
      }
      const short = newShortId();
      if (lowers.length >= MAX_CHAIN_DEPTH) {
        throw new MountLimitError(`overlay2: ${JSON.stringify(id)} would be layer ${lowers.length + 1} of its chain; ` +
          `at most ${MAX_CHAIN_DEPTH} layers stack (the kernel mounts at most 500 lower directories)`);
      }
      // Both mounts this layer can need must fit: writable (upperdir= and workdir= over its
      // lowers) and, once a child is made, committed (its diff as one more lower). In mount(2)
      // data either can be the longer one, so neither stands for the other.
      for (const committed of [false, true]) {
        const spec = layerMount(this.layout.home, { id, short, lowers, committed }, this.probes.features);
        if (spec !== null) checkOverlayLimits(spec, this.probes.method);
      }
      await this.build(id, short, lowers, quota === undefined ? undefined : { ctl: quota, size });
      if (parentId !== '') await markers(this.layout, parentId).set(COMMITTED_FILE);
    });
  }

  /**
   * Builds <id>/ under staging/, renames it into home, then links l/<short> to it. With a quota,
   * the staged dir gets its project id (PROJINHERIT) and limit before anything is made in it.
   */
  private async build(id: string, short: string, lowers: string[], quota?: { ctl: QuotaControl; size: number }): Promise<void> {
    const stagedName = CREATE_PREFIX + randomBytes(8).toString('hex');
    const staged = this.layout.staging(stagedName);
    try {
      await fsp.mkdir(staged, { mode: LAYER_DIR_MODE });
      if (quota !== undefined) await quota.ctl.applyTo(staged, quota.size);
      await fsp.mkdir(`${staged}/diff`, { mode: DIFF_DIR_MODE });
      await fsp.chown(`${staged}/diff`, 0, 0);
      await fsp.chmod(`${staged}/diff`, DIFF_DIR_MODE); // mkdir's mode was masked by the umask
      await fsp.writeFile(`${staged}/${LINK_FILE}`, short, { mode: 0o644 });
      if (lowers.length > 0) {
        await fsp.writeFile(`${staged}/${LOWER_FILE}`, formatLowerFile(lowers), { mode: 0o644 });
        await fsp.mkdir(`${staged}/${WORK_DIR}`, { mode: PRIVATE_DIR_MODE });
        await fsp.mkdir(`${staged}/${MERGED_DIR}`, { mode: PRIVATE_DIR_MODE });
      }
      await native.renameat2(C.AT_FDCWD, staged, C.AT_FDCWD, this.layout.layer(id), C.RENAME_NOREPLACE)
        .catch((err: unknown) => { throw hasCode(err, 'EEXIST') || hasCode(err, 'ENOTEMPTY') ? new LayerExistsError(id) : err; });
    } catch (err) {
      await removeBelow(this.layout.stagingDir, stagedName).catch(() => undefined);
      throw err;
    }
    await ensureLink(this.layout, id, short);
  }

  async remove(id: string): Promise<void> {
    validateId(id);
    await this.locks.withLayer(id, async () => {
      if (!(await layerDirExists(this.layout, id))) throw new LayerNotFoundError(id);
      // LayerBusyError while another process has it got; this process's own gets end here.
      await this.locks.removing(id, async () => {
        const rec = await readRecord(this.layout, id).catch(() => undefined);
        await unmount(this.layout.merged(id));
        const stagedName = REMOVE_PREFIX + randomBytes(8).toString('hex');
        await native.renameat2(C.AT_FDCWD, this.layout.layer(id), C.AT_FDCWD, this.layout.staging(stagedName), C.RENAME_NOREPLACE);
        if (rec !== undefined) await fsp.rm(this.layout.link(rec.short), { force: true });
        await removeBelow(this.layout.stagingDir, stagedName);
      });
    });
  }

  async get(id: string, mountLabel?: string): Promise<string> {
    validateId(id);
    return this.locks.withLayer(id, async () => {
      const rec = await this.record(id);
      const spec = layerMount(this.layout.home, rec, this.probes.features, mountLabel);
      if (spec === null) {
        await this.locks.use(id);
        return this.layout.diff(id);
      }
      // Another process's mount of the layer is adopted, not mounted twice.
      await this.locks.use(id, () => mountOverlayOnce(spec, this.layout.linksDir));
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
    const layers = await listLayerIds(this.layout);
    const out: Array<[string, string]> = [
      ['Backing Filesystem', fsName(await getFsMagic(this.layout.home))],
      ['Supports d_type', 'true'],
      ['Native Overlay Diff', String(p.naiveReason === undefined)],
    ];
    if (p.naiveReason !== undefined) out.push(['Naive Diff Reason', p.naiveReason]);
    out.push(
      ['Layer Limit', p.method === 'lowerdir+' ? String(MAX_CHAIN_DEPTH) : 'as many as fit in one page of mount data'],
      ['Mount Method', p.method === 'lowerdir+' ? 'fsopen/fsconfig lowerdir+/fsmount/move_mount' : 'mount(2) with lowerdir='],
      ['Layers', String(layers.length)],
      ['Repaired Links At Init', String(p.repairedLinks)],
    );
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
    const fd = await native.open(this.layout.diff(id), DIR_FLAGS, 0);
    try {
      await native.syncfs(fd);
    } finally {
      native.closeSync(fd);
    }
    await markers(this.layout, id).clear(INCOMPLETE_FILE);
  }

  /** The record of a complete layer `id` with native diff usable against `parent`, or undefined to go naive. */
  private async nativeRecord(id: string, parent: string): Promise<FullRecord | undefined> {
    const rec = await this.record(id);
    if (this.probes.naiveReason !== undefined) return undefined;
    return (await parentOf(this.layout, rec)) === parent ? rec : undefined;
  }

  async diff(id: string, parent?: string): Promise<NodeJS.ReadableStream> {
    validateId(id);
    const parentId = normalizeParent(parent);
    const rec = await this.nativeRecord(id, parentId);
    if (rec === undefined) return this.naive.diff(id, parentId);
    return exportTree(this.layout.diff(id), undefined, { whiteouts: 'overlay' });
  }

  async changes(id: string, parent?: string): Promise<Change[]> {
    validateId(id);
    const parentId = normalizeParent(parent);
    const rec = await this.nativeRecord(id, parentId);
    if (rec === undefined) return this.naive.changes(id, parentId);
    return overlayChanges(this.layout.diff(id), rec.lowers.map((entry) => `${this.layout.home}/${entry}`));
  }

  async applyDiff(id: string, parent: string | undefined, diff: NodeJS.ReadableStream): Promise<number> {
    validateId(id);
    const parentId = normalizeParent(parent);
    if (diff === null || typeof diff !== 'object' || typeof (diff as AsyncIterable<Buffer>)[Symbol.asyncIterator] !== 'function') {
      throw new TypeError('Expected a readable stream for diff');
    }
    const rec = await this.nativeRecord(id, parentId);
    if (rec === undefined) return this.naive.applyDiff(id, parentId, diff);
    // Written straight into diff/ in overlay's own whiteout form, without mounting. A failed or
    // interrupted apply leaves the incomplete marker: the layer is then absent and removable.
    return this.guardApply(id, () => applyLayer(this.layout.diff(id), diff, { whiteouts: 'overlay' }));
  }

  async diffSize(id: string, parent?: string): Promise<number> {
    validateId(id);
    const parentId = normalizeParent(parent);
    const rec = await this.nativeRecord(id, parentId);
    if (rec === undefined) return this.naive.diffSize(id, parentId);
    return diffDirSize(this.layout.diff(id));
  }

  /** The record of a complete layer; LayerNotFoundError when absent, incomplete or reserved. */
  private async record(id: string): Promise<FullRecord> {
    const rec = await readRecord(this.layout, id);
    if (rec.incomplete) throw new LayerNotFoundError(id);
    return rec;
  }

}

/** Whether home holds at least one layer (prior-driver detection in the registry). */
export async function hasLayers(home: string): Promise<boolean> {
  try {
    return (await listLayerIds(new Overlay2Layout(home))).length > 0;
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** The InitFunc: validates options, checks kernel and filesystem, opens home. */
export async function init(home: string, options: string[]): Promise<Driver> {
  return Overlay2Driver.open(home, parseOptions(options));
}
