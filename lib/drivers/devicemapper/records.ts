// records.ts: devicemapper's metadata files (layout.ts), read and written as JSON with the
// engine's field names; every write is atomic (util/atomic-file.ts). A record that exists but
// cannot be parsed is an error naming the file, never silently treated as absent.
import { promises as fsp } from 'node:fs';
import { CorruptMetadataError, hasCode } from '../../errors';
import { writeFileAtomic } from '../../util/atomic-file';
import type { DevmapperLayout } from './layout';

/** One thin device (the base or a layer): the engine's DevInfo. */
export interface DeviceRecord {
  device_id: number;
  /** Bytes. */
  size: number;
  transaction_id: number;
  /** The base device: formatted and ready to be snapshotted. Layers: always true. */
  initialized: boolean;
  /** Removed from view, its thin device still to be deleted (dm.use_deferred_deletion). */
  deferred_deleted: boolean;
}

/** The pool settings a home was made with, and the next thin id to try. */
export interface DeviceSetRecord {
  next_device_id: number;
  base_device_size: number;
  base_device_fs: string;
  /** Pool block size in bytes. */
  block_size: number;
  /** The external pool's name, when dm.thinpooldev made this home. */
  thin_pool_device?: string;
}

/** The transaction in progress: the engine's transaction-metadata. */
export interface TransactionRecord {
  open_transaction_id: number;
  device_hash: string;
  device_id: number;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

async function readJson(file: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return undefined;
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CorruptMetadataError(file, (err as Error).message);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new CorruptMetadataError(file, 'not a JSON object');
  return value as Record<string, unknown>;
}

function deviceRecord(file: string, o: Record<string, unknown>): DeviceRecord {
  if (!isCount(o.device_id) || !isCount(o.size) || !isCount(o.transaction_id)) {
    throw new CorruptMetadataError(file, 'device_id, size and transaction_id must be non-negative integers');
  }
  return {
    device_id: o.device_id, size: o.size, transaction_id: o.transaction_id,
    initialized: o.initialized === true, deferred_deleted: o.deferred_deleted === true,
  };
}

export async function readDevice(file: string): Promise<DeviceRecord | undefined> {
  const o = await readJson(file);
  return o === undefined ? undefined : deviceRecord(file, o);
}

export async function writeDevice(file: string, rec: DeviceRecord): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(rec));
}

export async function readDeviceSet(layout: DevmapperLayout): Promise<DeviceSetRecord | undefined> {
  const file = layout.devicesetFile;
  const o = await readJson(file);
  if (o === undefined) return undefined;
  if (!isCount(o.next_device_id) || !isCount(o.base_device_size) || !isCount(o.block_size) || typeof o.base_device_fs !== 'string') {
    throw new CorruptMetadataError(file, 'next_device_id, base_device_size, block_size and base_device_fs are required');
  }
  const out: DeviceSetRecord = {
    next_device_id: o.next_device_id, base_device_size: o.base_device_size, base_device_fs: o.base_device_fs, block_size: o.block_size,
  };
  if (typeof o.thin_pool_device === 'string') out.thin_pool_device = o.thin_pool_device;
  return out;
}

export async function writeDeviceSet(layout: DevmapperLayout, rec: DeviceSetRecord): Promise<void> {
  await writeFileAtomic(layout.devicesetFile, JSON.stringify(rec));
}

export async function readTransaction(layout: DevmapperLayout): Promise<TransactionRecord | undefined> {
  const file = layout.transactionFile;
  const o = await readJson(file);
  if (o === undefined) return undefined;
  if (!isCount(o.open_transaction_id) || !isCount(o.device_id) || typeof o.device_hash !== 'string') {
    throw new CorruptMetadataError(file, 'open_transaction_id, device_id and device_hash are required');
  }
  return { open_transaction_id: o.open_transaction_id, device_hash: o.device_hash, device_id: o.device_id };
}

export async function writeTransaction(layout: DevmapperLayout, rec: TransactionRecord): Promise<void> {
  await writeFileAtomic(layout.transactionFile, JSON.stringify(rec));
}
