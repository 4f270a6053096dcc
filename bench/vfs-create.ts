// vfs-create.ts: `npm run bench:vfs` — the vfs driver's create (a full copy of the parent,
// keeping owners, modes, xattrs, hardlinks, devices and ns times) beside
// `cp -a --reflink=auto` of the same tree, in one run, alternating, medians. On btrfs both
// sides reflink; on tmpfs/ext4 both copy bytes. Prints a table, then one JSON line.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { getDriver } from '../lib/index';
import { withScratch, type ScratchKind } from './lib/scratch-fs';
import { mustRun, nowMs, pair, round, table } from './lib/stats';
import { DEFAULT_ROOTFS, generateRootfs } from './lib/tree-gen';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    fs: { type: 'string', default: 'tmpfs' },
    entries: { type: 'string', default: '10000' },
    'layer-mib': { type: 'string', default: '100' },
  },
});

async function main(): Promise<void> {
  const kind = opts.fs as ScratchKind;
  const runs = Math.max(1, Number(opts.runs));
  const spec = { ...DEFAULT_ROOTFS, entries: Number(opts.entries), bytes: Number(opts['layer-mib']) << 20 };
  await withScratch(kind, Math.max(2048, (spec.bytes >> 20) * 5), async (scratch) => {
    const root = path.join(scratch.mountpoint, 'root');
    const d = await getDriver('vfs', root);
    await d.create('base');
    const base = await d.get('base');
    const stats = await generateRootfs(base, spec);
    const count = stats.dirs + stats.files + stats.symlinks + stats.hardlinks;
    const cpOut = path.join(scratch.mountpoint, 'cp-copy');
    let n = 0;
    const result = await pair('vfs create',
      {
        name: 'driver.create',
        prepare: async () => {
          if (await d.exists('copy')) await d.remove('copy');
          await scratch.sync();
        },
        run: async () => {
          const t = nowMs();
          await d.create('copy', 'base');
          n++;
          return nowMs() - t;
        },
      },
      {
        name: 'cp -a',
        prepare: async () => {
          await fsp.rm(cpOut, { recursive: true, force: true });
          await scratch.sync();
        },
        run: async () => (await mustRun('cp', ['-a', '--reflink=auto', base, cpOut])).ms,
      }, runs);
    await d.put('base');
    if (await d.exists('copy')) await d.remove('copy');
    await d.cleanup();
    process.stdout.write(`\nbench/vfs-create on ${kind}, ${os.release()}, ${os.cpus().length} CPUs, ${runs} runs (median), ${new Date().toISOString()}\n\n`);
    process.stdout.write(table(['workload', 'ours', 'ms', 'peer', 'ms', 'ratio'], [
      [`create (copy of ${count} entries, ${Math.round(stats.bytes / 2 ** 20)} MiB)`, 'driver.create', round(result.oursMedianMs, 0),
        'cp -a --reflink=auto', round(result.peerMedianMs, 0), round(result.ratio, 2)],
    ]) + '\n\n');
    process.stdout.write(JSON.stringify({ bench: 'vfs-create', fs: kind, kernel: os.release(), loadavg: os.loadavg(), entries: count, bytes: stats.bytes, creates: n, ...result }) + '\n');
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/vfs-create: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
