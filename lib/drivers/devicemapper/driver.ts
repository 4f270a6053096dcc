// driver.ts: the devicemapper driver (the engine's device set, on raw dm ioctls). Every layer is
// a thin device in one thin pool (pool.ts): the base device is a thin device formatted ext4
// in-process (native mkfsExt4), and each layer is a snapshot of its parent's device (or of the
// base), so a layer holds its whole tree and shares unchanged blocks with its parent. get()
// activates the layer's thin device, mounts it on mnt/<id> and returns mnt/<id>/rootfs; diffs
// come from NaiveDiffDriver comparing mounted trees. Owns home (layout.ts) and the dm devices
// named by its prefix; never spawns a process and never waits for udev: device nodes come from
// the device numbers the ioctls return (/dev/dm-N from devtmpfs, or a node made in nodes/).
//
// Crash safety, as the engine: every pool change (create_thin, create_snap, delete) runs in a
// transaction — transaction-metadata is written with the pool's transaction id + 1 before the
// message, the device's record after it, and `set_transaction_id` closes it. At init, an open
// transaction the pool never closed is rolled back (the device deleted, its record removed),
// so a record exists exactly for the thin devices the pool committed. Metadata files are
// replaced atomically. While a diff is applied, incomplete/<id> marks the layer.
//
// Concurrency: util/layer-locks.ts (per-layer locks, in-use locks as the cross-process mount
// count); every pool change also holds POOL_LOCK, so transactions never interleave, in this
// process or across processes.
import { promises as fsp } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApplyGuard, CreateOptions, Driver, ProtoDriver } from '../../driver';
import { dm, type DevNo, kernelDevName, parseDevString, splitDev } from '../../devmapper';
import {
  InvalidOptionError, LayerExistsError, LayerNotFoundError, NotSupportedError, ThinPoolError, hasCode,
} from '../../errors';
import { fsName, getFsMagic } from '../../fsmagic';
import { isMountOf, unmount } from '../../mount/apply';
import { NaiveDiffDriver } from '../../naive-diff';
import * as native from '../../native';
import { C } from '../../native';
import { normalizeParent, validateId } from '../../util/ids';
import { ATOMIC_TMP_PREFIX, removeFileDurably } from '../../util/atomic-file';
import { LayerLocks } from '../../util/layer-locks';
import { MarkerSet } from '../../util/markers';
import { refuseStorageOptions } from '../../util/options';
import { bytesToHuman } from '../../util/units';
import { DeviceNames, DevmapperLayout, PRIVATE_DIR_MODE } from './layout';
import { DEFAULT_BASE_SIZE, DEFAULT_BLOCK_SIZE, type DevmapperOptions, parseOptions } from './options';
import { type Pool, closePool, openPool, poolStatus } from './pool';
import {
  type DeviceRecord, type DeviceSetRecord, readDevice, readDeviceSet, readTransaction, writeDevice,
  writeDeviceSet, writeTransaction,
} from './records';

/** The registered name. */
export const DEVICEMAPPER = 'devicemapper';

/** The lock every pool change holds (not a valid id: ids cannot contain NUL). */
const POOL_LOCK = '\0pool';
/** The engine's device_hash of the base device. */
const BASE_HASH = '';
const SECTOR = 512;
/** How long a busy device is retried before remove or put gives up: 50 × 100 ms (the engine tries for 20 s). */
const REMOVE_RETRIES = 50;
const REMOVE_RETRY_MS = 100;
const ROOTFS_MODE = 0o755;

/** Drivers open in this process: the last cleanup closes the shared /dev/mapper/control fd. */
let openDrivers = 0;

export class DevmapperDriver implements ProtoDriver, ApplyGuard {
  readonly name = DEVICEMAPPER;
  private readonly incomplete: MarkerSet;
  private closed = false;

  private constructor(private readonly layout: DevmapperLayout, private readonly names: DeviceNames, private readonly pool: Pool,
    private readonly opts: DevmapperOptions, private readonly locks: LayerLocks,
    /** The home's base device size and pool block size, in bytes (metadata, else options, else defaults). */
    private readonly baseSize: number, private readonly blockSize: number) {
    this.incomplete = new MarkerSet(layout.incompleteDir);
  }

