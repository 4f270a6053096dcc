// pool.ts: the thin pool under a devicemapper home. By default the driver's own pool on two
// sparse loopback files (layout.ts), or on dm.datadev/dm.metadatadev; with dm.thinpooldev an
// existing pool that the driver only uses (never creates or removes). Every step is an ioctl
// (lib/devmapper/): loop attach, DM_DEV_CREATE, DM_TABLE_LOAD, resume; no udev, no dmsetup.
import { constants as fsc, promises as fsp } from 'node:fs';
import { PrerequisitesError, ThinPoolError, hasCode } from '../../errors';
import { type DevNo, dm, loop, splitDev } from '../../devmapper';
import * as native from '../../native';
import type { DevmapperLayout } from './layout';
import type { DevmapperOptions } from './options';

/** The engine's low water mark, in data blocks (a dm event when free space drops below it). */
const LOW_WATER_BLOCKS = 32768;
const SECTOR = 512;

/** A pool the driver uses: its dm name, device number, and whether the driver made it. */
export interface Pool {
  name: string;
  dev: DevNo;
  /** The driver made it (loopback or datadev pool) and may remove it at cleanup. */
  owned: boolean;
  /** The backing of an owned pool, for status(). */
  dataPath: string | undefined;
  metadataPath: string | undefined;
}

/** The block device number of a node (dm.datadev, dm.metadatadev). */
async function blockDevOf(p: string, option: string): Promise<DevNo> {
  const st = await fsp.stat(p);
  if (!st.isBlockDevice()) throw new PrerequisitesError(`devicemapper: ${option} ${p} is not a block device`);
  return splitDev(st.rdev);
}

/** Makes `file` a sparse file of `size` bytes if it does not exist; its size otherwise. */
async function ensureSparseFile(file: string, size: number): Promise<number> {
  const fh = await fsp.open(file, fsc.O_RDWR | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600);
  try {
    const st = await fh.stat();
    if (st.size === 0) {
      await fh.truncate(size);
      await fh.sync();
      return size;
    }
    return st.size;
  } finally {
    await fh.close();
  }
}

/**
 * The pool to use: an existing one of ours (a process before us made it), the external
 * dm.thinpooldev, or a new one on loop files / data and metadata devices with `blockSize`
 * (bytes) blocks.
 */
export async function openPool(layout: DevmapperLayout, name: string, opts: DevmapperOptions, blockSize: number): Promise<Pool> {
  if (opts.thinPoolDevice !== undefined) {
    const info = await dm.info(opts.thinPoolDevice);
    if (info === null) throw new PrerequisitesError(`devicemapper: dm.thinpooldev ${opts.thinPoolDevice}: no such device-mapper device`);
    const t = await dm.table(opts.thinPoolDevice);
    if (t.targets.length !== 1 || t.targets[0]!.type !== 'thin-pool') {
      throw new PrerequisitesError(`devicemapper: dm.thinpooldev ${opts.thinPoolDevice} is not a thin-pool device`);
    }
    return { name: opts.thinPoolDevice, dev: info.dev, owned: false, dataPath: undefined, metadataPath: undefined };
  }
  const paths = opts.dataDevice !== undefined
    ? { data: opts.dataDevice, metadata: opts.metadataDevice! }
    : { data: layout.dataFile, metadata: layout.metadataFile };
  const existing = await dm.info(name);
  if (existing !== null && existing.flags.activePresent) return { name, dev: existing.dev, owned: true, dataPath: paths.data, metadataPath: paths.metadata };
  // A device left with no live table (a crash between create and resume) is made again.
  if (existing !== null) await dm.removeDevice(name);

  const attached: loop.LoopDevice[] = [];
  try {
    let dataDev: DevNo;
    let metaDev: DevNo;
    let dataBytes: number;
    if (opts.dataDevice !== undefined) {
      dataDev = await blockDevOf(paths.data, 'dm.datadev');
      metaDev = await blockDevOf(paths.metadata, 'dm.metadatadev');
      dataBytes = await native.blkGetSize64(paths.data);
    } else {
      await fsp.mkdir(layout.loopDir, { recursive: true, mode: 0o700 });
      dataBytes = await ensureSparseFile(paths.data, opts.loopDataSize);
      await ensureSparseFile(paths.metadata, opts.loopMetadataSize);
      // Autoclear: the loops go away with the pool that holds them; kept open until then.
      const data = await loop.attachLoop(paths.data, { autoclear: true, nodeDir: layout.nodesDir });
      attached.push(data);
      const meta = await loop.attachLoop(paths.metadata, { autoclear: true, nodeDir: layout.nodesDir });
      attached.push(meta);
      dataDev = data.dev;
      metaDev = meta.dev;
    }
    const blockSectors = blockSize / SECTOR;
    const dataBlocks = Math.floor(dataBytes / blockSize);
    if (dataBlocks < 1) throw new PrerequisitesError(`devicemapper: the data device (${dataBytes} bytes) is smaller than one pool block`);
    const lowWater = Math.min(LOW_WATER_BLOCKS, Math.max(1, Math.floor(dataBlocks / 10)));
    // error_if_no_space (not in the engine's table): a full pool fails writes at once with
    // ENOSPC instead of queueing them for dm-thin's no_space_timeout (60 s), during which
    // every writer of every layer hangs.
    const params = dm.thinPoolTable(metaDev, dataDev, blockSectors, lowWater, ['skip_block_zeroing', 'error_if_no_space']);
    await dm.createDevice(name);
    try {
      await dm.loadTable(name, [{ start: 0, length: dataBlocks * blockSectors, type: 'thin-pool', params }]);
      const info = await dm.resume(name);
      return { name, dev: info.dev, owned: true, dataPath: paths.data, metadataPath: paths.metadata };
    } catch (err) {
      await dm.removeDevice(name).catch(() => undefined); // the load's error is the one to report
      throw err;
    }
  } finally {
    // The pool (if made) holds the loops now; closing our fds lets autoclear work.
    for (const l of attached) if (l.fd !== undefined) native.closeSync(l.fd);
  }
}

/** The pool's status line, parsed; ThinPoolError when the pool has failed. */
export async function poolStatus(pool: Pool): Promise<dm.ThinPoolStatus> {
  const st = await dm.tableStatus(pool.name, { noFlush: true });
  const target = st.targets[0];
  if (target === undefined || target.type !== 'thin-pool') throw new ThinPoolError(pool.name, `devicemapper: ${pool.name} is not a thin pool`);
  const parsed = dm.parseThinPoolStatus(target.params);
  if (parsed === null) throw new ThinPoolError(pool.name, `devicemapper: thin pool ${pool.name} has failed (status: Fail)`);
  return parsed;
}

/**
 * Removes a pool the driver made, unless a thin device still uses it (open count above zero):
 * then it stays for whoever uses it. The loops autoclear when it goes.
 */
export async function closePool(pool: Pool): Promise<boolean> {
  if (!pool.owned) return false;
  const info = await dm.info(pool.name);
  if (info === null) return true;
  if (info.openCount > 0) return false;
  try {
    await dm.removeDevice(pool.name);
    return true;
  } catch (err) {
    if (hasCode(err, 'EBUSY')) return false; // opened meanwhile: it stays
    throw err;
  }
}
