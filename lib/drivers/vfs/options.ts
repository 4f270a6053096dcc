// options.ts: validation of vfs's driver options (init) and per-layer options (create).
// vfs accepts none of either: it has no quota support, so no size limit. Every option is
// rejected here, before any filesystem work, with a message that says what is accepted.
// No filesystem access here.
import type { CreateOptions } from '../../driver';
import { InvalidOptionError } from '../../errors';

/** The driver option keys vfs understands: none. */
export const VALID_OPTIONS: readonly string[] = Object.freeze([]);

/** Option prefixes of the other drivers, to say where a misplaced option belongs. */
const OTHER_DRIVER_PREFIXES: ReadonlyArray<[string, string]> = [
  ['overlay2.', 'overlay2'], ['overlay.', 'overlay'], ['dm.', 'devicemapper'], ['btrfs.', 'btrfs'],
  ['aufs.', 'aufs'], ['zfs.', 'zfs'],
];

function validList(): string {
  return VALID_OPTIONS.length === 0 ? 'vfs accepts no options' : `valid options: ${VALID_OPTIONS.join(', ')}`;
}

/** Why `key` is wrong, beyond "unknown": a size limit, or another driver's option. */
function hint(key: string): string {
  if (key === 'size' || key === 'vfs.size') return ' (vfs has no quota support, so no size limit)';
  for (const [prefix, driver] of OTHER_DRIVER_PREFIXES) {
    if (key.startsWith(prefix)) return ` (that is an option of the ${driver} driver)`;
  }
  return '';
}

/** What the driver options configure. Empty: vfs has nothing to configure. */
export type VfsOptions = Record<string, never>;

/** Parses init's `key=value` options; throws InvalidOptionError for any option. */
export function parseOptions(options: readonly string[]): VfsOptions {
  for (const option of options) {
    const eq = option.indexOf('=');
    if (eq <= 0) {
      throw new InvalidOptionError(`vfs: malformed option ${JSON.stringify(option)}: expected key=value; ${validList()}`);
    }
    const key = option.slice(0, eq).trim().toLowerCase();
    throw new InvalidOptionError(`vfs: unknown option ${JSON.stringify(key)}${hint(key)}; ${validList()}`);
  }
  return {};
}

/** Checks create()'s options: any storageOpt key is an InvalidOptionError. */
export function checkCreateOptions(opts: CreateOptions | undefined): void {
  if (opts === undefined || opts === null) return;
  if (typeof opts !== 'object') throw new TypeError(`Expected an object for create options but received ${typeof opts}`);
  const storageOpt = opts.storageOpt;
  if (storageOpt === undefined || storageOpt === null) return;
  if (typeof storageOpt !== 'object') {
    throw new TypeError(`Expected an object for storageOpt but received ${typeof storageOpt}`);
  }
  const keys = Object.keys(storageOpt);
  if (keys.length > 0) {
    throw new InvalidOptionError(
      `vfs: per-layer storage options are not supported (vfs has no quota support, so no size limit); got ${keys.map((k) => JSON.stringify(k)).join(', ')}`);
  }
}
