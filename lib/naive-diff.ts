// naive-diff.ts: NaiveDiffDriver turns a ProtoDriver into a Driver by comparing mounted
// trees: changes() walks the layer and its parent, diff() tars those changes, applyDiff()
// unpacks a layer tar into the mounted layer, diffSize() sizes the changes. All the tree work
// is in archive/; this file only gets and puts layers around it.
import { Readable } from 'node:stream';
import { applyLayer } from './archive/apply';
import { changesDirs, changesSize } from './archive/changes';
import { exportChanges, exportTree } from './archive/export';
import { isApplyGuard, type Change, type CreateOptions, type Driver, type ProtoDriver } from './driver';
import { normalizeParent, validateId } from './util/ids';

export class NaiveDiffDriver implements Driver {
  constructor(private readonly proto: ProtoDriver) {
    if (proto === null || typeof proto !== 'object' || typeof proto.get !== 'function') {
      throw new TypeError('Expected a ProtoDriver for NaiveDiffDriver');
    }
  }

  get name(): string { return this.proto.name; }
  toString(): string { return this.proto.name; }

  create(id: string, parent?: string, opts?: CreateOptions): Promise<void> { return this.proto.create(id, parent, opts); }
  remove(id: string): Promise<void> { return this.proto.remove(id); }
  get(id: string, mountLabel?: string): Promise<string> { return this.proto.get(id, mountLabel); }
  put(id: string): Promise<void> { return this.proto.put(id); }
  exists(id: string): Promise<boolean> { return this.proto.exists(id); }
  status(): Promise<Array<[string, string]>> { return this.proto.status(); }
  cleanup(): Promise<void> { return this.proto.cleanup(); }

  /** Runs `fn` with the layer (and its parent, when given) got, putting them afterwards. */
  private async withLayers<T>(id: string, parent: string, fn: (layerFs: string, parentFs: string) => Promise<T>): Promise<T> {
    const layerFs = await this.proto.get(id);
    try {
      if (parent === '') return await fn(layerFs, '');
      const parentFs = await this.proto.get(parent);
      try {
        return await fn(layerFs, parentFs);
      } finally {
        await this.proto.put(parent);
      }
    } finally {
      await this.proto.put(id);
    }
  }

  /** A tar of what `id` changed relative to `parent`; the layer stays got until the stream closes. */
  async diff(id: string, parent?: string): Promise<NodeJS.ReadableStream> {
    validateId(id);
    const parentId = normalizeParent(parent);
    const layerFs = await this.proto.get(id);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.proto.put(id).catch((err: unknown) => { process.emitWarning(`graphdriver: put(${id}) after diff failed: ${String(err)}`); });
    };
    try {
      let stream: Readable;
      if (parentId === '') {
        stream = exportTree(layerFs, release);
      } else {
        const parentFs = await this.proto.get(parentId);
        let changes: Change[];
        try {
          changes = await changesDirs(layerFs, parentFs);
        } finally {
          await this.proto.put(parentId);
        }
        stream = exportChanges(layerFs, changes, release);
      }
      return stream;
    } catch (err) {
      release();
      throw err;
    }
  }

  async changes(id: string, parent?: string): Promise<Change[]> {
    validateId(id);
    const parentId = normalizeParent(parent);
    return this.withLayers(id, parentId, (layerFs, parentFs) => changesDirs(layerFs, parentFs));
  }

  async applyDiff(id: string, parent: string | undefined, diff: NodeJS.ReadableStream): Promise<number> {
    validateId(id);
    normalizeParent(parent);
    if (diff === null || typeof diff !== 'object' || typeof (diff as AsyncIterable<Buffer>)[Symbol.asyncIterator] !== 'function') {
      throw new TypeError('Expected a readable stream for diff');
    }
    const layerFs = await this.proto.get(id);
    const guard = isApplyGuard(this.proto) ? this.proto : undefined;
    try {
      // If the apply fails or the process dies, the layer stays marked incomplete: it is
      // then absent to exists()/get() and refused as a parent, and remove() cleans it up.
      if (guard?.guardApply !== undefined) return await guard.guardApply(id, () => applyLayer(layerFs, diff));
      await guard?.beginApply(id);
      const size = await applyLayer(layerFs, diff);
      await guard?.endApply(id);
      return size;
    } finally {
      await this.proto.put(id);
    }
  }

  async diffSize(id: string, parent?: string): Promise<number> {
    validateId(id);
    const parentId = normalizeParent(parent);
    return this.withLayers(id, parentId, async (layerFs, parentFs) => changesSize(layerFs, await changesDirs(layerFs, parentFs)));
  }
}
