// options.ts: validation of aufs's driver options (init) and per-layer options (create). aufs
// takes none of either (the engine: "--storage-opt is not supported for aufs"); every option
// is refused here, before any filesystem work. No filesystem access here.
import type { CreateOptions } from '../../driver';
import { InvalidOptionError } from '../../errors';
import { optionHint, refuseStorageOptions } from '../../util/options';

function hint(key: string): string {
  if (key === 'size' || key === 'aufs.size') return ' (aufs has no quota support, so no size limit)';
  return optionHint('aufs', key, []);
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
  refuseStorageOptions('aufs', opts, 'aufs has no quota support');
}
