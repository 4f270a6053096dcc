// options.ts: validation of the overlay driver's options. The engine's overlay driver takes
// none of its own: `overlay.override_kernel_check` is accepted for compatibility (no effect);
// per-layer storage options (size) are refused, as the engine refuses them. Parsing only.
import type { CreateOptions } from '../../driver';
import { InvalidOptionError } from '../../errors';
import { optionHint, refuseStorageOptions } from '../../util/options';

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
      throw new InvalidOptionError(`overlay: unknown option ${JSON.stringify(key)}${optionHint('overlay', key, VALID_OPTIONS)}; valid options: ${VALID_OPTIONS.join(', ')}`);
    }
    if (!['1', 't', 'true', '0', 'f', 'false'].includes(value)) {
      throw new InvalidOptionError(`overlay: ${key}: expected true or false, got ${JSON.stringify(option.slice(eq + 1))}`);
    }
  }
}

/** Refuses storage options (the engine's overlay has no per-layer options). */
export function checkCreateOptions(opts: CreateOptions | undefined): void {
  refuseStorageOptions('overlay', opts, 'the overlay driver has no quota support');
}
