// whiteout.ts: the AUFS whiteout names layer tars carry, in one place. `.wh.NAME` deletes
// NAME from the layers below; `.wh..wh..opq` inside a directory makes it opaque;
// other `.wh..wh.*` names are AUFS's own metadata (e.g. `.wh..wh.plnk`) and never data.
// Drivers whose on-disk form differs (overlay: 0/0 char device, trusted.overlay.opaque)
// convert through the helpers here.

/** Prefix of a whiteout entry: `.wh.NAME` deletes NAME. */
export const WHITEOUT_PREFIX = '.wh.';
/** Prefix of AUFS metadata entries, which are skipped on apply. */
export const WHITEOUT_META_PREFIX = '.wh..wh.';
/** The AUFS hardlink directory (metadata). */
export const WHITEOUT_LINK_DIR = '.wh..wh.plnk';
/** The opaque-directory marker: everything the lower layers had in this directory is hidden. */
export const WHITEOUT_OPAQUE_DIR = '.wh..wh..opq';

/** For a whiteout basename, the name it deletes; undefined if it is not a plain whiteout. */
export function whiteoutTarget(base: string): string | undefined {
  if (!base.startsWith(WHITEOUT_PREFIX) || base.startsWith(WHITEOUT_META_PREFIX)) return undefined;
  return base.slice(WHITEOUT_PREFIX.length);
}

/** The whiteout basename that deletes `base`. */
export function whiteoutFor(base: string): string {
  return WHITEOUT_PREFIX + base;
}