  /**
   * Checks the kernel (NotSupportedError without device-mapper or thin provisioning), makes the
   * layout, opens or makes the pool, rolls back a transaction a crash left open, and makes
   * the base device on first use.
   */
  static async open(home: string, opts: DevmapperOptions): Promise<DevmapperDriver> {
    await checkKernel();
    openDrivers++;
    try {
      const layout = new DevmapperLayout(home);
      for (const dir of [layout.home, layout.metadataDir, layout.layerRecordsDir, layout.mntDir, layout.nodesDir]) {
        await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
      }
      await new MarkerSet(layout.incompleteDir).init();
      const st = await fsp.stat(layout.home, { bigint: true });
      const names = new DeviceNames(splitDev(st.dev), st.ino);
      // Nothing to sweep on disk: an interrupted pool change is rolled back below, under the
      // pool lock, where any open transaction is necessarily a dead process's.
      const locks = await LayerLocks.open(layout.home, async () => undefined);
      try {
        return await locks.withLayers([POOL_LOCK], async () => {
          const set = await readDeviceSet(layout);
          const blockSize = set?.block_size ?? opts.blockSize ?? DEFAULT_BLOCK_SIZE;
          const p = await openPool(layout, names.pool, opts, blockSize);
          checkDeviceSet(set, opts, p);
          const driver = new DevmapperDriver(layout, names, p, opts, locks, set?.base_device_size ?? opts.baseSize ?? DEFAULT_BASE_SIZE, blockSize);
          await driver.rollbackTransaction();
          await driver.ensureBase(set);
          await driver.retryDeferredDeletes();
          return driver;
        });
      } catch (err) {
        await locks.close();
        throw err;
      }
    } catch (err) {
      await releaseControl();
      throw err;
    }
  }

  // ---- transactions (the engine's open/close transaction), under POOL_LOCK ----

  /** The pool's current transaction id. */
  private async transactionId(): Promise<number> {
    return (await poolStatus(this.pool)).transactionId;
  }

  /**
   * Runs `change` (one pool message) in a transaction; `record` writes or removes metadata
   * after it. `current` is the pool's transaction id when the caller just read it.
   */
  private async inTransaction(hash: string, deviceId: number, change: () => Promise<void>, record: (tid: number) => Promise<void>,
    current?: number): Promise<void> {
    current ??= await this.transactionId();
    const open = current + 1;
    await writeTransaction(this.layout, { open_transaction_id: open, device_hash: hash, device_id: deviceId });
    await change();
    await record(open);
    await dm.setTransactionId(this.pool.name, current, open);
  }

  /**
   * An open transaction the pool never closed: the device it made (if any) goes, with its
   * record — unless another layer's record names that thin id (a create that was refused with
   * EEXIST, or never sent, when the process died): that device is someone else's.
   */
  private async rollbackTransaction(): Promise<void> {
    const t = await readTransaction(this.layout);
    if (t === undefined) return;
    const current = await this.transactionId();
    if (t.open_transaction_id <= current) return;
    if (!(await this.idOwnedByOther(t.device_id, t.device_hash))) await this.deleteThin(t.device_id);
    await removeFileDurably(t.device_hash === BASE_HASH ? this.layout.baseRecord : this.layout.layerRecord(t.device_hash));
    if (t.device_hash !== BASE_HASH) await this.incomplete.clear(t.device_hash);
    await writeTransaction(this.layout, { open_transaction_id: current, device_hash: t.device_hash, device_id: t.device_id });
  }

  /** 'delete <id>'; a device the pool does not have (ENODATA) is already gone. */
  private async deleteThin(deviceId: number): Promise<void> {
    try {
      await dm.deleteThin(this.pool.name, deviceId);
    } catch (err) {
      if (hasCode(err, 'ENODATA')) return;
      throw err;
    }
  }

  // ---- thin ids ----

  /** Whether a record other than `hash`'s (the base's, or a layer's) names thin id `deviceId`. */
  private async idOwnedByOther(deviceId: number, hash: string): Promise<boolean> {
    if (hash !== BASE_HASH && (await readDevice(this.layout.baseRecord))?.device_id === deviceId) return true;
    for (const name of await fsp.readdir(this.layout.layerRecordsDir)) {
      if (name.startsWith(ATOMIC_TMP_PREFIX) || name === hash) continue;
      if ((await readDevice(this.layout.layerRecord(name)))?.device_id === deviceId) return true;
    }
    return false;
  }

