// concurrency: operations racing within one process are exact (per-layer locks, counted gets).
// 64 concurrent gets of one layer return one path and leave it got 64 times (64 puts release
// it, nothing stays mounted, a 65th put is NotMountedError); 16 concurrent creates on one
// parent all make whole, independent children; and remove racing get ends either way without
// a trace: the layer is gone, nothing mounted, and a get that won was ended by the remove.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { rejectsWithCode } from '../../helpers/assert-code';
import { mountsUnder } from '../../helpers/tmp';
import type { ConformanceCase } from '../suite';

export const concurrency: ConformanceCase = {
  name: 'concurrency',
  async run({ driver: d, raw, root }) {
    const realRoot = await fsp.realpath(root);
    await d.create('base', '');
    const b = await d.get('base');
    await fsp.writeFile(path.join(b, 'from-base'), 'base');
    await d.put('base');

    const paths = await Promise.all(Array.from({ length: 64 }, () => d.get('base')));
    assert.equal(new Set(paths).size, 1, 'concurrent gets returned different paths');
    assert.equal(await fsp.readFile(path.join(paths[0]!, 'from-base'), 'utf8'), 'base');
    await Promise.all(Array.from({ length: 64 }, () => d.put('base')));
    await rejectsWithCode(() => d.put('base'), 'ERR_GRAPHDRIVER_NOT_MOUNTED', 'a 65th put');
    assert.deepEqual(mountsUnder(realRoot), [], 'a mount outlived 64 gets and 64 puts');

    const kids = Array.from({ length: 16 }, (_, i) => `kid${i}`);
    await Promise.all(kids.map((k) => d.create(k, 'base')));
    for (const k of kids) {
      const p = await d.get(k);
      try {
        assert.equal(await fsp.readFile(path.join(p, 'from-base'), 'utf8'), 'base', `${k} lacks its parent's file`);
        await fsp.writeFile(path.join(p, 'own'), k);
      } finally {
        await d.put(k);
      }
    }
    for (const k of kids) {
      const p = await d.get(k);
      try {
        assert.equal(await fsp.readFile(path.join(p, 'own'), 'utf8'), k, `${k} sees another child's write`);
      } finally {
        await d.put(k);
      }
    }

    // Remove racing get, through the untracked driver: a get that wins is ended by the remove.
    for (const k of kids.slice(0, 8)) {
      const [got, removed] = await Promise.allSettled([raw.get(k), raw.remove(k)]);
      assert.equal(removed.status, 'fulfilled', `remove of ${k} failed: ${removed.status === 'rejected' ? String(removed.reason) : ''}`);
      if (got.status === 'rejected') assert.equal((got.reason as { code?: string }).code, 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND', String(got.reason));
      assert.equal(await raw.exists(k), false, `${k} exists after its remove`);
      await assert.rejects(() => raw.put(k), (e: { code?: string }) =>
        e.code === 'ERR_GRAPHDRIVER_NOT_MOUNTED' || e.code === 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND');
    }
    assert.deepEqual(mountsUnder(realRoot), [], 'a mount outlived remove racing get');
  },
};
