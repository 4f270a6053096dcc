// layout.ts: the overlay driver's on-disk layout (the engine's first overlay layout), documented
// once; every on-disk name is a constant here. Pure path arithmetic: no filesystem access here.
//
//   home/                      <root>/overlay, mode 0700
//     layers/                  LAYERS_DIR, 0700
//       <id>/                  one layer (0700), in one of two forms:
//         root/                ROOT_DIR: a complete tree. A layer made without parent, or one
//                              whose diff was applied onto a parent with root/ (then a hardlink
//                              farm of the parent's root/ with the diff applied on top). get()
//                              returns it as is, unmounted.
//       or
//         upper/               UPPER_DIR: the layer's own changes (an overlay upper dir; its
//                              mode is the parent root's; whiteouts are 0/0 char devices)
//         work/                WORK_DIR: overlay's workdir, 0700
//         merged/              MERGED_DIR: where get() mounts lowerdir=<lower>/root + upper/
//         lower-id             LOWER_ID_FILE: the id of the one lower layer (a root/ layer).
//                              A child of an upper layer copies its lower-id and its upper/, so
//                              every upper layer has exactly one lower.
//         incomplete           INCOMPLETE_FILE: empty; a diff is being applied in place (or an
//                              apply failed): the layer is absent to exists()/get(), refused as
//                              a parent, and removable
//     staging/                 STAGING_DIR: create-<rnd>/ (a layer being built, renamed to
//                              layers/<id>), apply-<rnd>/ (a new root/ being built as a
//                              hardlink farm, exchanged with layers/<id>), spool-<rnd> (a layer
//                              tar being scanned before its apply), remove-<rnd>/ (a layer
//                              being deleted), probe-<rnd>/ (init's probes); garbage after a
//                              crash, swept at init
//
// Why: the engine's layout — images as complete trees whose files are shared by hardlinks, so
// a container mounts exactly one lower (this predates multi-lower overlay), at the price of one
// directory entry per file per image layer. Layers sit under layers/ (the engine keeps them in
// home), so every valid id is usable, and every name there is a layer built elsewhere and
// published by one rename(2) (or exchanged whole with renameat2 RENAME_EXCHANGE).
import * as path from 'node:path';

export const LAYERS_DIR = 'layers';
export const STAGING_DIR = 'staging';
export const ROOT_DIR = 'root';
export const UPPER_DIR = 'upper';
export const WORK_DIR = 'work';
export const MERGED_DIR = 'merged';
export const LOWER_ID_FILE = 'lower-id';
export const INCOMPLETE_FILE = 'incomplete';
export const CREATE_PREFIX = 'create-';
export const APPLY_PREFIX = 'apply-';
export const SPOOL_PREFIX = 'spool-';
export const REMOVE_PREFIX = 'remove-';

export const PRIVATE_DIR_MODE = 0o700;
export const LAYER_DIR_MODE = 0o700;
/** Mode of the root/ of a layer made without parent. */
export const ROOT_DIR_MODE = 0o755;

/** Absolute paths of one overlay home. */
export class OverlayLayout {
  readonly home: string;
  readonly layersDir: string;
  readonly stagingDir: string;

  constructor(home: string) {
    this.home = path.resolve(home);
    this.layersDir = path.join(this.home, LAYERS_DIR);
    this.stagingDir = path.join(this.home, STAGING_DIR);
  }

  /** home/layers/<id>. `id` must be validated. */
  layer(id: string): string { return path.join(this.layersDir, id); }
  root(id: string): string { return path.join(this.layersDir, id, ROOT_DIR); }
  upper(id: string): string { return path.join(this.layersDir, id, UPPER_DIR); }
  work(id: string): string { return path.join(this.layersDir, id, WORK_DIR); }
  merged(id: string): string { return path.join(this.layersDir, id, MERGED_DIR); }
  lowerIdFile(id: string): string { return path.join(this.layersDir, id, LOWER_ID_FILE); }
  staging(name: string): string { return path.join(this.stagingDir, name); }
}
