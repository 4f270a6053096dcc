// layers.ts: the layer bookkeeping commands: create, rm and ls. Each keeps the CLI's layer
// record (metadata.ts) in step with the driver: the driver first, then the record, so a crash
// in between leaves at worst an unlisted layer or a listed one `ls` marks missing.
import type { Command } from '../command';
import { stringOpt } from '../command';
import { CliError } from '../errors';
import { humanSize } from '../progress';
import { keyValues } from './common';

export const create: Command = {
  name: 'create',
  args: 'ID [PARENT]',
  summary: 'make an empty layer, or one starting as a copy-on-write view of PARENT',
  description: 'Creates layer ID (on PARENT when given) and records it for `ls`. Prints the id.',
  options: {
    'layer-opt': { type: 'string', multiple: true, arg: 'KEY=VALUE', help: 'a per-layer driver option (e.g. size=10G where the driver supports it); repeatable' },
    'mount-label': { type: 'string', arg: 'LABEL', help: 'SELinux mount label for the layer' },
  },
  min: 1,
  max: 2,
  async run(ctx, [id, parent], opts) {
    const driver = await ctx.driver();
    const layerOpts = keyValues((opts['layer-opt'] as string[] | undefined) ?? [], '--layer-opt', 'create');
    const label = stringOpt(opts, 'mount-label');
    await driver.create(id!, parent ?? '', {
      ...(Object.keys(layerOpts).length > 0 ? { storageOpt: layerOpts } : {}),
      ...(label !== undefined ? { mountLabel: label } : {}),
    });
    await (await ctx.store()).put({ id: id!, parent: parent ?? '', created: new Date().toISOString() });
    ctx.print({ id, parent: parent ?? '' }, id!);
  },
};

export const rm: Command = {
  name: 'rm',
  args: 'ID',
  summary: 'remove a layer (refused while layers recorded on it exist)',
  description: 'Removes layer ID and everything in it (unmounting it first where the driver mounts), and drops it from the CLI\'s record. '
    + 'A layer the CLI recorded as the parent of an existing layer is refused: remove the children first. '
    + 'A recorded layer the driver no longer has is just forgotten.',
  min: 1,
  max: 1,
  async run(ctx, [id]) {
    const driver = await ctx.driver();
    const store = await ctx.store();
    const records = await store.list();
    const children: string[] = [];
    for (const r of records) if (r.parent === id && await driver.exists(r.id)) children.push(r.id);
    if (children.length > 0) {
      throw new CliError(`layer ${JSON.stringify(id)} is the parent of ${children.map((c) => JSON.stringify(c)).join(', ')}; remove ${children.length > 1 ? 'them' : 'it'} first`);
    }
    try {
      await driver.remove(id!);
    } catch (err) {
      const recorded = records.some((r) => r.id === id);
      if ((err as { code?: unknown }).code !== 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND' || !recorded) throw err;
      ctx.note(`layer ${JSON.stringify(id)} was already gone from ${driver.name}; forgetting it`);
    }
    await store.delete(id!);
    ctx.print({ id, removed: true }, id!);
  },
};

export const ls: Command = {
  name: 'ls',
  args: '',
  summary: 'list the layers made through this CLI, with parent and size',
  description: 'Lists the layers recorded in <root>/cli/<driver>.json (the library itself has no list call), in creation order, '
    + 'with their parent and size (diff-size against the parent). A recorded layer the driver says does not exist is marked missing. '
    + 'Layers made on the same root by other programs are not listed.',
  options: { 'no-size': { type: 'boolean', help: 'skip computing sizes (sizing reads every layer)' } },
  min: 0,
  max: 0,
  async run(ctx, _args, opts) {
    const driver = await ctx.driver();
    const records = await (await ctx.store()).list();
    const rows: Array<{ id: string; parent: string; size: number | null; created: string; exists: boolean; source?: string }> = [];
    for (const r of records) {
      const exists = await driver.exists(r.id);
      const size = exists && opts['no-size'] !== true ? await driver.diffSize(r.id, r.parent) : null;
      rows.push({ id: r.id, parent: r.parent, size, created: r.created, exists, ...(r.source !== undefined ? { source: r.source } : {}) });
    }
    const table = [['ID', 'PARENT', 'SIZE', 'CREATED', 'STATE']];
    for (const r of rows) {
      table.push([r.id, r.parent === '' ? '-' : r.parent, r.size === null ? '-' : humanSize(r.size), r.created.replace(/\.\d+Z$/, 'Z'), r.exists ? 'ok' : 'missing']);
    }
    const widths = table[0]!.map((_c, i) => Math.max(...table.map((row) => row[i]!.length)));
    const lines = table.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
    ctx.print({ driver: driver.name, layers: rows }, rows.length === 0 ? [] : lines);
  },
};
