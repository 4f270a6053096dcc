// options.ts: validation of vfs's driver options (init) and per-layer options (create).
// vfs accepts none of either: it has no quota support, so no size limit. Every option is
// rejected here, before any filesystem work, with a message that says what is accepted.
// No filesystem access here.
import type { CreateOptions } from '../../driver';
import { InvalidOptionError } from '../../errors';
import { optionHint, refuseStorageOptions } from '../../util/options';

/** The driver option keys vfs understands: none. */
export const VALID_OPTIONS: readonly string[] = Object.freeze([]);

function validList(): string {
  return VALID_OPTIONS.length === 0 ? 'vfs accepts no options' : `valid options: ${VALID_OPTIONS.join(', ')}`;
}

/** Why `key` is wrong, beyond "unknown": a size limit, or another driver's option. */
function hint(key: string): string {
  if (key === 'size' || key === 'vfs.size') return ' (vfs has no quota support, so no size limit)';
  return optionHint('vfs', key, VALID_OPTIONS);
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
  refuseStorageOptions('vfs', opts, 'vfs has no quota support, so no size limit');
}
