// dm.ts: a thin typed layer over the device-mapper ioctls (native/dm.cc), like the engine's
// pkg/devicemapper: devices by name (or {uuid}, or a device number), tables, suspend/resume,
// deferred removal, target messages, and the thin-pool helpers (messages, table lines, status
// parsers). No driver policy: what to create, when to retry, how to recover is the caller's.
//
// One control fd per process, opened on first use and kept (a failed open is not cached, so a
// later call tries again); closeControl() closes it. Syscall failures are the native
// SyscallError as is (code ENXIO / EEXIST / EBUSY..., syscall 'DM_DEV_CREATE', path the device);
// arguments the kernel would refuse anyway (names, uuids, thin ids, table values) are refused
// first with InvalidArgumentError. Sectors are 512 bytes; every count is a JS number.
import { hasCode, InvalidArgumentError } from '../errors';
import * as native from '../native';
import { closeSync, DM } from '../native';
import type { DevNo, DmDevId, DmInfo, DmListEntry, DmTableStatus, DmTargetSpec, DmVersion } from '../native';
import { blockDeviceNode, devString } from './devno';
import type { BlockNodeOptions } from './devno';

export type { DevNo, DmInfo, DmListEntry, DmTableStatus, DmTarget, DmTargetSpec, DmVersion } from '../native';

/** Bytes per sector in every dm table and status. */
export const SECTOR_SIZE = 512;
/** dm names: at most DM_NAME_LEN - 1 bytes; uuids: DM_UUID_LEN - 1. */
export const MAX_NAME_BYTES = 127;
export const MAX_UUID_BYTES = 128;
/** Thin device ids are 24-bit. */
export const MAX_THIN_ID = 2 ** 24 - 1;

/** A device: its name, or {uuid}, or its device number. */
export type DeviceRef = string | { uuid: string } | DevNo;

let controlFd: Promise<number> | undefined;

/** The process's /dev/mapper/control fd (ENOENT when the kernel has no device-mapper). */
export function control(): Promise<number> {
  if (controlFd === undefined) {
    const opening = native.dmOpenControl(null);
    controlFd = opening;
    opening.catch(() => {
      if (controlFd === opening) controlFd = undefined;
    });
  }
  return controlFd;
}

/** Closes the cached control fd (the next call opens a new one). */
export async function closeControl(): Promise<void> {
  const p = controlFd;
  controlFd = undefined;
  if (p === undefined) return;
  let fd: number;
  try {
    fd = await p;
  } catch {
    return;
  }
  closeSync(fd);
}

/** Refuses a name the kernel would: empty, over 127 bytes, with '/' or NUL, or control/./.. . */
export function validateName(name: string): void {
  const bytes = Buffer.byteLength(name);
  if (bytes === 0 || bytes > MAX_NAME_BYTES) {
    throw new InvalidArgumentError('name', `device-mapper name must be 1-${MAX_NAME_BYTES} bytes, got ${bytes}: ${JSON.stringify(name)}`);
  }
  if (name.includes('/') || name.includes('\0')) {
    throw new InvalidArgumentError('name', `device-mapper name must not contain '/' or NUL: ${JSON.stringify(name)}`);
  }
  if (name === 'control' || name === '.' || name === '..') {
    throw new InvalidArgumentError('name', `device-mapper name cannot be ${JSON.stringify(name)}`);
  }
}

/** Refuses a uuid over 128 bytes or with NUL ('' means none). */
export function validateUuid(uuid: string): void {
  const bytes = Buffer.byteLength(uuid);
  if (bytes > MAX_UUID_BYTES || uuid.includes('\0')) {
    throw new InvalidArgumentError('uuid', `device-mapper uuid must be at most ${MAX_UUID_BYTES} bytes without NUL: ${JSON.stringify(uuid)}`);
  }
}

function toId(ref: DeviceRef): DmDevId {
  if (typeof ref === 'string') {
    validateName(ref);
    return ref;
  }
  if ('uuid' in ref) {
    validateUuid(ref.uuid);
    if (ref.uuid === '') throw new InvalidArgumentError('uuid', 'device-mapper uuid must not be empty to name a device');
    return { uuid: ref.uuid };
  }
  if (!Number.isInteger(ref.major) || !Number.isInteger(ref.minor) || ref.major <= 0 || ref.major > 0xfff ||
      ref.minor < 0 || ref.minor > 0xfffff) {
    throw new InvalidArgumentError('dev', `not a device number: ${devString(ref)}`);
  }
  return { major: ref.major, minor: ref.minor };
}

