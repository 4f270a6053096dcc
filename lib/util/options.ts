// options.ts: what every driver's option parser shares — "did you mean" hints for a mistyped
// key, naming the driver a misplaced option belongs to, and SIZE values. Each driver's own
// options.ts owns its keys and rules; this module only words the errors the same way.
import type { CreateOptions } from '../driver';
import { InvalidOptionError } from '../errors';
import { ramInBytes } from './units';

/** Option prefixes of every driver, to say where a misplaced option belongs. */
const DRIVER_PREFIXES: ReadonlyArray<[string, string]> = [
  ['overlay2.', 'overlay2'], ['overlay.', 'overlay'], ['dm.', 'devicemapper'], ['vfs.', 'vfs'],
  ['aufs.', 'aufs'], ['btrfs.', 'btrfs'], ['zfs.', 'zfs'],
];

/** Levenshtein distance, for "did you mean" on short option keys. */
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

/**
 * Why `key` is wrong beyond "unknown", as a message suffix: a near-miss of a valid key (also
 * the key with the driver's own prefix, e.g. `size` for `overlay2.size`), or another driver's
 * option. '' when there is nothing helpful to say.
 */
export function optionHint(driver: string, key: string, valid: readonly string[]): string {
  const own = `${driver}.`;
  for (const v of valid) {
    if (distance(key, v) <= 2 || (!key.includes('.') && distance(own + key, v) <= 2)) return ` (did you mean ${v}?)`;
  }
  for (const [prefix, name] of DRIVER_PREFIXES) {
    if (name !== driver && key.startsWith(prefix)) return ` (that is an option of the ${name} driver)`;
  }
  return '';
}

/** Parses a SIZE value of option `key` (as the engine's units.RAMInBytes), or InvalidOptionError. */
export function parseSizeOption(driver: string, key: string, value: string): number {
  try {
    return ramInBytes(value.trim());
  } catch (err) {
    throw new InvalidOptionError(`${driver}: ${key}: ${(err as Error).message} (expected e.g. 512M, 10G, 1.5GiB)`);
  }
}

/**
 * For drivers with no per-layer options: TypeError for a malformed `opts`, InvalidOptionError
 * for any storageOpt key (`why` says why, e.g. "vfs has no quota support").
 */
export function refuseStorageOptions(driver: string, opts: CreateOptions | undefined, why: string): void {
  if (opts === undefined || opts === null) return;
  if (typeof opts !== 'object') throw new TypeError(`Expected an object for create options but received ${typeof opts}`);
  const storageOpt = opts.storageOpt;
  if (storageOpt === undefined || storageOpt === null) return;
  if (typeof storageOpt !== 'object') throw new TypeError(`Expected an object for storageOpt but received ${typeof storageOpt}`);
  const keys = Object.keys(storageOpt);
  if (keys.length > 0) {
    throw new InvalidOptionError(`${driver}: per-layer storage options are not supported (${why}); got ${keys.map((k) => JSON.stringify(k)).join(', ')}`);
  }
}
