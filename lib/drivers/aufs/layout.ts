// layout.ts: aufs's on-disk layout (the engine's), documented once; every on-disk name is a
// constant here. Pure path arithmetic: no filesystem access here.
//
//   home/                      <root>/aufs, mode 0700
//     layers/                  LAYERS_DIR
//       <id>                   a text file: the parent id, then the parent's ancestors,
//                              nearest first, one per line (each line ends in '\n'); empty for
//                              a layer without parent. Its presence is what makes <id> a layer.
//     diff/                    DIFF_DIR
//       <id>/                  the layer's own tree (aufs branch), 0755 root:root; deletions are
//                              stored as aufs keeps them: `.wh.NAME` files and `.wh..wh..opq` in
//                              an opaque directory (aufs's own `.wh..wh.plnk`/`.wh..wh.aufs` at
//                              the top are metadata, never exported)
//     mnt/                     MNT_DIR
//       <id>/                  where get() mounts a layer that has a parent, 0755
//     incomplete/              INCOMPLETE_DIR: <id> marker while a diff is applied (ApplyGuard)
//     staging/                 STAGING_DIR: layers-<rnd> (a layers file before its rename into
//                              layers/), remove-<rnd>/ (diff and mnt dirs being deleted),
//                              probe-<rnd>/ (init's dirperm1 probe); all garbage after a crash
//
// Why: the engine's three directories, so a home made by the engine reads the same. The two
// additions (incomplete/, staging/) are beside them and never hold a layer: a layers file is
// written in staging/ and renamed into layers/ (the layer appears whole), and a removed
// layer's directories are renamed into staging/ before deletion (the engine renames to
// `<id>-removing`, a name that is also a valid id; a separate directory cannot collide).
import * as path from 'node:path';

export const LAYERS_DIR = 'layers';
export const DIFF_DIR = 'diff';
export const MNT_DIR = 'mnt';
export const INCOMPLETE_DIR = 'incomplete';
export const STAGING_DIR = 'staging';
/** Prefix of a layers file being written in staging/. */
export const LAYERS_FILE_PREFIX = 'layers-';
/** Prefix of a removed layer's directories in staging/. */
export const REMOVE_PREFIX = 'remove-';
/** Prefix of init's probe scratch directory in staging/. */
export const PROBE_PREFIX = 'probe-';

export const PRIVATE_DIR_MODE = 0o700;
/** Mode of diff/<id> and mnt/<id> (the engine's). */
export const LAYER_DIR_MODE = 0o755;
export const LAYERS_FILE_MODE = 0o644;

/** Absolute paths of one aufs home. */
export class AufsLayout {
  readonly home: string;
  readonly layersDir: string;
  readonly diffDir: string;
  readonly mntDir: string;
  readonly incompleteDir: string;
  readonly stagingDir: string;

  constructor(home: string) {
    this.home = path.resolve(home);
    this.layersDir = path.join(this.home, LAYERS_DIR);
    this.diffDir = path.join(this.home, DIFF_DIR);
    this.mntDir = path.join(this.home, MNT_DIR);
    this.incompleteDir = path.join(this.home, INCOMPLETE_DIR);
    this.stagingDir = path.join(this.home, STAGING_DIR);
  }

  /** home/layers/<id>. `id` must be validated. */
  layersFile(id: string): string { return path.join(this.layersDir, id); }
  /** home/diff/<id>: the layer's own tree; get() of a layer without parent returns it. */
  diff(id: string): string { return path.join(this.diffDir, id); }
  /** home/mnt/<id>: the union mount point of a layer with a parent. */
  mnt(id: string): string { return path.join(this.mntDir, id); }
  staging(name: string): string { return path.join(this.stagingDir, name); }
}
