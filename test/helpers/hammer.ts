// hammer.ts: a child process for the cross-process tests. It opens driver argv[2] on the root
// argv[3] and, for argv[4] rounds, picks one of a few shared ids and creates it (from 'base'),
// applies a marker file into it, reads it through get, or removes it. The races between
// processes are expected to surface only as the driver's own errors (exists / not found / not
// got / busy: removing a layer another process has got); anything else is printed and makes
// the process exit 1. argv[5] = 'init-loop' instead re-opens the driver (whose init sweeps
// staging/ when it is alone) in a loop; argv[5] = 'remove' removes the id argv[4] and prints
// how that went, as one word.
import { Readable } from 'node:stream';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { getDriver } from '../../lib/index';
import { makeTar } from './hostile-tar';

const EXPECTED = new Set(['ERR_GRAPHDRIVER_LAYER_EXISTS', 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND', 'ERR_GRAPHDRIVER_NOT_MOUNTED', 'ERR_GRAPHDRIVER_LAYER_BUSY']);

async function main(): Promise<void> {
  const [driverName, root, roundsArg, mode] = process.argv.slice(2);
  const open = (): ReturnType<typeof getDriver> => getDriver(driverName!, root!);
  const rounds = Number(roundsArg);
  if (mode === 'remove') {
    // argv[4] is the id here: report how removing it went, as one word.
    try {
      const d = await open();
      try {
        await d.remove(roundsArg!);
      } finally {
        await d.cleanup();
      }
      process.stdout.write('removed\n');
    } catch (err) {
      process.stdout.write(`${(err as { code?: string }).code ?? String(err)}\n`);
    }
    return;
  }
  if (mode === 'get-put-held') {
    const d = await open();
    try {
      await fsp.readdir(await d.get('held'));
      await d.put('held');
    } finally {
      await d.cleanup();
    }
    return;
  }
  if (mode === 'init-loop') {
    for (let i = 0; i < rounds; i++) await (await open()).cleanup();
    return;
  }
  const d = await open();
  const ids = ['l0', 'l1', 'l2', 'l3'];
  let ok = 0;
  for (let i = 0; i < rounds; i++) {
    const id = ids[Math.floor(Math.random() * ids.length)]!;
    try {
      switch (Math.floor(Math.random() * 4)) {
        case 0: await d.create(id, 'base'); break;
        case 1: await d.applyDiff(id, 'base', Readable.from([makeTar([{ name: `marker-${id}`, data: id }])])); break;
        case 2: {
          const p = await d.get(id);
          try {
            // A complete layer always has the whole base; a marker, if any, names this layer.
            const names = await fsp.readdir(p);
            for (const n of ['etc', 'usr']) if (!names.includes(n)) throw new Error(`layer ${id} is missing base's ${n}: ${names.join(',')}`);
            for (const n of names.filter((x) => x.startsWith('marker-'))) {
              if (n !== `marker-${id}` || (await fsp.readFile(path.join(p, n), 'utf8')) !== id) throw new Error(`layer ${id} has a foreign marker ${n}`);
            }
          } finally {
            await d.put(id);
          }
          break;
        }
        default: await d.remove(id);
      }
      ok++;
    } catch (err) {
      if (!EXPECTED.has((err as { code?: string }).code ?? '')) {
        process.stdout.write(`unexpected error in round ${i} on ${id}: ${(err as Error).stack ?? String(err)}\n`);
        process.exit(1);
      }
    }
  }
  await d.cleanup();
  process.stdout.write(`ok ${ok}\n`);
}

main().catch((err: unknown) => {
  process.stdout.write(`worker failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
