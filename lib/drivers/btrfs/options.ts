// options.ts: validation of btrfs's driver options (init) and per-layer options (create).
//   driver:    btrfs.min_space=SIZE   smallest per-layer size limit accepted (also turns quota
//                                     on at init, as the engine does)
//   per layer: storageOpt { size: SIZE }  the layer's qgroup max_rfer limit
// SIZE is parsed like the engine's units.RAMInBytes (util/units.ts). Keys are case-insensitive.
// Everything is checked here, before any filesystem work; unknown keys name the valid ones and
// suggest the nearest. No filesystem access here.
import type { CreateOptions } from '../../driver';
import { InvalidOptionError } from '../../errors';
import { bytesToHuman, ramInBytes } from '../../util/units';

export const MIN_SPACE_OPTION = 'btrfs.min_space';
export const SIZE_OPTION = 'size';

/** The driver option keys btrfs understands. */
export const VALID_OPTIONS: readonly string[] = Object.freeze([MIN_SPACE_OPTION]);
/** The per-layer storageOpt keys btrfs understands. */
export const VALID_STORAGE_OPTS: readonly string[] = Object.freeze([SIZE_OPTION]);

/** Option prefixes of the other drivers, to say where a misplaced option belongs. */
const OTHER_DRIVER_PREFIXES: ReadonlyArray<[string, string]> = [
  ['overlay2.', 'overlay2'], ['overlay.', 'overlay'], ['dm.', 'devicemapper'], ['vfs.', 'vfs'],
  ['aufs.', 'aufs'], ['zfs.', 'zfs'],
];

export interface BtrfsOptions {
  /** btrfs.min_space in bytes; 0 when not set. */
  minSpace: number;
}

/** Levenshtein distance, for "did you mean" hints on short option keys. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_v, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** Why `key` is wrong beyond "unknown": a near-miss of a valid key, or another driver's option. */
function hint(key: string, valid: readonly string[]): string {
  for (const v of valid) {
    if (distance(key, v) <= 2 || (!key.includes('.') && distance(`btrfs.${key}`, v) <= 2)) return ` (did you mean ${v}?)`;
  }
  for (const [prefix, driver] of OTHER_DRIVER_PREFIXES) {
    if (key.startsWith(prefix)) return ` (that is an option of the ${driver} driver)`;
  }
  return '';
}

/** Parses a SIZE value of option `key`, as an InvalidOptionError when it is not one. */
function parseSize(key: string, value: string): number {
  try {
    return ramInBytes(value.trim());
  } catch (err) {
    throw new InvalidOptionError(`btrfs: ${key}: ${(err as Error).message} (expected e.g. 512M, 10G, 1.5GiB)`);
  }
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
      out.minSpace = parseSize(key, value);
      continue;
    }
    throw new InvalidOptionError(
      `btrfs: unknown option ${JSON.stringify(key)}${hint(key, VALID_OPTIONS)}; valid options: ${VALID_OPTIONS.join(', ')}`);
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
      throw new InvalidOptionError(`btrfs: unknown storage option ${JSON.stringify(rawKey)}${hint(key, VALID_STORAGE_OPTS)}; ` +
        `valid storage options: ${VALID_STORAGE_OPTS.join(', ')}`);
    }
    if (typeof value !== 'string') throw new TypeError(`Expected a string for storageOpt.${rawKey} but received ${typeof value}`);
    size = parseSize(key, value);
    if (size === 0) throw new InvalidOptionError('btrfs: size must be greater than 0 (omit it for no limit)');
    if (size < driverOpts.minSpace) {
      throw new InvalidOptionError(`btrfs: storage size ${bytesToHuman(size)} cannot be less than ` +
        `${MIN_SPACE_OPTION} ${bytesToHuman(driverOpts.minSpace)}`);
    }
  }
  return size;
}
