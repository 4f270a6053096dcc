// diff.ts: the read side of layer diffs: `diff` (a tar of the changes, to stdout or a file),
// `changes` (A/C/D lines like `docker diff`) and `diff-size`. PARENT defaults to the parent
// the CLI recorded for the layer; give '' to compare against nothing (the whole tree).
import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from '../command';
import { stringOpt } from '../command';
import { CliError } from '../errors';
import { humanSize } from '../progress';
import { byPath, CHANGE_LETTER, CHANGE_NAME, parentFor } from './common';

const PARENT_NOTE = 'PARENT defaults to the parent recorded when the CLI created the layer (none if it did not); pass \'\' to compare against nothing.';

/** Copies `source` into `dest` without ending it (stdout must stay open), honouring backpressure. */
async function copyInto(source: AsyncIterable<Buffer>, dest: NodeJS.WritableStream): Promise<void> {
  for await (const chunk of source) {
    if (!dest.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => { dest.off('drain', onDrain); reject(err); };
        const onDrain = (): void => { dest.off('error', onError); resolve(); };
        dest.once('drain', onDrain);
        dest.once('error', onError);
      });
    }
  }
}

export const diff: Command = {
  name: 'diff',
  args: 'ID [PARENT]',
  summary: 'write a tar of what ID changed relative to PARENT (stdout or -o FILE)',
  description: `Writes the layer's changes as a tar: added and modified entries, deletions as .wh. whiteouts. ${PARENT_NOTE} `
    + 'A tar is never written to a terminal: redirect stdout or use -o. With -o the file appears complete or not at all (temp file + rename).',
  options: { output: { type: 'string', short: 'o', arg: 'FILE', help: 'write the tar to FILE instead of stdout' } },
  min: 1,
  max: 2,
  async run(ctx, [id, given], opts) {
    const driver = await ctx.driver();
    const parent = await parentFor(ctx, id!, given);
    const out = stringOpt(opts, 'output');
    if (out === undefined && ctx.io.stdout.isTTY === true) {
      throw new CliError('refusing to write a tar to a terminal; redirect stdout or use -o FILE', 2, 'ERR_GRAPHDRIVER_USAGE');
    }
    const tar = addAbortSignal(ctx.signal, (await driver.diff(id!, parent)) as Readable);
    const meter = ctx.progress(`diff ${id}`);
    const counted = tar.pipe(meter.counter());
    tar.on('error', (err) => counted.destroy(err));
    if (out === undefined) {
      await copyInto(counted, ctx.io.stdout);
    } else {
      const file = path.resolve(out);
      const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${randomBytes(6).toString('hex')}`);
      try {
        await pipeline(counted, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
        await fsp.rename(tmp, file);
      } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw err;
      }
    }
    meter.finish(`diff ${id}: ${humanSize(meter.count)} in ${meter.elapsed().toFixed(1)} s`);
    if (out !== undefined) ctx.print({ id, parent, file: path.resolve(out), bytes: meter.count }, `${path.resolve(out)}: ${meter.count} bytes`);
  },
};

export const changes: Command = {
  name: 'changes',
  args: 'ID [PARENT]',
  summary: 'list what ID changed relative to PARENT: A (added), C (changed), D (deleted)',
  description: `Lists the changed paths of the layer, one per line, like \`docker diff\`: "A /path", "C /path", "D /path", sorted by path. ${PARENT_NOTE}`,
  min: 1,
  max: 2,
  async run(ctx, [id, given]) {
    const driver = await ctx.driver();
    const parent = await parentFor(ctx, id!, given);
    const list = byPath(await driver.changes(id!, parent));
    ctx.print(
      { id, parent, changes: list.map((c) => ({ kind: CHANGE_NAME[c.kind], path: c.path })) },
      list.map((c) => `${CHANGE_LETTER[c.kind]} ${c.path}`),
    );
  },
};

export const diffSize: Command = {
  name: 'diff-size',
  args: 'ID [PARENT]',
  summary: 'print the size in bytes of what ID changed relative to PARENT',
  description: `Prints the size of the layer's changes in bytes: added and modified non-directories, hardlinked files once. ${PARENT_NOTE}`,
  min: 1,
  max: 2,
  async run(ctx, [id, given]) {
    const driver = await ctx.driver();
    const parent = await parentFor(ctx, id!, given);
    const size = await driver.diffSize(id!, parent);
    ctx.print({ id, parent, size }, String(size));
  },
};
