// options.ts: validation of devicemapper's driver options (init). Keys are the engine's and
// case-insensitive; SIZE as the engine's units.RAMInBytes; booleans as Go's strconv.ParseBool.
//   dm.basesize=SIZE            base device size, so every layer's size (default 10G)
//   dm.loopdatasize=SIZE        sparse loopback data file (default 100G)
//   dm.loopmetadatasize=SIZE    sparse loopback metadata file (default 2G)
//   dm.fs=ext4                  base filesystem; xfs cannot be made without running mkfs.xfs
//   dm.mkfsarg=ARG              mke2fs-style argument, repeatable (util/mkfs-args.ts)
//   dm.mountopt=OPTS            extra mount options for every layer (e.g. nodelalloc)
//   dm.datadev=PATH, dm.metadatadev=PATH   block devices for the pool instead of loop files
//   dm.thinpooldev=NAME         an existing thin pool (name or /dev/mapper/NAME) to use
//   dm.blocksize=SIZE           pool block size: 64K..1G, a multiple of 64K (default 64K)
//   dm.blkdiscard=BOOL          discard a layer's blocks before deleting it (default: true
//                               for loopback, false otherwise)
//   dm.min_free_space=PCT       refuse new layers below this free share of the pool (default 10%)
//   dm.use_deferred_removal=BOOL, dm.use_deferred_deletion=BOOL   as the engine defines them
// Unknown keys are refused, naming the valid ones. No filesystem access here.
import { InvalidOptionError } from '../../errors';
import type { MkfsExt4Options } from '../../native';
import { parseMkfsArgs } from '../../util/mkfs-args';
import { optionHint, parseSizeOption } from '../../util/options';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const VALID_OPTIONS: readonly string[] = Object.freeze([
  'dm.basesize', 'dm.loopdatasize', 'dm.loopmetadatasize', 'dm.fs', 'dm.mkfsarg', 'dm.mountopt', 'dm.datadev',
  'dm.metadatadev', 'dm.thinpooldev', 'dm.blocksize', 'dm.blkdiscard', 'dm.min_free_space', 'dm.use_deferred_removal',
  'dm.use_deferred_deletion',
]);

/** Defaults of the two settings a home keeps from its first init (the pool's and base's). */
export const DEFAULT_BASE_SIZE = 10 * GiB;
export const DEFAULT_BLOCK_SIZE = 64 * KiB;

export interface DevmapperOptions {
  /** dm.basesize; undefined: the home's (DEFAULT_BASE_SIZE for a new one). */
  baseSize: number | undefined;
  loopDataSize: number;
  loopMetadataSize: number;
  fs: 'ext4';
  mkfs: MkfsExt4Options;
  mountOptions: string;
  dataDevice: string | undefined;
  metadataDevice: string | undefined;
  /** An external pool's dm name; undefined: the driver makes its own. */
  thinPoolDevice: string | undefined;
  /** dm.blocksize in bytes; undefined: the home's (DEFAULT_BLOCK_SIZE for a new one). */
  blockSize: number | undefined;
  blkDiscard: boolean;
  /** Percent of the pool's data and metadata space that must stay free for create to proceed. */
  minFreeSpacePercent: number;
  deferredRemoval: boolean;
  deferredDeletion: boolean;
}

function invalid(msg: string): never {
  throw new InvalidOptionError(`devicemapper: ${msg}`);
}

/** Go's strconv.ParseBool, as the engine reads dm.* booleans. */
function parseBool(key: string, value: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return invalid(`${key}: expected a boolean (true or false), got ${JSON.stringify(value)}`);
}

function positiveSize(key: string, value: string): number {
  const n = parseSizeOption('devicemapper', key, value);
  if (n <= 0) invalid(`${key} must be greater than 0`);
  return n;
}