/** The kernel's dm ioctl interface version. Rejects ENOENT (open of /dev/mapper/control) without device-mapper. */
export async function version(): Promise<DmVersion> {
  return native.dmVersion(await control());
}

/** Every dm device: name, device number, event number and uuid where the kernel reports them. */
export async function listDevices(): Promise<DmListEntry[]> {
  return native.dmListDevices(await control());
}

/** A target's version, loading its module first (e.g. 'thin-pool'); EINVAL when there is no such target. */
export async function targetVersion(target: string): Promise<[number, number, number]> {
  return native.dmGetTargetVersion(await control(), target);
}

/** DM_DEV_CREATE: a device with no table yet. EEXIST when the name or uuid is taken. */
export async function createDevice(name: string, uuid?: string): Promise<DmInfo> {
  validateName(name);
  if (uuid !== undefined) validateUuid(uuid);
  return native.dmDevCreate(await control(), name, uuid ?? null, 0);
}

/** DM_TABLE_LOAD: loads `targets` as the device's inactive table; resume() makes it live. */
export async function loadTable(dev: DeviceRef, targets: DmTargetSpec[], opts: { readOnly?: boolean } = {}): Promise<DmInfo> {
  const id = toId(dev);
  if (targets.length === 0) throw new InvalidArgumentError('targets', 'a table needs at least one target');
  for (const [i, t] of targets.entries()) {
    if (Buffer.byteLength(t.type) === 0 || Buffer.byteLength(t.type) >= DM.DM_MAX_TYPE_NAME) {
      throw new InvalidArgumentError('targets', `targets[${i}].type must be 1-${DM.DM_MAX_TYPE_NAME - 1} bytes: ${JSON.stringify(t.type)}`);
    }
  }
  return native.dmTableLoad(await control(), id, targets, opts.readOnly === true ? DM.DM_READONLY_FLAG : 0);
}

/** DM_TABLE_CLEAR: drops a loaded, not yet resumed table. */
export async function clearTable(dev: DeviceRef): Promise<DmInfo> {
  const id = toId(dev);
  return native.dmTableClear(await control(), id);
}

export interface SuspendOptions {
  /** DM_NOFLUSH_FLAG: do not flush queued I/O (a thin-pool out of space keeps it queued). */
  noFlush?: boolean;
  /** DM_SKIP_LOCKFS_FLAG: do not freeze a filesystem mounted on the device. */
  skipLockfs?: boolean;
}

function suspendFlags(opts: SuspendOptions): number {
  return (opts.noFlush === true ? DM.DM_NOFLUSH_FLAG : 0) | (opts.skipLockfs === true ? DM.DM_SKIP_LOCKFS_FLAG : 0);
}

/** DM_DEV_SUSPEND with DM_SUSPEND_FLAG: I/O is held until resume(). A suspended device stays suspended. */
export async function suspend(dev: DeviceRef, opts: SuspendOptions = {}): Promise<DmInfo> {
  const id = toId(dev);
  return native.dmDevSuspend(await control(), id, DM.DM_SUSPEND_FLAG | suspendFlags(opts));
}

/** DM_DEV_SUSPEND without DM_SUSPEND_FLAG: makes a loaded table live and lets I/O through. */
export async function resume(dev: DeviceRef, opts: SuspendOptions = {}): Promise<DmInfo> {
  const id = toId(dev);
  return native.dmDevSuspend(await control(), id, suspendFlags(opts));
}

/**
 * DM_DEV_REMOVE. EBUSY while the device is open, unless `deferred`: then an open device is
 * only marked (info().flags.deferredRemove) and the kernel removes it at its last close.
 */
export async function removeDevice(dev: DeviceRef, opts: { deferred?: boolean } = {}): Promise<void> {
  const id = toId(dev);
  return native.dmDevRemove(await control(), id, opts.deferred === true ? DM.DM_DEFERRED_REMOVE : 0);
}

