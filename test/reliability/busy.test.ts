// busy.test.ts: remove() of a layer while a process still holds a file open inside its
// mount. overlay2 detaches the mount lazily (MNT_DETACH), so the holder keeps reading what it
// opened while the layer is removed completely: never a half-removed layer that still looks
// like one, and no EBUSY left for the caller to untangle. vfs: the open file simply survives
// its unlinked directory.
import { strict as assert } from 'node:assert';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { getDriver } from '../../lib/index';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

for (const driverName of ['overlay2', 'vfs']) {
  test(`${driverName}: remove while a file inside the mounted layer is open`, { skip: skipUnlessRoot('mounts overlayfs') }, async () => {
    await withTmpDir(async (tmp) => {
      const root = await tmp.mkdir('root');
      const d = await getDriver(driverName, root);
      await d.create('base');
      await d.create('ctr', 'base');
      const p = await d.get('ctr');
      await fsp.writeFile(path.join(p, 'held'), 'still readable');
      const fh = await fsp.open(path.join(p, 'held'), 'r');
      try {
        await d.remove('ctr');
        assert.equal(await d.exists('ctr'), false);
        await assert.rejects(d.get('ctr'), { code: 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND' });
        const buf = Buffer.alloc(64);
        const { bytesRead } = await fh.read(buf, 0, 64, 0);
        assert.equal(buf.subarray(0, bytesRead).toString(), 'still readable');
        // The id is free again, and nothing of the old layer is mounted at its path.
        await d.create('ctr', 'base');
        const again = await d.get('ctr');
        assert.deepEqual(await fsp.readdir(again), []);
        await d.put('ctr');
      } finally {
        await fh.close();
      }
      await d.cleanup();
    }, 'busy-');
  });
}
