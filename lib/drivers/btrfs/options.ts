// options.ts: validation of btrfs's driver options (init) and per-layer options (create).
//   driver:    btrfs.min_space=SIZE   smallest per-layer size limit accepted (also turns quota
//                                     on at init, as the engine does)
//   per layer: storageOpt { size: SIZE }  the layer's qgroup max_rfer limit
// SIZE is parsed like the engine's units.RAMInBytes (util/units.ts). Keys are case-insensitive.
// Everything is checked here, before any filesystem work; unknown keys name the valid ones and
// suggest the nearest. No filesystem access here.
import type { CreateOptions } from '../../driver';
import { InvalidOptionError } from '../../errors';
import { optionHint, parseSizeOption } from '../../util/options';
import { bytesToHuman } from '../../util/units';

export const MIN_SPACE_OPTION = 'btrfs.min_space';
export const SIZE_OPTION = 'size';

/** The driver option keys btrfs understands. */
export const VALID_OPTIONS: readonly string[] = Object.freeze([MIN_SPACE_OPTION]);
/** The per-layer storageOpt keys btrfs understands. */
export const VALID_STORAGE_OPTS: readonly string[] = Object.freeze([SIZE_OPTION]);

export interface BtrfsOptions {
  /** btrfs.min_space in bytes; 0 when not set. */
  minSpace: number;
}

/** Parses init's `key=value` options; throws InvalidOptionError for unknown or malformed ones. */
export function parseOptions(options: readonly string[]): BtrfsOptions {
  const out: BtrfsOptions = { minSpace: 0 };
  for (const option of options) {
    const eq = option.indexOf('=');
    if (eq <= 0) {
      throw new InvalidOptionError(
        `btrfs: malformed option ${JSON.stringify(option)}: expected key=value; valid options: ${VALID_OPTIONS.join(', ')}`);
    }
    const key = option.slice(0, eq).trim().toLowerCase();
    const value = option.slice(eq + 1);
    if (key === MIN_SPACE_OPTION) {
      out.minSpace = parseSizeOption('btrfs', key, value);
      continue;
    }
    throw new InvalidOptionError(
      `btrfs: unknown option ${JSON.stringify(key)}${optionHint('btrfs', key, VALID_OPTIONS)}; valid options: ${VALID_OPTIONS.join(', ')}`);
  }
  return out;
}

/**
 * Checks create()'s options and returns the layer's size limit in bytes (undefined = none).
 * A size below btrfs.min_space, or zero, is an InvalidOptionError.
 */
export function parseCreateOptions(opts: CreateOptions | undefined, driverOpts: BtrfsOptions): number | undefined {
  if (opts === undefined || opts === null) return undefined;
  if (typeof opts !== 'object') throw new TypeError(`Expected an object for create options but received ${typeof opts}`);
  const storageOpt = opts.storageOpt;
  if (storageOpt === undefined || storageOpt === null) return undefined;
  if (typeof storageOpt !== 'object') throw new TypeError(`Expected an object for storageOpt but received ${typeof storageOpt}`);
  let size: number | undefined;
  for (const [rawKey, value] of Object.entries(storageOpt)) {
    const key = rawKey.trim().toLowerCase();
    if (key !== SIZE_OPTION) {
      throw new InvalidOptionError(`btrfs: unknown storage option ${JSON.stringify(rawKey)}${optionHint('btrfs', key, VALID_STORAGE_OPTS)}; ` +
        `valid storage options: ${VALID_STORAGE_OPTS.join(', ')}`);
    }
    if (typeof value !== 'string') throw new TypeError(`Expected a string for storageOpt.${rawKey} but received ${typeof value}`);
    size = parseSizeOption('btrfs', key, value);
    if (size === 0) throw new InvalidOptionError('btrfs: size must be greater than 0 (omit it for no limit)');
    if (size < driverOpts.minSpace) {
      throw new InvalidOptionError(`btrfs: storage size ${bytesToHuman(size)} cannot be less than ` +
        `${MIN_SPACE_OPTION} ${bytesToHuman(driverOpts.minSpace)}`);
    }
  }
  return size;
}
