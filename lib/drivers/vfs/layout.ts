// layout.ts: vfs's on-disk layout, documented once; every on-disk name is a constant here.
// Pure path arithmetic: no filesystem access here.
//
//   home/                      <root>/vfs, mode 0700
//     dir/                     LAYERS_DIR, mode 0700: only complete layers live here
//       <id>/                  one layer's whole tree (a full copy of its parent's at create)
//     incomplete/              INCOMPLETE_DIR, mode 0700
//       <id>                   empty file: a diff is being applied to dir/<id> (or an apply
//                              failed or was interrupted); the layer is incomplete until removed
//     locks/                   LOCKS_DIR: flock(2) files shared by every process using this home
//       driver                 DRIVER_LOCK: held shared while staging/ is used, exclusively to sweep it
//       in-use/<id>            held shared by each process that has the layer got; a remover
//                              takes it exclusively or refuses (LayerBusyError); made by get
//       layers/0 .. layers/63  layer ids hashed onto 64 stripes: operations on a layer, one
//                              process at a time (made at init, so refused operations create nothing)
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
/** The directory of lock files, under home; and the layers' lock files, under it. */
export const LOCKS_DIR = 'locks';
export const LAYER_LOCKS_DIR = 'layers';
/** Per-layer in-use lock files, under the lock directory. */
export const IN_USE_DIR = 'in-use';
/** The lock file guarding staging/ across processes. */
export const DRIVER_LOCK = 'driver';
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
  readonly locksDir: string;
  readonly layerLocksDir: string;

  constructor(home: string) {
    this.home = path.resolve(home);
    this.layersDir = path.join(this.home, LAYERS_DIR);
    this.stagingDir = path.join(this.home, STAGING_DIR);
    this.incompleteDir = path.join(this.home, INCOMPLETE_DIR);
    this.locksDir = path.join(this.home, LOCKS_DIR);
    this.layerLocksDir = path.join(this.locksDir, LAYER_LOCKS_DIR);
  }

  /** home/dir/<id>: the layer's tree, and what get() returns. `id` must be validated. */
  layer(id: string): string {
    return path.join(this.layersDir, id);
  }

  /** home/locks/in-use/<id>: the layer's in-use lock file. */
  inUse(id: string): string {
    return path.join(this.locksDir, IN_USE_DIR, id);
  }

  /** home/staging/<name>. */
  staging(name: string): string {
    return path.join(this.stagingDir, name);
  }
}
