// layout.ts: overlay2's on-disk layout (the engine's), documented once; every on-disk name is a
// constant here. Pure path arithmetic and name rules: no filesystem access here.
//
//   home/                      <root>/overlay2, mode 0700
//     layers/                  LAYERS_DIR, 0700
//       <id>/                  one layer (0700)
//       diff/                  DIFF_DIR: the layer's own changes (an overlay upper dir), 0755
//       link                   LINK_FILE: the layer's short name (26 chars, [A-Z0-9])
//       lower                  LOWER_FILE: `l/<short>:l/<short>:...`, the parent's short name
//                              first, then the parent's own lower chain (nearest first); absent
//                              for a layer without parent
//       work/                  WORK_DIR: overlay's workdir (layers with a parent), 0700
//       merged/                MERGED_DIR: where get() mounts the layer (layers with a parent)
//       committed              COMMITTED_FILE: empty; a child was made on this layer, so it
//                              is mounted read-only (its diff as the top lower, no upper/work)
//       quota                  QUOTA_FILE: `projid=<n>\nsize=<bytes>\n` for a layer with a size
//                              limit (XFS project quota; the id is set with PROJINHERIT on <id>/)
//       incomplete             INCOMPLETE_FILE: empty; a diff is being applied (or an apply
//                              failed): the layer is absent to exists()/get(), refused as a
//                              parent, and removable
//     l/                       LINKS_DIR: <short> -> ../layers/<id>/diff symlinks, so lowerdir paths
//                              are short (rebuilt from each layer's link file at init)
//     backingFsBlockDev        BACKING_FS_BLOCK_DEV: a block device node of home's filesystem,
//                              made at init for quotactl(2) only when a size is in use (quota.ts)
//     staging/                 STAGING_DIR: create-<rnd>/ (a layer being built, renamed to
//                              <id>), remove-<rnd>/ (a layer being deleted), probe-<rnd>/
//                              (init's kernel probes); all garbage after a crash, swept at init
//
// Why: the engine's per-layer layout, with short `l/` names that keep mount options small.
// One difference: the engine keeps <id>/ directly in home beside l/, so an id `l` cannot exist
// there; here layers live under layers/, so every valid id (including `l` and `staging`) is
// usable. Layers are built under staging/ and published by one rename(2), so a name in
// layers/ is a whole layer or absent.
import * as path from 'node:path';

export const DIFF_DIR = 'diff';
export const WORK_DIR = 'work';
export const MERGED_DIR = 'merged';
export const LINK_FILE = 'link';
export const LOWER_FILE = 'lower';
export const COMMITTED_FILE = 'committed';
export const INCOMPLETE_FILE = 'incomplete';
export const QUOTA_FILE = 'quota';
export const BACKING_FS_BLOCK_DEV = 'backingFsBlockDev';
export const LINKS_DIR = 'l';
export const STAGING_DIR = 'staging';
export const CREATE_PREFIX = 'create-';
export const REMOVE_PREFIX = 'remove-';
export const PROBE_PREFIX = 'probe-';

export const LAYERS_DIR = 'layers';

/** Length of a short link name, as the engine makes them (base32 of 16 random bytes, unpadded). */
export const SHORT_ID_LENGTH = 26;
/** Short link names: the engine's alphabet. */
export const SHORT_ID_PATTERN = /^[A-Z0-9]{26}$/;

export const PRIVATE_DIR_MODE = 0o700;
export const DIFF_DIR_MODE = 0o755;
export const LAYER_DIR_MODE = 0o700;

/** Absolute paths of one overlay2 home. */
export class Overlay2Layout {
  readonly home: string;
  readonly layersDir: string;
  readonly linksDir: string;
  readonly stagingDir: string;

  constructor(home: string) {
    this.home = path.resolve(home);
    this.layersDir = path.join(this.home, LAYERS_DIR);
    this.linksDir = path.join(this.home, LINKS_DIR);
    this.stagingDir = path.join(this.home, STAGING_DIR);
  }

  /** home/layers/<id>. `id` must be validated. */
  layer(id: string): string { return path.join(this.layersDir, id); }
  diff(id: string): string { return path.join(this.layersDir, id, DIFF_DIR); }
  work(id: string): string { return path.join(this.layersDir, id, WORK_DIR); }
  merged(id: string): string { return path.join(this.layersDir, id, MERGED_DIR); }
  linkFile(id: string): string { return path.join(this.layersDir, id, LINK_FILE); }
  lowerFile(id: string): string { return path.join(this.layersDir, id, LOWER_FILE); }
  /** home/l/<short>: the symlink to a layer's diff. */
  link(short: string): string { return path.join(this.linksDir, short); }
  /** The symlink target of l/<short>: ../layers/<id>/diff. */
  static linkTarget(id: string): string { return `../${LAYERS_DIR}/${id}/${DIFF_DIR}`; }
  /** The id a link target names, or undefined when it is not ../layers/<id>/diff. */
  static idOfLinkTarget(target: string): string | undefined {
    const prefix = `../${LAYERS_DIR}/`;
    const suffix = `/${DIFF_DIR}`;
    if (!target.startsWith(prefix) || !target.endsWith(suffix)) return undefined;
    const id = target.slice(prefix.length, -suffix.length);
    return id === '' || id.includes('/') ? undefined : id;
  }
  /** The lower-chain entry of a short name: l/<short> (relative to home). */
  static lowerEntry(short: string): string { return `${LINKS_DIR}/${short}`; }
  staging(name: string): string { return path.join(this.stagingDir, name); }
}