  /**
   * Makes a thin device in a transaction, with the first id from next_device_id on that the
   * pool does not have: `make(id)` sends the message, retried with the next id on EEXIST (the
   * pool is the authority on which ids are taken; rollback never deletes an id a record owns).
   * `current`: the pool's transaction id when the caller just read it.
   */
  private async newThin(hash: string, recordFile: string, size: number, make: (id: number) => Promise<void>, initialized: boolean,
    current?: number): Promise<DeviceRecord> {
    const set = await readDeviceSet(this.layout);
    let id = (set?.next_device_id ?? 0) % (dm.MAX_THIN_ID + 1);
    for (let tries = 0; tries <= dm.MAX_THIN_ID; tries++, id = (id + 1) % (dm.MAX_THIN_ID + 1)) {
      let rec: DeviceRecord | undefined;
      try {
        // A refused message changes nothing in the pool: its transaction id stays `current`.
        await this.inTransaction(hash, id, () => make(id), async (tid) => {
          rec = { device_id: id, size, transaction_id: tid, initialized, deferred_deleted: false };
          await writeDevice(recordFile, rec);
        }, current);
      } catch (err) {
        if (hasCode(err, 'EEXIST')) continue;
        throw err;
      }
      if (set !== undefined) await writeDeviceSet(this.layout, { ...set, next_device_id: (id + 1) % (dm.MAX_THIN_ID + 1) });
      return rec!;
    }
    throw new ThinPoolError(this.pool.name, `devicemapper: no free thin device id in pool ${this.pool.name}`);
  }

  // ---- the base device ----

  /** Makes, formats and records the base device unless a complete one exists. */
  private async ensureBase(set: DeviceSetRecord | undefined): Promise<void> {
    const base = await readDevice(this.layout.baseRecord);
    if (base !== undefined && base.initialized && set !== undefined) return;
    if (base !== undefined) {
      // Interrupted while being formatted: made again from scratch, as the engine does.
      await this.deactivate(this.names.base);
      await this.inTransaction(BASE_HASH, base.device_id, () => this.deleteThin(base.device_id), () => removeFileDurably(this.layout.baseRecord));
    } else if (set === undefined && !this.pool.owned) {
      const st = await poolStatus(this.pool);
      if (st.usedDataBlocks > 0) {
        throw new ThinPoolError(this.pool.name, `devicemapper: thin pool ${this.pool.name} already holds data (${st.usedDataBlocks} blocks) ` +
          'but this home has no base device in it; refusing to use a pool another store owns');
      }
    }
    const fresh: DeviceSetRecord = {
      next_device_id: set?.next_device_id ?? 0, base_device_size: this.baseSize, base_device_fs: this.opts.fs,
      block_size: this.blockSize, ...(this.pool.owned ? {} : { thin_pool_device: this.pool.name }),
    };
    await writeDeviceSet(this.layout, fresh);
    const rec = await this.newThin(BASE_HASH, this.layout.baseRecord, this.baseSize, (id) => dm.createThin(this.pool.name, id), false);
    const dev = await this.activate(this.names.base, rec);
    try {
      const node = await dm.deviceNode(dev, { nodeDir: this.layout.nodesDir });
      // A new thin device reads zeroes where never written: nothing to zero, nothing left to lazy init.
      await native.mkfsExt4(node, { discard: false, assumeZeroed: true, ...this.opts.mkfs });
    } finally {
      await this.deactivate(this.names.base);
    }
    await writeDevice(this.layout.baseRecord, { ...rec, initialized: true });
  }

  // ---- activation and mounting ----

  /** Makes the thin device `name` for `rec` live (adopting one that is, and cancelling its deferred removal). */
  private async activate(name: string, rec: DeviceRecord): Promise<DevNo> {
    const existing = await dm.info(name);
    if (existing !== null && existing.flags.activePresent) {
      if (existing.flags.deferredRemove) await dm.cancelDeferredRemove(name);
      return existing.dev;
    }
    if (existing === null) await dm.createDevice(name);
    try {
      const params = dm.thinTable(this.pool.dev, rec.device_id);
      await dm.loadTable(name, [{ start: 0, length: rec.size / SECTOR, type: 'thin', params }]);
      return (await dm.resume(name)).dev;
    } catch (err) {
      await dm.removeDevice(name).catch(() => undefined); // the load's error is the one to report
      throw err;
    }
  }

