// enospc.test.ts: a full disk. The driver's root is on a small tmpfs (size=16m); an applyDiff
// larger than what is left and a vfs create whose copy does not fit both fail with ENOSPC (the
// errno, not a generic error), leave the layer absent (incomplete, never a parent) and
// removable, and leave every other layer intact; once the space is back the same ids work.
import { strict as assert } from 'node:assert';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { getDriver } from '../../lib/index';
import { mount } from '../../lib/native';
import { makeTar } from '../helpers/hostile-tar';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

const MiB = 1 << 20;

function bigTar(files: number, size: number): Buffer {
  return makeTar(Array.from({ length: files }, (_, i) => ({ name: `big/f${i}`, data: 'x'.repeat(size) })));
}

describe('ENOSPC', { skip: skipUnlessRoot('mounts a small tmpfs') }, () => {
  for (const driverName of ['vfs', 'overlay2']) {
    test(`${driverName}: applyDiff that fills the disk fails cleanly and leaves the rest intact`, async () => {
      await withTmpDir(async (tmp) => {
        const small = await tmp.mkdir('small');
        await mount('tmpfs', small, 'tmpfs', 0, 'size=16m');
        const d = await getDriver(driverName, path.join(small, 'root'));
        await d.create('base');
        await d.applyDiff('base', '', Readable.from([bigTar(4, MiB)]));
        await d.create('victim', 'base');
        await assert.rejects(d.applyDiff('victim', 'base', Readable.from([bigTar(20, MiB)])), { code: 'ENOSPC' });
        assert.equal(await d.exists('victim'), false, 'a half-applied layer must not look complete');
        await assert.rejects(d.create('child', 'victim'), { code: 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND' });
        await d.remove('victim');
        const b = await d.get('base');
        assert.deepEqual((await fsp.readdir(path.join(b, 'big'))).sort(), ['f0', 'f1', 'f2', 'f3']);
        assert.equal((await fsp.stat(path.join(b, 'big', 'f3'))).size, MiB);
        await d.put('base');
        // With the space back, the same id works.
        await d.create('victim', 'base');
        await d.applyDiff('victim', 'base', Readable.from([bigTar(2, MiB)]));
        assert.equal(await d.exists('victim'), true);
        await d.cleanup();
      }, 'enospc-');
    });
  }

  test('vfs: a create whose copy does not fit fails with ENOSPC and leaves nothing', async () => {
    await withTmpDir(async (tmp) => {
      const small = await tmp.mkdir('small');
      await mount('tmpfs', small, 'tmpfs', 0, 'size=16m');
      const d = await getDriver('vfs', path.join(small, 'root'));
      await d.create('base');
      await d.applyDiff('base', '', Readable.from([bigTar(10, MiB)]));
      await assert.rejects(d.create('copy', 'base'), { code: 'ENOSPC' });
      assert.equal(await d.exists('copy'), false);
      assert.deepEqual(await fsp.readdir(path.join(small, 'root', 'vfs', 'staging')), [], 'the failed copy is not left in staging/');
      assert.equal(await d.exists('base'), true);
      await d.cleanup();
    }, 'enospc-');
  });
});