/** Takes back a deferred removal ('@cancel_deferred_remove'); ENXIO if none is pending. */
export async function cancelDeferredRemove(dev: DeviceRef): Promise<void> {
  const id = toId(dev);
  await native.dmTargetMsg(await control(), id, 0, '@cancel_deferred_remove');
}

/** DM_DEV_STATUS: the device's info, or null when there is no such device (ENXIO). */
export async function info(dev: DeviceRef): Promise<DmInfo | null> {
  try {
    const id = toId(dev);
    return await native.dmDevStatus(await control(), id);
  } catch (err) {
    if (hasCode(err, 'ENXIO')) return null;
    throw err;
  }
}

export interface TableQueryOptions {
  /** DM_QUERY_INACTIVE_TABLE_FLAG: the loaded, not yet live table. */
  inactive?: boolean;
}

/**
 * DM_TABLE_STATUS: info and each target's status line. `noFlush` (DM_NOFLUSH_FLAG) keeps a
 * thin-pool from committing its metadata just to answer.
 */
export async function tableStatus(dev: DeviceRef, opts: TableQueryOptions & { noFlush?: boolean } = {}): Promise<DmTableStatus> {
  const flags = (opts.inactive === true ? DM.DM_QUERY_INACTIVE_TABLE_FLAG : 0) | (opts.noFlush === true ? DM.DM_NOFLUSH_FLAG : 0);
  const id = toId(dev);
  return native.dmTableStatus(await control(), id, flags);
}

/** DM_TABLE_STATUS with DM_STATUS_TABLE_FLAG: info and each target's table line as the kernel keeps it. */
export async function table(dev: DeviceRef, opts: TableQueryOptions = {}): Promise<DmTableStatus> {
  const flags = DM.DM_STATUS_TABLE_FLAG | (opts.inactive === true ? DM.DM_QUERY_INACTIVE_TABLE_FLAG : 0);
  const id = toId(dev);
  return native.dmTableStatus(await control(), id, flags);
}

/** DM_TABLE_DEPS: the device numbers the table uses. */
export async function deps(dev: DeviceRef, opts: TableQueryOptions = {}): Promise<DevNo[]> {
  const id = toId(dev);
  return native.dmTableDeps(await control(), id, opts.inactive === true ? DM.DM_QUERY_INACTIVE_TABLE_FLAG : 0);
}

/** DM_TARGET_MSG to the target at `sector`: its answer, or null when it gave none. */
export async function message(dev: DeviceRef, sector: number, msg: string): Promise<string | null> {
  if (!Number.isSafeInteger(sector) || sector < 0) throw new InvalidArgumentError('sector', `not a sector: ${sector}`);
  const id = toId(dev);
  return native.dmTargetMsg(await control(), id, sector, msg);
}

/**
 * A block device node for a dm device: /dev/dm-N (devtmpfs) when present with the right
 * rdev, else one made in `opts.nodeDir` (see devno.blockDeviceNode). /dev/mapper/<name>
 * symlinks are udev's and are never looked for.
 */
export async function deviceNode(dev: DeviceRef, opts: Pick<BlockNodeOptions, 'nodeDir'> = {}): Promise<string> {
  const id = toId(dev);
  const num = typeof id !== 'string' && !('uuid' in id) && !('name' in id) ? id : (await native.dmDevStatus(await control(), id)).dev;
  return blockDeviceNode(num, opts);
}

// ---- thin provisioning (Documentation/admin-guide/device-mapper/thin-provisioning.rst) ----

function checkThinId(what: string, id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_THIN_ID) {
    throw new InvalidArgumentError(what, `thin device id must be an integer 0..${MAX_THIN_ID}, got ${id}`);
  }
}

/** 'create_thin <id>': a new, empty thin device in the pool. EEXIST-like failures come back as EINVAL/EEXIST from the kernel. */
export async function createThin(pool: DeviceRef, id: number): Promise<void> {
  checkThinId('id', id);
  await message(pool, 0, `create_thin ${id}`);
}

