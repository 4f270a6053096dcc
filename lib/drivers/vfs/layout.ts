// layout.ts: vfs's on-disk layout, documented once; every on-disk name is a constant here.
// Pure path arithmetic: no filesystem access here.
//
//   home/                      <root>/vfs, mode 0700
//     dir/                     LAYERS_DIR, mode 0700: only complete layers live here
//       <id>/                  one layer's whole tree (a full copy of its parent's at create)
//     incomplete/              INCOMPLETE_DIR, mode 0700
//       <id>                   empty file: a diff is being applied to dir/<id> (or an apply
//                              failed or was interrupted); the layer is incomplete until removed
//     locks/                   flock(2) files shared by every process using this home: the
//                              driver lock, 64 layer stripes, in-use/<id> (util/layer-locks.ts)
//     staging/                 STAGING_DIR, mode 0700: work in progress, never a layer
//       create-<random>/       a layer being built; renamed to dir/<id> when complete
//       remove-<random>/       a layer renamed out of dir/ and being deleted
//
// Why a separate staging directory rather than dotted temp names inside dir/: every name in
// dir/ is then a complete layer (hasLayers and status need no filter, and no valid id is
// reserved), and a staging name never embeds the id, so a 255-byte id cannot overflow
// NAME_MAX. staging/ is on the same filesystem as dir/, so publishing is one rename(2).
// Everything in staging/ is garbage after a crash and is removed at init.
import * as path from 'node:path';

/** The directory of complete layers, under home. */
export const LAYERS_DIR = 'dir';
/** The directory of half-built and half-removed layers, under home. */
export const STAGING_DIR = 'staging';
/** The directory of incomplete-layer markers, under home. */
export const INCOMPLETE_DIR = 'incomplete';
/** Prefix of a staging entry holding a layer being created. */
export const CREATE_PREFIX = 'create-';
/** Prefix of a staging entry holding a layer being removed. */
export const REMOVE_PREFIX = 'remove-';

/** Mode of home, dir/ and staging/: only root may look inside. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of the root directory of a layer made without a parent. */
export const EMPTY_LAYER_MODE = 0o755;

/** Absolute paths of one vfs home. */
export class VfsLayout {
  readonly home: string;
  readonly layersDir: string;
  readonly stagingDir: string;
  readonly incompleteDir: string;

  constructor(home: string) {
    this.home = path.resolve(home);
    this.layersDir = path.join(this.home, LAYERS_DIR);
    this.stagingDir = path.join(this.home, STAGING_DIR);
    this.incompleteDir = path.join(this.home, INCOMPLETE_DIR);
  }

  /** home/dir/<id>: the layer's tree, and what get() returns. `id` must be validated. */
  layer(id: string): string {
    return path.join(this.layersDir, id);
  }

  /** home/staging/<name>. */
  staging(name: string): string {
    return path.join(this.stagingDir, name);
  }
}