  /**
   * Removes the dm device `name` if present, retrying while it is briefly busy (a lazily
   * unmounted filesystem letting go). With dm.use_deferred_removal a device still open after
   * that is marked for the kernel to remove at its last close; without, its EBUSY is thrown.
   * Resolves true when the device is gone, false when its removal is deferred.
   */
  private async deactivate(name: string): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      const info = await dm.info(name);
      if (info === null) return true;
      if (info.flags.deferredRemove) return false;
      try {
        await dm.removeDevice(name);
        return true;
      } catch (err) {
        if (hasCode(err, 'ENXIO')) return true;
        if (!hasCode(err, 'EBUSY')) throw err;
        if (this.opts.deferredRemoval) {
          await dm.removeDevice(name, { deferred: true });
          return false;
        }
        if (attempt >= REMOVE_RETRIES) throw err;
      }
      await sleep(REMOVE_RETRY_MS);
    }
  }

  /** Activates and mounts layer `id` (adopting what is there), then makes sure rootfs/ exists. */
  private async mountLayer(id: string, rec: DeviceRecord, mountLabel: string | undefined): Promise<void> {
    const name = this.names.layer(id);
    const dev = await this.activate(name, rec);
    const target = this.layout.mnt(id);
    try {
      // A mount already there (another process's, or a dead one's) is adopted as it is.
      if (await isMountOf(target, dev)) return;
      await fsp.mkdir(target, { recursive: true, mode: PRIVATE_DIR_MODE });
      const node = await dm.deviceNode(dev, { nodeDir: this.layout.nodesDir });
      const data = ['discard', this.opts.mountOptions, mountLabel !== undefined && mountLabel !== '' ? `context="${mountLabel}"` : '']
        .filter((o) => o !== '').join(',');
      await native.mount(node, target, this.opts.fs, 0, data);
      // As the engine: rootfs/ is made on first mount (it keeps lost+found out of the layer).
      await fsp.mkdir(this.layout.rootfs(id), { mode: ROOTFS_MODE }).catch((err: unknown) => { if (!hasCode(err, 'EEXIST')) throw err; });
    } catch (err) {
      await this.unmountLayer(id).catch(() => undefined); // the mount's error is the one to report
      throw err;
    }
  }

  /** Unmounts layer `id` (if mounted) and deactivates its device; false when the removal is deferred. */
  private async unmountLayer(id: string): Promise<boolean> {
    await unmount(this.layout.mnt(id));
    return this.deactivate(this.names.layer(id));
  }

  // ---- records ----

  /** The record of a layer that exists (not deferred-deleted), or undefined. */
  private async layerRecord(id: string): Promise<DeviceRecord | undefined> {
    const rec = await readDevice(this.layout.layerRecord(id));
    return rec === undefined || rec.deferred_deleted ? undefined : rec;
  }

  /** The record of a complete layer; LayerNotFoundError when absent or incomplete. */
  private async completeRecord(id: string): Promise<DeviceRecord> {
    const rec = await this.layerRecord(id);
    if (rec === undefined || (await this.incomplete.has(id))) throw new LayerNotFoundError(id);
    return rec;
  }

  /**
   * ThinPoolError when the pool's free data or metadata share is below dm.min_free_space, or it
   * is not writable; else the pool's status.
   */
  private async checkFreeSpace(): Promise<dm.ThinPoolStatus> {
    const st = await poolStatus(this.pool);
    if (st.mode !== 'rw') throw new ThinPoolError(this.pool.name, `devicemapper: thin pool ${this.pool.name} is ${st.mode === 'ro' ? 'read-only' : 'out of data space'}`);
    const pct = this.opts.minFreeSpacePercent;
    for (const [what, used, total] of [['data', st.usedDataBlocks, st.totalDataBlocks], ['metadata', st.usedMetadataBlocks, st.totalMetadataBlocks]] as const) {
      const minFree = Math.floor((total * pct) / 100);
      if (total - used < minFree || (pct > 0 && total - used === 0)) {
        throw new ThinPoolError(this.pool.name, `devicemapper: thin pool ${this.pool.name} has ${total - used} free ${what} blocks, less than ` +
          `the minimum ${minFree} (dm.min_free_space=${pct}%); free space in the pool or lower dm.min_free_space`);
      }
    }
    return st;
  }

  // ---- the ProtoDriver ----

  async create(id: string, parent?: string, opts?: CreateOptions): Promise<void> {
    validateId(id);
    const parentId = normalizeParent(parent);
    refuseStorageOptions(DEVICEMAPPER, opts, 'every layer has the base device size, dm.basesize; growing one would need resize2fs');
    await this.locks.withLayers(parentId === '' ? [id, POOL_LOCK] : [id, parentId, POOL_LOCK], async () => {
      if (await readDevice(this.layout.layerRecord(id)) !== undefined) throw new LayerExistsError(id);
      let origin: DeviceRecord;
      let originName: string;
      if (parentId === '') {
        const base = await readDevice(this.layout.baseRecord);
        if (base === undefined) throw new ThinPoolError(this.pool.name, 'devicemapper: the base device is missing');
        origin = base;
        originName = this.names.base;
      } else {
        origin = await this.completeRecord(parentId);
        originName = this.names.layer(parentId);
      }
      const st = await this.checkFreeSpace();
      // A marker without a record is what a crash mid-remove (rolled back at init) left.
      await this.incomplete.clear(id);
      // An active origin is suspended around the snapshot, so it is consistent.
      const active = await dm.info(originName);
      const suspendOrigin = active !== null && active.flags.activePresent && !active.flags.suspended ? originName : undefined;
      await this.newThin(id, this.layout.layerRecord(id), origin.size,
        (newId) => dm.createSnap(this.pool.name, newId, origin.device_id, suspendOrigin !== undefined ? { suspendOrigin } : {}), true,
        st.transactionId);
    });
  }

  async remove(id: string): Promise<void> {
    validateId(id);
    await this.locks.withLayers([id, POOL_LOCK], async () => {
      const rec = await this.layerRecord(id);
      if (rec === undefined) throw new LayerNotFoundError(id);
      // LayerBusyError while another process has it got; this process's own gets end here.
      await this.locks.removing(id, async () => {
        // Marked first: a crash from here on (the discard destroys the tree) leaves the layer
        // incomplete — absent, never a parent, removable — rather than whole-looking and empty.
        await this.incomplete.set(id);
        // Still active (removal deferred): something holds the device open; its blocks are not
        // discarded under it.
        const gone = await this.unmountLayer(id);
        if (this.opts.blkDiscard && gone) await this.discardLayer(id, rec);
        await this.deleteLayerDevice(id, rec);
        await fsp.rm(this.layout.mnt(id), { recursive: true, force: true });
        await this.incomplete.clear(id);
      });
    });
  }

  /** BLKDISCARD over the whole layer device, so the pool gets its blocks back at once (dm.blkdiscard). */
  private async discardLayer(id: string, rec: DeviceRecord): Promise<void> {
    const name = this.names.layer(id);
    const dev = await this.activate(name, rec);
    try {
      await native.blkDiscard(await dm.deviceNode(dev, { nodeDir: this.layout.nodesDir }), 0, rec.size);
    } finally {
      await this.deactivate(name);
    }
  }

  /**
   * Deletes the layer's thin device and record in a transaction. A device the kernel will not
   * delete yet (EBUSY: still open, e.g. a deferred removal pending) is, with
   * dm.use_deferred_deletion, marked deferred_deleted (gone from view, deleted later);
   * otherwise the error is thrown and the layer stays.
   */
  private async deleteLayerDevice(id: string, rec: DeviceRecord): Promise<void> {
    const file = this.layout.layerRecord(id);
    try {
      await this.inTransaction(id, rec.device_id, () => this.deleteThin(rec.device_id), () => removeFileDurably(file));
    } catch (err) {
      if (!hasCode(err, 'EBUSY') || !this.opts.deferredDeletion) throw err;
      await writeDevice(file, { ...rec, deferred_deleted: true });
    }
  }

  /** Deletes the devices of deferred-deleted layers that are no longer busy. Under POOL_LOCK. */
  private async retryDeferredDeletes(): Promise<number> {
    let left = 0;
    for (const id of await fsp.readdir(this.layout.layerRecordsDir)) {
      if (id.startsWith(ATOMIC_TMP_PREFIX)) continue;
      const rec = await readDevice(this.layout.layerRecord(id));
      if (rec === undefined || !rec.deferred_deleted) continue;
      const info = await dm.info(this.names.layer(id));
      if (info !== null) {
        left++;
        continue; // still active (its deferred removal has not happened yet)
      }
      try {
        await this.inTransaction(id, rec.device_id, () => this.deleteThin(rec.device_id), () => removeFileDurably(this.layout.layerRecord(id)));
      } catch (err) {
        if (!hasCode(err, 'EBUSY')) throw err;
        left++;
      }
    }
    return left;
  }

  async get(id: string, mountLabel?: string): Promise<string> {
    validateId(id);
    return this.locks.withLayer(id, async () => {
      const rec = await this.completeRecord(id);
      // Another process's mount of the layer is adopted, not mounted twice.
      await this.locks.use(id, () => this.mountLayer(id, rec, mountLabel));
      return this.layout.rootfs(id);
    });
  }

  async put(id: string): Promise<void> {
    validateId(id);
    await this.locks.withLayer(id, async () => {
      // Unmounted and deactivated only when no other process has the layer got.
      await this.locks.unuse(id, () => this.unmountLayer(id));
    });
  }

  async exists(id: string): Promise<boolean> {
    validateId(id);
    return (await this.layerRecord(id)) !== undefined && !(await this.incomplete.has(id));
  }

  async status(): Promise<Array<[string, string]>> {
    const st = await poolStatus(this.pool);
    const blockBytes = this.blockSize;
    const metaBlockBytes = 4096;
    const ids = (await fsp.readdir(this.layout.layerRecordsDir)).filter((n) => !n.startsWith(ATOMIC_TMP_PREFIX));
    const out: Array<[string, string]> = [
      ['Pool Name', this.pool.name],
      ['Pool Blocksize', bytesToHuman(blockBytes)],
      ['Base Device Size', bytesToHuman(this.baseSize)],
      ['Backing Filesystem', this.opts.fs],
      ['Udev Sync Supported', 'false (not needed: device nodes come from the ioctls\' device numbers)'],
    ];
    // As the engine: the devices the pool is on, and the loop files behind them.
    const [metaDev, dataDev] = (await dm.table(this.pool.name)).targets[0]?.params.trim().split(/\s+/) ?? [];
    out.push(['Data file', await devicePathOf(dataDev)], ['Metadata file', await devicePathOf(metaDev)]);
    if (this.pool.owned && this.opts.dataDevice === undefined) {
      out.push(['Data loop file', this.pool.dataPath ?? ''], ['Metadata loop file', this.pool.metadataPath ?? '']);
    }
    const space = (used: number, total: number, unit: number): Array<[string, string]> => [
      ['Used', bytesToHuman(used * unit)], ['Total', bytesToHuman(total * unit)], ['Available', bytesToHuman((total - used) * unit)],
    ];
    for (const [k, v] of space(st.usedDataBlocks, st.totalDataBlocks, blockBytes)) out.push([`Data Space ${k}`, v]);
    for (const [k, v] of space(st.usedMetadataBlocks, st.totalMetadataBlocks, metaBlockBytes)) out.push([`Metadata Space ${k}`, v]);
    out.push(
      ['Thin Pool Minimum Free Space', bytesToHuman(Math.floor((st.totalDataBlocks * this.opts.minFreeSpacePercent) / 100) * blockBytes)],
      ['Deferred Removal Enabled', String(this.opts.deferredRemoval)],
      ['Deferred Deletion Enabled', String(this.opts.deferredDeletion)],
      ['Deferred Deleted Device Count', String(await this.countDeferredDeleted(ids))],
      ['Layers', String(ids.length)],
      ['Home Filesystem', fsName(await getFsMagic(this.layout.home))],
    );
    return out;
  }

  private async countDeferredDeleted(ids: string[]): Promise<number> {
    let n = 0;
    for (const id of ids) if ((await readDevice(this.layout.layerRecord(id)))?.deferred_deleted === true) n++;
    return n;
  }

  guardApply<T>(id: string, apply: () => Promise<T>): Promise<T> {
    validateId(id);
    return this.locks.applyGuarded(id, async () => (await this.layerRecord(id)) !== undefined, this, apply);
  }

  async beginApply(id: string): Promise<void> {
    validateId(id);
    await this.incomplete.set(id);
  }

  async endApply(id: string): Promise<void> {
    validateId(id);
    // The layer is mounted while a diff is applied (NaiveDiffDriver holds a get): sync its filesystem.
    const fd = await native.open(this.layout.rootfs(id), C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW, 0);
    try {
      await native.syncfs(fd);
    } finally {
      native.closeSync(fd);
    }
    await this.incomplete.clear(id);
  }

  /**
   * Unmounts and deactivates every layer this process got (those no other process has got),
   * retries deferred deletions, and — when no other process has the home open — removes the
   * pool the driver made (its loops autoclear). The driver is not used afterwards.
   */
  async cleanup(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.locks.withLayers([POOL_LOCK], () => this.retryDeferredDeletes());
      await this.locks.close((id) => this.unmountLayer(id), async () => {
        await this.deactivate(this.names.base);
        await closePool(this.pool);
      });
    } finally {
      await releaseControl();
    }
  }

  toString(): string {
    return this.name;
  }
}

