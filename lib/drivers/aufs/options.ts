// options.ts: validation of aufs's driver options (init) and per-layer options (create). aufs
// takes none of either (the engine: "--storage-opt is not supported for aufs"); every option
// is refused here, before any filesystem work. No filesystem access here.
import type { CreateOptions } from '../../driver';
import { InvalidOptionError } from '../../errors';

const OTHER_DRIVER_PREFIXES: ReadonlyArray<[string, string]> = [
  ['overlay2.', 'overlay2'], ['overlay.', 'overlay'], ['dm.', 'devicemapper'], ['btrfs.', 'btrfs'], ['vfs.', 'vfs'], ['zfs.', 'zfs'],
];

function hint(key: string): string {
  if (key === 'size' || key === 'aufs.size') return ' (aufs has no quota support, so no size limit)';
  for (const [prefix, driver] of OTHER_DRIVER_PREFIXES) {
    if (key.startsWith(prefix)) return ` (that is an option of the ${driver} driver)`;
  }
  return '';
}

/** Parses init's `key=value` options; aufs accepts none, so any option is an InvalidOptionError. */
export function parseOptions(options: readonly string[]): void {
  for (const option of options) {
    const eq = option.indexOf('=');
    if (eq <= 0) throw new InvalidOptionError(`aufs: malformed option ${JSON.stringify(option)}: expected key=value; aufs accepts no options`);
    const key = option.slice(0, eq).trim().toLowerCase();
    throw new InvalidOptionError(`aufs: unknown option ${JSON.stringify(key)}${hint(key)}; aufs accepts no options`);
  }
}

/** Checks create()'s options: any storageOpt key is an InvalidOptionError. */
export function checkCreateOptions(opts: CreateOptions | undefined): void {
  if (opts === undefined || opts === null) return;
  if (typeof opts !== 'object') throw new TypeError(`Expected an object for create options but received ${typeof opts}`);
  const storageOpt = opts.storageOpt;
  if (storageOpt === undefined || storageOpt === null) return;
  if (typeof storageOpt !== 'object') throw new TypeError(`Expected an object for storageOpt but received ${typeof storageOpt}`);
  const keys = Object.keys(storageOpt);
  if (keys.length > 0) {
    throw new InvalidOptionError(`aufs: per-layer storage options are not supported; got ${keys.map((k) => JSON.stringify(k)).join(', ')}`);
  }
}