/**
 * 'create_snap <id> <originId>': a snapshot of thin device `originId`. An active origin must
 * not change meanwhile: pass its device as `suspendOrigin` to have it suspended around the
 * message (and resumed after, even when the message failed).
 */
export async function createSnap(pool: DeviceRef, id: number, originId: number, opts: { suspendOrigin?: DeviceRef } = {}): Promise<void> {
  checkThinId('id', id);
  checkThinId('originId', originId);
  if (opts.suspendOrigin === undefined) {
    await message(pool, 0, `create_snap ${id} ${originId}`);
    return;
  }
  await suspend(opts.suspendOrigin);
  try {
    await message(pool, 0, `create_snap ${id} ${originId}`);
  } finally {
    await resume(opts.suspendOrigin);
  }
}

/** 'delete <id>': frees a thin device's blocks; its thin target must not be active. */
export async function deleteThin(pool: DeviceRef, id: number): Promise<void> {
  checkThinId('id', id);
  await message(pool, 0, `delete ${id}`);
}

/** 'set_transaction_id <old> <new>': EINVAL unless the pool's id is `oldId`. */
export async function setTransactionId(pool: DeviceRef, oldId: number, newId: number): Promise<void> {
  for (const [what, v] of [['oldId', oldId], ['newId', newId]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(what, `transaction id must be a non-negative safe integer, got ${v}`);
  }
  await message(pool, 0, `set_transaction_id ${oldId} ${newId}`);
}

/** A device in a table line: a device number or a path / 'major:minor' string. */
export type TableDev = DevNo | string;

function tableDev(what: string, d: TableDev): string {
  if (typeof d !== 'string') return devString(d);
  if (d === '' || /\s/.test(d)) throw new InvalidArgumentError(what, `not a device for a table line: ${JSON.stringify(d)}`);
  return d;
}

/**
 * The params of a 'thin-pool' target: `<meta> <data> <block size> <low water> <#features>
 * <features...>`. Block size in sectors: a multiple of 128 (64 KiB) from 128 to 2097152 (1 GiB);
 * low water mark in data blocks. Features e.g. 'skip_block_zeroing', 'ignore_discard',
 * 'no_discard_passdown', 'read_only', 'error_if_no_space'.
 */
export function thinPoolTable(metaDev: TableDev, dataDev: TableDev, blockSizeSectors: number, lowWater: number, features: string[] = []): string {
  if (!Number.isInteger(blockSizeSectors) || blockSizeSectors < 128 || blockSizeSectors > 2097152 || blockSizeSectors % 128 !== 0) {
    throw new InvalidArgumentError('blockSizeSectors', `thin-pool block size must be a multiple of 128 sectors in 128..2097152, got ${blockSizeSectors}`);
  }
  if (!Number.isSafeInteger(lowWater) || lowWater < 0) throw new InvalidArgumentError('lowWater', `low water mark must be a non-negative integer, got ${lowWater}`);
  for (const f of features) {
    if (f === '' || /\s/.test(f)) throw new InvalidArgumentError('features', `not a feature: ${JSON.stringify(f)}`);
  }
  return [tableDev('metaDev', metaDev), tableDev('dataDev', dataDev), blockSizeSectors, lowWater, features.length, ...features].join(' ');
}

/** The params of a 'thin' target: `<pool dev> <id> [<external origin dev>]`. */
export function thinTable(poolDev: TableDev, id: number, externalOrigin?: TableDev): string {
  checkThinId('id', id);
  const parts = [tableDev('poolDev', poolDev), String(id)];
  if (externalOrigin !== undefined) parts.push(tableDev('externalOrigin', externalOrigin));
  return parts.join(' ');
}

/** A thin-pool's status line, parsed. Block counts are in metadata blocks (4 KiB) and data blocks. */
export interface ThinPoolStatus {
  transactionId: number;
  usedMetadataBlocks: number; totalMetadataBlocks: number;
  usedDataBlocks: number; totalDataBlocks: number;
  /** The held metadata root's block, or null ('-'). */
  heldMetadataRoot: number | null;
  mode: 'rw' | 'ro' | 'out_of_data_space';
  /** How discards are handled: passed down, only unmapped, or ignored ('ignore_discard'). */
  discard: 'passdown' | 'no_passdown' | 'ignore';
  discardPassdown: boolean;
  /** What a write does when the data device is full: fail, or wait for it to grow. */
  errorOrQueue: 'error' | 'queue';
  needsCheck: boolean;
  /** Metadata low watermark in metadata blocks (Linux 4.19+). */
  metadataLowWatermark?: number;
}

function parseCount(what: string, s: string | undefined, line: string): number {
  if (s === undefined || !/^\d+$/.test(s)) throw new InvalidArgumentError('status', `bad ${what} in status ${JSON.stringify(line)}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('status', `${what} out of range in status ${JSON.stringify(line)}`);
  return n;
}

function parseRatio(what: string, s: string | undefined, line: string): [number, number] {
  const [used, total, extra] = (s ?? '').split('/');
  if (extra !== undefined) throw new InvalidArgumentError('status', `bad ${what} in status ${JSON.stringify(line)}`);
  return [parseCount(what, used, line), parseCount(what, total, line)];
}

/**
 * Parses a thin-pool status line: `<transaction id> <used>/<total meta> <used>/<total data>
 * <held root|-> rw|ro|out_of_data_space [no_]discard_passdown|ignore_discard
 * error|queue_if_no_space needs_check|- [<metadata low watermark>]`. null for 'Fail' (the
 * pool failed: nothing else is reported). InvalidArgumentError for anything else unparseable.
 */
export function parseThinPoolStatus(params: string): ThinPoolStatus | null {
  const line = params.trim();
  if (line === 'Fail') return null;
  const f = line.split(/\s+/);
  if (f.length < 8) throw new InvalidArgumentError('status', `thin-pool status has too few fields: ${JSON.stringify(line)}`);
  const [meta, data] = [parseRatio('metadata blocks', f[1], line), parseRatio('data blocks', f[2], line)];
  const mode = f[4];
  if (mode !== 'rw' && mode !== 'ro' && mode !== 'out_of_data_space') throw new InvalidArgumentError('status', `bad mode in status ${JSON.stringify(line)}`);
  const discard = f[5] === 'discard_passdown' ? 'passdown' : f[5] === 'no_discard_passdown' ? 'no_passdown' : f[5] === 'ignore_discard' ? 'ignore' : undefined;
  if (discard === undefined) throw new InvalidArgumentError('status', `bad discard field in status ${JSON.stringify(line)}`);
  const noSpace = f[6] === 'error_if_no_space' ? 'error' : f[6] === 'queue_if_no_space' ? 'queue' : undefined;
  if (noSpace === undefined) throw new InvalidArgumentError('status', `bad no-space policy in status ${JSON.stringify(line)}`);
  if (f[7] !== 'needs_check' && f[7] !== '-') throw new InvalidArgumentError('status', `bad needs_check field in status ${JSON.stringify(line)}`);
  const out: ThinPoolStatus = {
    transactionId: parseCount('transaction id', f[0], line),
    usedMetadataBlocks: meta[0], totalMetadataBlocks: meta[1],
    usedDataBlocks: data[0], totalDataBlocks: data[1],
    heldMetadataRoot: f[3] === '-' ? null : parseCount('held metadata root', f[3], line),
    mode,
    discard,
    discardPassdown: discard === 'passdown',
    errorOrQueue: noSpace,
    needsCheck: f[7] === 'needs_check',
  };
  if (f[8] !== undefined) out.metadataLowWatermark = parseCount('metadata low watermark', f[8], line);
  return out;
}

/** A thin device's status line, parsed: mapped sectors and the highest mapped sector (null: none). */
export interface ThinStatus { mappedSectors: number; highestMappedSector: number | null }

/** Parses `<nr mapped sectors> <highest mapped sector|->`; null for 'Fail'. */
export function parseThinStatus(params: string): ThinStatus | null {
  const line = params.trim();
  if (line === 'Fail') return null;
  const f = line.split(/\s+/);
  if (f.length !== 2) throw new InvalidArgumentError('status', `thin status must have 2 fields: ${JSON.stringify(line)}`);
  return {
    mappedSectors: parseCount('mapped sectors', f[0], line),
    highestMappedSector: f[1] === '-' ? null : parseCount('highest mapped sector', f[1], line),
  };
}
