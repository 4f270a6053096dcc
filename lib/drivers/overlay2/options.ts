// options.ts: validation of overlay2's driver options (init) and per-layer options (create).
//   driver:    overlay2.size=SIZE                 default per-layer quota (XFS project quota)
//              overlay2.override_kernel_check=B   accepted for compatibility, has no effect
//   per layer: storageOpt { size: SIZE }          the layer's quota
// SIZE is parsed like the engine's units.RAMInBytes (util/units.ts). Keys are case-insensitive.
// Parsing only: whether a quota can be enforced is decided by quota.ts (at init or first use; it needs xfs
// with project quotas). No filesystem access here.
import type { CreateOptions } from '../../driver';
import { InvalidOptionError } from '../../errors';
import { optionHint, parseSizeOption } from '../../util/options';

export const SIZE_OPTION = 'overlay2.size';
export const OVERRIDE_KERNEL_CHECK_OPTION = 'overlay2.override_kernel_check';
export const LAYER_SIZE_OPTION = 'size';

export const VALID_OPTIONS: readonly string[] = Object.freeze([SIZE_OPTION, OVERRIDE_KERNEL_CHECK_OPTION]);
export const VALID_STORAGE_OPTS: readonly string[] = Object.freeze([LAYER_SIZE_OPTION]);

export interface Overlay2Options {
  /** overlay2.size in bytes; 0 when not set. */
  quota: number;
}

function parseBool(key: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['1', 't', 'true'].includes(v)) return true;
  if (['0', 'f', 'false'].includes(v)) return false;
  throw new InvalidOptionError(`overlay2: ${key}: expected true or false, got ${JSON.stringify(value)}`);
}

/** Parses init's `key=value` options; throws InvalidOptionError for unknown or malformed ones. */
export function parseOptions(options: readonly string[]): Overlay2Options {
  const out: Overlay2Options = { quota: 0 };
  for (const option of options) {
    const eq = option.indexOf('=');
    if (eq <= 0) {
      throw new InvalidOptionError(
        `overlay2: malformed option ${JSON.stringify(option)}: expected key=value; valid options: ${VALID_OPTIONS.join(', ')}`);
    }
    const key = option.slice(0, eq).trim().toLowerCase();
    const value = option.slice(eq + 1);
    if (key === SIZE_OPTION) out.quota = parseSizeOption('overlay2', key, value);
    else if (key === OVERRIDE_KERNEL_CHECK_OPTION) parseBool(key, value);
    else {
      throw new InvalidOptionError(
        `overlay2: unknown option ${JSON.stringify(key)}${optionHint('overlay2', key, VALID_OPTIONS)}; valid options: ${VALID_OPTIONS.join(', ')}`);
    }
  }
  return out;
}

/** Checks create()'s options and returns the layer's requested size in bytes (undefined = none). */
export function parseCreateOptions(opts: CreateOptions | undefined): number | undefined {
  if (opts === undefined || opts === null) return undefined;
  if (typeof opts !== 'object') throw new TypeError(`Expected an object for create options but received ${typeof opts}`);
  const storageOpt = opts.storageOpt;
  if (storageOpt === undefined || storageOpt === null) return undefined;
  if (typeof storageOpt !== 'object') throw new TypeError(`Expected an object for storageOpt but received ${typeof storageOpt}`);
  let size: number | undefined;
  for (const [rawKey, value] of Object.entries(storageOpt)) {
    const key = rawKey.trim().toLowerCase();
    if (key !== LAYER_SIZE_OPTION) {
      throw new InvalidOptionError(`overlay2: unknown storage option ${JSON.stringify(rawKey)}; ` +
        `valid storage options: ${VALID_STORAGE_OPTS.join(', ')}`);
    }
    if (typeof value !== 'string') throw new TypeError(`Expected a string for storageOpt.${rawKey} but received ${typeof value}`);
    size = parseSizeOption('overlay2', key, value);
  }
  return size;
}