/** Parses init's `key=value` options; throws InvalidOptionError for unknown or malformed ones. */
export function parseOptions(options: readonly string[]): DevmapperOptions {
  const out: DevmapperOptions = {
    baseSize: undefined, loopDataSize: 100 * GiB, loopMetadataSize: 2 * GiB, fs: 'ext4', mkfs: {}, mountOptions: '',
    dataDevice: undefined, metadataDevice: undefined, thinPoolDevice: undefined, blockSize: undefined, blkDiscard: true,
    minFreeSpacePercent: 10, deferredRemoval: false, deferredDeletion: false,
  };
  const mkfsArgs: string[] = [];
  const mountOpts: string[] = [];
  let blkDiscardSet = false;
  for (const option of options) {
    const eq = option.indexOf('=');
    if (eq <= 0) invalid(`malformed option ${JSON.stringify(option)}: expected key=value; valid options: ${VALID_OPTIONS.join(', ')}`);
    const key = option.slice(0, eq).trim().toLowerCase();
    const value = option.slice(eq + 1);
    switch (key) {
      case 'dm.basesize': out.baseSize = positiveSize(key, value); break;
      case 'dm.loopdatasize': out.loopDataSize = positiveSize(key, value); break;
      case 'dm.loopmetadatasize': out.loopMetadataSize = positiveSize(key, value); break;
      case 'dm.fs': {
        const fs = value.trim().toLowerCase();
        if (fs === 'xfs') invalid('dm.fs=xfs is not supported: an xfs filesystem can only be made by running mkfs.xfs, and this library never spawns a process; use ext4 (made in-process)');
        if (fs !== 'ext4') invalid(`dm.fs: unsupported filesystem ${JSON.stringify(value)} (supported: ext4)`);
        out.fs = 'ext4';
        break;
      }
      case 'dm.mkfsarg': mkfsArgs.push(value); break;
      case 'dm.mountopt': if (value.trim() !== '') mountOpts.push(value.trim()); break;
      case 'dm.datadev': out.dataDevice = value.trim(); break;
      case 'dm.metadatadev': out.metadataDevice = value.trim(); break;
      case 'dm.thinpooldev': {
        const name = value.trim().replace(/^\/dev\/mapper\//, '');
        if (name === '' || name.includes('/')) invalid(`dm.thinpooldev: expected a device-mapper name or /dev/mapper/NAME, got ${JSON.stringify(value)}`);
        out.thinPoolDevice = name;
        break;
      }
      case 'dm.blocksize': {
        const n = parseSizeOption('devicemapper', key, value);
        if (n < 64 * KiB || n > GiB || n % (64 * KiB) !== 0) invalid(`dm.blocksize must be a multiple of 64K from 64K to 1G, got ${JSON.stringify(value)}`);
        out.blockSize = n;
        break;
      }
      case 'dm.blkdiscard': out.blkDiscard = parseBool(key, value); blkDiscardSet = true; break;
      case 'dm.min_free_space': {
        const m = /^\s*(\d+)\s*%?\s*$/.exec(value);
        const n = m === null ? NaN : Number(m[1]);
        if (!(n >= 0 && n < 100)) invalid(`dm.min_free_space must be a percentage from 0% to 99%, got ${JSON.stringify(value)}`);
        out.minFreeSpacePercent = n;
        break;
      }
      case 'dm.use_deferred_removal': out.deferredRemoval = parseBool(key, value); break;
      case 'dm.use_deferred_deletion': out.deferredDeletion = parseBool(key, value); break;
      default:
        invalid(`unknown option ${JSON.stringify(key)}${optionHint('devicemapper', key, VALID_OPTIONS)}; valid options: ${VALID_OPTIONS.join(', ')}`);
    }
  }
  if ((out.dataDevice === undefined) !== (out.metadataDevice === undefined)) invalid('dm.datadev and dm.metadatadev go together: give both or neither');
  if (out.thinPoolDevice !== undefined && out.dataDevice !== undefined) invalid('dm.thinpooldev cannot be combined with dm.datadev/dm.metadatadev');
  if (out.thinPoolDevice !== undefined || out.dataDevice !== undefined) {
    // The engine's default: discarding is only on for the loopback pool it made.
    if (!blkDiscardSet) out.blkDiscard = false;
  }
  // As the engine: deferred deletion needs deferred removal.
  if (out.deferredDeletion && !out.deferredRemoval) invalid('dm.use_deferred_deletion=true needs dm.use_deferred_removal=true');
  if (out.baseSize !== undefined && out.baseSize % 512 !== 0) invalid(`dm.basesize must be a whole number of 512-byte sectors, got ${out.baseSize}`);
  out.mkfs = parseMkfsArgs(mkfsArgs);
  out.mountOptions = mountOpts.join(',');
  return out;
}
