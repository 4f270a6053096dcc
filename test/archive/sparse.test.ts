// sparse.test.ts: GNU sparse files. GNU tar stores a file with holes in one of four forms
// (old GNU 'S' headers; PAX 0.0, 0.1 and 1.0); apply must read each and write the data at its
// offsets, leaving the holes unallocated. Export writes PAX 1.0, which GNU tar reads back
// byte for byte (`tar --compare` agrees) and which apply turns back into the same sparse file.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { describe, test } from 'node:test';
import { applyLayer } from '../../lib/archive/apply';
import { exportTree } from '../../lib/archive/export';
import { withTmpDir } from '../helpers/tmp';

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** 10 MiB with data at 4 KiB and 8 MiB; 3 MiB with data at ~1 MB and a trailing hole. */
async function makeSparse(dir: string): Promise<void> {
  const big = await fsp.open(path.join(dir, 'big'), 'w');
  await big.truncate(10 << 20);
  await big.write(Buffer.from('hello'), 0, 5, 4096);
  await big.write(Buffer.from('end'), 0, 3, 8 << 20);
  await big.close();
  const small = await fsp.open(path.join(dir, 'small'), 'w');
  await small.truncate(3 << 20);
  await small.write(Buffer.from('abc'), 0, 3, 1_000_000);
  await small.close();
}

async function allocatedKiB(p: string): Promise<number> {
  return Number((await fsp.stat(p, { bigint: true })).blocks) / 2;
}

async function sameContent(a: string, b: string): Promise<void> {
  assert.ok((await fsp.readFile(a)).equals(await fsp.readFile(b)), `${a} and ${b} differ`);
}

describe('GNU sparse files', () => {
  const forms: Array<[string, string[]]> = [
    ['old GNU', ['--format=gnu']],
    ['PAX 0.0', ['--format=posix', '--sparse-version=0.0']],
    ['PAX 0.1', ['--format=posix', '--sparse-version=0.1']],
    ['PAX 1.0', ['--format=posix', '--sparse-version=1.0']],
  ];
  for (const [label, flags] of forms) {
    test(`apply reads ${label} sparse entries and keeps the holes`, async () => {
      await withTmpDir(async (tmp) => {
        const src = await tmp.mkdir('src');
        await makeSparse(src);
        run('tar', ['--sparse', ...flags, '-C', src, '-cf', tmp.join('s.tar'), 'big', 'small']);
        const out = await tmp.mkdir('out');
        const size = await applyLayer(out, Readable.from([await fsp.readFile(tmp.join('s.tar'))]));
        assert.equal(size, (10 << 20) + (3 << 20), 'sizes count the real (logical) size');
        for (const f of ['big', 'small']) {
          await sameContent(path.join(src, f), path.join(out, f));
          assert.equal((await fsp.stat(path.join(out, f))).size, (await fsp.stat(path.join(src, f))).size);
          assert.ok(await allocatedKiB(path.join(out, f)) <= 64, `${f} was written dense: ${await allocatedKiB(path.join(out, f))} KiB`);
        }
      });
    });
  }

  test('export writes PAX 1.0 sparse that GNU tar extracts and compares, and apply round-trips', async () => {
    await withTmpDir(async (tmp) => {
      const src = await tmp.mkdir('src');
      await makeSparse(src);
      await pipeline(exportTree(src), createWriteStream(tmp.join('ours.tar')));
      assert.ok((await fsp.stat(tmp.join('ours.tar'))).size < 64 << 10, 'the holes were not stored');
      const byTar = await tmp.mkdir('by-tar');
      run('tar', ['-xf', tmp.join('ours.tar'), '-C', byTar]);
      run('tar', ['--compare', '-f', tmp.join('ours.tar'), '-C', src]);
      const back = await tmp.mkdir('back');
      await applyLayer(back, Readable.from([await fsp.readFile(tmp.join('ours.tar'))]));
      for (const f of ['big', 'small']) {
        await sameContent(path.join(src, f), path.join(byTar, f));
        await sameContent(path.join(src, f), path.join(back, f));
        assert.ok(await allocatedKiB(path.join(back, f)) <= 64);
      }
      assert.deepEqual((await fsp.readdir(back)).sort(), ['big', 'small']);
    });
  });
});