/** /dev/<kernel name> of a table's 'major:minor' (what the engine's status shows), or the number itself. */
async function devicePathOf(devString: string | undefined): Promise<string> {
  const dev = devString === undefined ? undefined : parseDevString(devString);
  if (dev === undefined) return devString ?? '';
  const name = await kernelDevName(dev);
  return name === undefined ? devString! : `/dev/${name}`;
}

/** NotSupportedError unless the kernel has device-mapper (DM_VERSION answers) and the thin-pool target. */
async function checkKernel(): Promise<void> {
  let what = 'no device-mapper in this kernel';
  try {
    await dm.version();
    what = 'the kernel has no thin-pool target (dm-thin-pool)';
    await dm.targetVersion('thin-pool');
  } catch (err) {
    await releaseControlIfUnused();
    throw new NotSupportedError(`devicemapper: ${what} (${(err as Error).message})`, { cause: err });
  }
}

async function releaseControlIfUnused(): Promise<void> {
  if (openDrivers === 0) await dm.closeControl();
}

/** One open driver fewer; the last one closes the control fd (so a closed driver leaves no fd). */
async function releaseControl(): Promise<void> {
  openDrivers = Math.max(0, openDrivers - 1);
  await releaseControlIfUnused();
}

/** InvalidOptionError when the options contradict what the home was made with. */
function checkDeviceSet(set: DeviceSetRecord | undefined, opts: DevmapperOptions, pool: Pool): void {
  if (set === undefined) return;
  if (opts.blockSize !== undefined && set.block_size !== opts.blockSize) {
    throw new InvalidOptionError(`devicemapper: dm.blocksize ${bytesToHuman(opts.blockSize)} differs from the pool's ${bytesToHuman(set.block_size)}; it cannot change`);
  }
  if (set.base_device_fs !== opts.fs) throw new InvalidOptionError(`devicemapper: dm.fs ${opts.fs} differs from the base device's ${set.base_device_fs}`);
  if (opts.baseSize !== undefined && set.base_device_size !== opts.baseSize) {
    throw new InvalidOptionError(`devicemapper: dm.basesize ${bytesToHuman(opts.baseSize)} differs from the base device's ${bytesToHuman(set.base_device_size)}; ` +
      'changing the size of an existing base device is not supported');
  }
  if ((set.thin_pool_device ?? pool.name) !== pool.name) {
    throw new InvalidOptionError(`devicemapper: this home was made on thin pool ${set.thin_pool_device ?? ''}, not ${pool.name}`);
  }
}

/** Whether home has a base device record (prior-driver detection in the registry). */
export async function hasLayers(home: string): Promise<boolean> {
  try {
    await fsp.stat(new DevmapperLayout(home).baseRecord);
    return true;
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** The InitFunc: validates options, checks the kernel, opens (or makes) the pool and base device. */
export async function init(home: string, options: string[]): Promise<Driver> {
  const opts = parseOptions(options);
  return new NaiveDiffDriver(await DevmapperDriver.open(home, opts));
}

