// apply.ts: `apply ID [PARENT] [FILE|-]`: write a layer tar (plain or gzip; the library detects
// which) into a layer, creating the layer on PARENT first when it does not exist yet. A layer
// this command created is removed again if the apply fails, so a failed apply leaves nothing;
// an existing layer that fails is left to the driver, which marks it incomplete.
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import type { Driver } from '../../lib/index';
import type { Command } from '../command';
import type { Ctx } from '../context';
import { CliError, EXIT } from '../errors';
import { humanSize } from '../progress';
import { parentFor } from './common';

/** An input: a file (with its size, for the meter) or stdin. */
export interface TarInput {
  stream: NodeJS.ReadableStream;
  size: number | undefined;
  name: string;
}

/** Opens FILE, or stdin for '-' (refused when stdin is a terminal). */
export async function openInput(ctx: Ctx, file: string): Promise<TarInput> {
  if (file === '-') {
    if (ctx.io.stdin.isTTY === true) throw new CliError('refusing to read a tar from a terminal; pipe one in or name a FILE', EXIT.USAGE, 'ERR_GRAPHDRIVER_USAGE');
    return { stream: ctx.io.stdin, size: undefined, name: 'stdin' };
  }
  const st = await fsp.stat(file);
  if (!st.isFile()) throw new CliError(`${file} is not a regular file`);
  return { stream: createReadStream(file), size: st.size, name: path.resolve(file) };
}

/**
 * Applies `input` to layer `id` (created on `parent` first unless it exists), counting bytes
 * into a progress meter labelled `label`. Returns what applyDiff returned and whether the
 * layer was created here.
 */
export async function applyInto(ctx: Ctx, driver: Driver, id: string, parent: string, input: TarInput, label: string,
  onChunk?: (chunk: Buffer) => void): Promise<{ size: number; read: number; created: boolean }> {
  const created = !(await driver.exists(id));
  if (created) await driver.create(id, parent);
  const meter = ctx.progress(label, input.size);
  const counted = meter.counter(onChunk);
  (input.stream as Readable).on('error', (err: Error) => counted.destroy(err));
  addAbortSignal(ctx.signal, counted);
  input.stream.pipe(counted);
  try {
    const size = await driver.applyDiff(id, parent, counted);
    meter.finish(`${label}: ${humanSize(meter.count)} read, ${humanSize(size)} written in ${meter.elapsed().toFixed(1)} s`);
    return { size, read: meter.count, created };
  } catch (err) {
    meter.finish();
    (input.stream as Readable).destroy?.();
    if (created) await driver.remove(id).catch(() => undefined);
    throw err;
  }
}

export const apply: Command = {
  name: 'apply',
  args: 'ID [PARENT] [FILE|-]',
  summary: 'apply a layer tar (plain or gzip) to ID, creating ID on PARENT if needed',
  description: 'Writes the changes in a layer tar into layer ID; .wh. whiteouts delete and .wh..wh..opq makes a directory opaque. '
    + 'With one argument the tar is read from stdin; with two, the second is FILE; with three, ID PARENT FILE. "-" means stdin. '
    + 'If ID does not exist it is created on PARENT first (and removed again if the apply fails). If it exists, PARENT defaults '
    + 'to the parent the CLI recorded for it. Prints the size written.',
  min: 1,
  max: 3,
  async run(ctx, args) {
    const id = args[0]!;
    const file = args.length === 1 ? '-' : args[args.length - 1]!;
    const given = args.length === 3 ? args[1] : undefined;
    const driver = await ctx.driver();
    const store = await ctx.store();
    const parent = (await driver.exists(id)) ? await parentFor(ctx, id, given) : (given ?? '');
    const input = await openInput(ctx, file);
    const result = await applyInto(ctx, driver, id, parent, input, `apply ${id}`);
    if (result.created || (await store.find(id)) === undefined) {
      await store.put({ id, parent, created: new Date().toISOString(), source: input.name });
    }
    ctx.print({ id, parent, size: result.size, read: result.read, created: result.created }, String(result.size));
  },
};
