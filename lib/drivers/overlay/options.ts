// options.ts: validation of the overlay driver's options. The engine's overlay driver takes
// none of its own: `overlay.override_kernel_check` is accepted for compatibility (no effect);
// per-layer storage options (size) are refused, as the engine refuses them. Parsing only.
import type { CreateOptions } from '../../driver';
import { InvalidOptionError } from '../../errors';

export const OVERRIDE_KERNEL_CHECK_OPTION = 'overlay.override_kernel_check';
export const VALID_OPTIONS: readonly string[] = Object.freeze([OVERRIDE_KERNEL_CHECK_OPTION]);

/** Checks init's `key=value` options; throws InvalidOptionError for unknown or malformed ones. */
export function parseOptions(options: readonly string[]): void {
  for (const option of options) {
    const eq = option.indexOf('=');
    if (eq <= 0) {
      throw new InvalidOptionError(
        `overlay: malformed option ${JSON.stringify(option)}: expected key=value; valid options: ${VALID_OPTIONS.join(', ')}`);
    }
    const key = option.slice(0, eq).trim().toLowerCase();
    const value = option.slice(eq + 1).trim().toLowerCase();
    if (key !== OVERRIDE_KERNEL_CHECK_OPTION) {
      const hint = key.startsWith('overlay2.') ? ' (that is an option of the overlay2 driver)' : '';
      throw new InvalidOptionError(`overlay: unknown option ${JSON.stringify(key)}${hint}; valid options: ${VALID_OPTIONS.join(', ')}`);
    }
    if (!['1', 't', 'true', '0', 'f', 'false'].includes(value)) {
      throw new InvalidOptionError(`overlay: ${key}: expected true or false, got ${JSON.stringify(option.slice(eq + 1))}`);
    }
  }
}

/** Refuses storage options (the engine's overlay has no per-layer options). */
export function checkCreateOptions(opts: CreateOptions | undefined): void {
  if (opts === undefined || opts === null) return;
  if (typeof opts !== 'object') throw new TypeError(`Expected an object for create options but received ${typeof opts}`);
  const storageOpt = opts.storageOpt;
  if (storageOpt === undefined || storageOpt === null) return;
  if (typeof storageOpt !== 'object') throw new TypeError(`Expected an object for storageOpt but received ${typeof storageOpt}`);
  const keys = Object.keys(storageOpt);
  if (keys.length > 0) throw new InvalidOptionError(`overlay: storage options are not supported (got ${keys.map((k) => JSON.stringify(k)).join(', ')})`);
}
