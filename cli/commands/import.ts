// import.ts: `import FILE|DIR`: stacks the layers of a `docker save` archive or an OCI image
// layout, bottom first, each created on the one below and filled with applyDiff, and prints
// the top layer's id. Ids are the engine's chain ids (import/image.ts), so a layer already
// present (shared with an image imported before) is reused, not applied again. A blob whose
// digest the format states is hashed and checked before anything of it is written. If a layer
// fails, the layers below it stay (they are complete and content-addressed) and the failed one
// is removed.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { Command } from '../command';
import { CliError } from '../errors';
import { readImage, chainId, layerIdOf } from '../import/image';
import { openSource } from '../import/source';
import { applyInto } from './apply';

interface Imported {
  id: string;
  parent: string;
  diffId: string;
  size: number | null;
  reused: boolean;
}

export const importImage: Command = {
  name: 'import',
  args: 'FILE|DIR',
  summary: 'import a docker save archive or an OCI image layout; prints the top layer id',
  description: 'Reads a `docker save` archive (tar or tar.gz with manifest.json) or an OCI image layout (a directory, or a tar of one, '
    + 'with index.json; layers plain or gzip, zstd is refused) and stacks its layers in order. Layer n gets the engine\'s chain id, '
    + 'hex without "sha256:": id(0) = diffID(0), id(n) = sha256("sha256:<id(n-1)> " + diffID(n)), with diff ids from the image config '
    + '(or, if it has none, each blob\'s own sha256). Layers that already exist are reused. Blob digests stated by the format are '
    + 'verified before the layer is written. Prints the top layer\'s id, to use as PARENT of a container layer.',
  min: 1,
  max: 1,
  async run(ctx, [where]) {
    const driver = await ctx.driver();
    const store = await ctx.store();
    const src = await openSource(where!, ctx.globals.root);
    try {
      const image = await readImage(src);
      if (image.layers.length === 0) throw new CliError(`${src.where}: the image has no layers`);
      const done: Imported[] = [];
      let parentChain = '';
      let parentId = '';
      for (const [i, layer] of image.layers.entries()) {
        ctx.signal.throwIfAborted();
        const n = `${i + 1}/${image.layers.length}`;
        if (layer.digest !== undefined) {
          const [alg, hex] = layer.digest.split(':') as [string, string];
          if (alg !== 'sha256' && alg !== 'sha512') throw new CliError(`layer ${n}: unsupported digest algorithm ${alg}`);
          const blob = await src.open(layer.blob);
          const meter = ctx.progress(`verify ${n}`, blob.size);
          const h = createHash(alg);
          for await (const chunk of blob.stream.pipe(meter.counter()) as AsyncIterable<Buffer>) { h.update(chunk); ctx.signal.throwIfAborted(); }
          meter.finish();
          if (h.digest('hex') !== hex) throw new CliError(`layer ${n} (${layer.blob}) does not match its digest ${layer.digest}`);
        }
        let diffId = layer.diffId ?? (layer.digest?.startsWith('sha256:') === true ? layer.digest : undefined);
        if (diffId === undefined) {
          const h = createHash('sha256');
          for await (const chunk of (await src.open(layer.blob)).stream as AsyncIterable<Buffer>) h.update(chunk);
          diffId = `sha256:${h.digest('hex')}`;
        }
        const chain = chainId(parentChain, diffId);
        const id = layerIdOf(chain);
        let size: number | null = null;
        const reused = await driver.exists(id);
        if (!reused) {
          const blob = await src.open(layer.blob);
          const res = await applyInto(ctx, driver, id, parentId, { stream: blob.stream, size: blob.size, name: layer.blob }, `layer ${n} ${id.slice(0, 12)}`);
          size = res.size;
        }
        if (!reused || (await store.find(id)) === undefined) {
          await store.put({ id, parent: parentId, created: new Date().toISOString(), source: `${path.resolve(where!)}${image.ref !== undefined ? ` (${image.ref})` : ''} layer ${i + 1}` });
        }
        done.push({ id, parent: parentId, diffId, size, reused });
        parentChain = chain;
        parentId = id;
      }
      if (ctx.progressEnabled) for (const d of done) ctx.note(`${d.reused ? 'reused ' : 'applied'} ${d.id}${d.size !== null ? ` (${d.size} bytes)` : ''}`);
      ctx.print({ format: image.format, ...(image.ref !== undefined ? { ref: image.ref } : {}), top: parentId, layers: done }, parentId);
    } finally {
      await src.close();
    }
  },
};
