// driver.ts: the contract every storage driver fulfils, and the words used for it everywhere.
//
// Glossary
//   layer      A filesystem tree stacked on an optional parent layer. Image layers are filled
//              once (applyDiff) and then only read; container layers are written through a
//              mounted path. The driver does not distinguish them, except where a driver says so.
//   id         A layer's name: non-empty, at most 255 bytes, no '/', no NUL, not '.' or '..'.
//   parent     The layer a new layer starts from. '' or undefined means none (an empty tree).
//   home       The driver's own directory: <root>/<driver name>. Nothing else writes there.
//   diff       What a layer changed relative to its parent, as a tar stream. Deletions travel
//              as AUFS-style whiteouts: `.wh.NAME` deletes NAME; `.wh..wh..opq` inside a
//              directory makes it opaque (hides everything the parents had in it).
//   mountLabel An SELinux context for the mount, or '' / undefined.
//
// Lifecycle, worked through
//   1. Import an image's base layer:
//        await d.create('base');                      // an empty tree
//        const size = await d.applyDiff('base', '', tarStream);
//   2. Import the next layer on top of it:
//        await d.create('l2', 'base');                // starts as a copy-on-write view of base
//        await d.applyDiff('l2', 'base', nextTar);    // whiteouts delete what base had
//   3. Run a container on the image:
//        await d.create('ctr', 'l2');
//        const rootfs = await d.get('ctr');           // an absolute path, mounted if needed
//        ... the container writes under rootfs ...
//        await d.put('ctr');                          // each get needs one put
//   4. Commit the container as a new image layer:
//        const tar = await d.diff('ctr', 'l2');       // only what the container changed
//   5. Clean up: await d.remove('ctr'); await d.cleanup() when the process is done with the driver.
//
// Rules every driver keeps
//   - get/put are counted: n gets need n puts before a mount goes away; put without get throws.
//   - A layer is complete or visibly incomplete; a half-made layer never appears to exist.
//   - create of an existing id, or with a missing parent, throws and touches nothing.
//   - diff/changes/applyDiff/diffSize take the parent the layer was created on ('' = none).

/** The kind of a change, with the engine's numbering. */
export enum ChangeKind {
  Modify = 0,
  Add = 1,
  Delete = 2,
}

/** One changed path, absolute within the layer ('/etc/passwd'). */
export interface Change {
  path: string;
  kind: ChangeKind;
}

/** Per-layer options for create(). `storageOpt` holds driver-specific keys (e.g. size). */
export interface CreateOptions {
  mountLabel?: string;
  storageOpt?: Record<string, string>;
}

/** What a driver must do at minimum: make, mount and remove layers. */
export interface ProtoDriver {
  /** The registered name; toString() returns it too. */
  readonly name: string;
  /** Make layer `id`: empty, or starting as a copy-on-write view of `parent`. */
  create(id: string, parent?: string, opts?: CreateOptions): Promise<void>;
  /** Remove a layer and everything it holds. */
  remove(id: string): Promise<void>;
  /** An absolute path where the layer's full tree can be read and written. Counted. */
  get(id: string, mountLabel?: string): Promise<string>;
  /** Release one get(); the last put unmounts. */
  put(id: string): Promise<void>;
  /** Whether a complete layer `id` exists. */
  exists(id: string): Promise<boolean>;
  /** Human-readable facts about the driver, as [key, value] pairs. */
  status(): Promise<Array<[string, string]>>;
  /** Release everything the driver holds (mounts); the driver is not used afterwards. */
  cleanup(): Promise<void>;
  toString(): string;
}

/** A full driver: ProtoDriver plus layer diffs. */
export interface Driver extends ProtoDriver {
  /** A tar stream of what `id` changed relative to `parent` ('' = the whole tree). */
  diff(id: string, parent?: string): Promise<NodeJS.ReadableStream>;
  /** The changed paths of `id` relative to `parent`. */
  changes(id: string, parent?: string): Promise<Change[]>;
  /** Write a layer tar (plain or gzip) into `id`; resolves to the size of what was written. */
  applyDiff(id: string, parent: string | undefined, diff: NodeJS.ReadableStream): Promise<number>;
  /** The size of the changes of `id` relative to `parent`: added and modified non-directories, hardlinks once. */
  diffSize(id: string, parent?: string): Promise<number>;
}

/**
 * Optional for a ProtoDriver wrapped by NaiveDiffDriver: lets applyDiff make the layer visibly
 * incomplete while the tar is written, so a failed or interrupted apply never leaves a
 * half-written layer that looks complete.
 */
export interface ApplyGuard {
  /** From now until endApply the layer is incomplete: exists() is false, get() and use as a parent fail, remove() works. */
  beginApply(id: string): Promise<void>;
  /** Makes the layer's data durable (sync) and the layer complete again. */
  endApply(id: string): Promise<void>;
  /**
   * Optional: runs `apply` between beginApply and endApply while holding the layer's lock
   * (across processes too, where the driver has such locks), so the layer cannot be removed
   * or re-created meanwhile. Rejects with LayerNotFoundError if the layer is gone.
   */
  guardApply?<T>(id: string, apply: () => Promise<T>): Promise<T>;
}

/** True when `d` implements ApplyGuard. */
export function isApplyGuard(d: object): d is ApplyGuard {
  return typeof (d as Partial<ApplyGuard>).beginApply === 'function' && typeof (d as Partial<ApplyGuard>).endApply === 'function';
}

/** Makes a driver rooted at `home` (<root>/<name>) from `key=value` options. */
export type InitFunc = (home: string, options: string[]) => Promise<Driver>;
