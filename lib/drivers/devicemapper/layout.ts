// layout.ts: devicemapper's on-disk layout, documented once; every on-disk name is a constant
// here. Pure path and name arithmetic: no filesystem access here.
//
//   home/                      <root>/devicemapper, mode 0700
//     devicemapper/            LOOP_DIR, 0700: the loopback pool's backing files (the engine's
//       data                   names), sparse: `data` (dm.loopdatasize, default 100G) and
//       metadata               `metadata` (dm.loopmetadatasize, default 2G); absent with
//                              dm.thinpooldev or dm.datadev/dm.metadatadev
//     metadata/                METADATA_DIR, 0700: JSON, each file replaced atomically
//       deviceset-metadata     the pool's settings this home was made with (block size, base
//                              size, filesystem) and the next thin id to try
//       transaction-metadata   the open transaction: {open_transaction_id, device_id, device_hash}
//       base                   the base device's record
//       layers/<id>            each layer's record: {device_id, size, transaction_id,
//                              initialized, deferred_deleted}
//     mnt/<id>/                where get() mounts the layer's thin device; get returns
//                              mnt/<id>/rootfs (the layer's tree; lost+found stays outside)
//     nodes/                   block device nodes made with mknod when /dev has none (no udev)
//     incomplete/<id>          a diff is being applied to the layer (or one failed)
//     locks/                   flock(2) files shared by every process (util/layer-locks.ts)
//
// Device-mapper names: every device of a home starts with its prefix,
// `graphdriver-<major>:<minor>-<inode>` of home, so two homes never collide: the pool is
// `<prefix>-pool`, the base device `<prefix>-base`, a layer's thin device `<prefix>-<h>` with
// <h> the first 40 hex digits of sha256(id) (ids may be 255 bytes; dm names at most 127, and
// a hash never equals 'base' or 'pool').
//
// Why per-layer records under metadata/layers/ rather than the engine's metadata/<hash>: our ids
// are free-form, so an id could be 'base' or 'deviceset-metadata'; a directory of their own
// keeps every id valid.
import { createHash } from 'node:crypto';
import * as path from 'node:path';

export const LOOP_DIR = 'devicemapper';
export const DATA_FILE = 'data';
export const METADATA_FILE = 'metadata';
export const METADATA_DIR = 'metadata';
export const DEVICESET_FILE = 'deviceset-metadata';
export const TRANSACTION_FILE = 'transaction-metadata';
export const BASE_RECORD = 'base';
export const LAYER_RECORDS_DIR = 'layers';
export const MNT_DIR = 'mnt';
export const ROOTFS_DIR = 'rootfs';
export const NODES_DIR = 'nodes';
export const INCOMPLETE_DIR = 'incomplete';
export const PRIVATE_DIR_MODE = 0o700;

export class DevmapperLayout {
  readonly home: string;
  readonly loopDir: string;
  readonly dataFile: string;
  readonly metadataFile: string;
  readonly metadataDir: string;
  readonly devicesetFile: string;
  readonly transactionFile: string;
  readonly baseRecord: string;
  readonly layerRecordsDir: string;
  readonly mntDir: string;
  readonly nodesDir: string;
  readonly incompleteDir: string;

  constructor(home: string) {
    this.home = path.resolve(home);
    this.loopDir = path.join(this.home, LOOP_DIR);
    this.dataFile = path.join(this.loopDir, DATA_FILE);
    this.metadataFile = path.join(this.loopDir, METADATA_FILE);
    this.metadataDir = path.join(this.home, METADATA_DIR);
    this.devicesetFile = path.join(this.metadataDir, DEVICESET_FILE);
    this.transactionFile = path.join(this.metadataDir, TRANSACTION_FILE);
    this.baseRecord = path.join(this.metadataDir, BASE_RECORD);
    this.layerRecordsDir = path.join(this.metadataDir, LAYER_RECORDS_DIR);
    this.mntDir = path.join(this.home, MNT_DIR);
    this.nodesDir = path.join(this.home, NODES_DIR);
    this.incompleteDir = path.join(this.home, INCOMPLETE_DIR);
  }

  /** metadata/layers/<id>. `id` must be validated. */
  layerRecord(id: string): string {
    return path.join(this.layerRecordsDir, id);
  }

  /** mnt/<id>: the layer's mount point. */
  mnt(id: string): string {
    return path.join(this.mntDir, id);
  }

  /** mnt/<id>/rootfs: what get() returns. */
  rootfs(id: string): string {
    return path.join(this.mntDir, id, ROOTFS_DIR);
  }
}

/** The device-mapper names of one home. */
export class DeviceNames {
  /** `graphdriver-<major>:<minor>-<inode>` of home. */
  readonly prefix: string;

  constructor(homeDev: { major: number; minor: number }, homeIno: bigint | number) {
    this.prefix = `graphdriver-${homeDev.major}:${homeDev.minor}-${homeIno}`;
  }

  get pool(): string {
    return `${this.prefix}-pool`;
  }

  get base(): string {
    return `${this.prefix}-base`;
  }

  /** The thin device name of layer `id`. */
  layer(id: string): string {
    return `${this.prefix}-${createHash('sha256').update(id).digest('hex').slice(0, 40)}`;
  }
}
