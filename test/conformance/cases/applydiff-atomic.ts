// applydiff-atomic: a layer is complete or visibly incomplete (driver.ts rules). When applyDiff
// fails part-way (a tar truncated after some entries were written), the layer must either be
// left exactly as it was before the call, or stop existing (exists false, unusable as a parent)
// — never a half-applied layer that a child can be created on. An incomplete layer is removable.
import * as assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { compareTrees, snapshotTree } from '../../helpers/fs-tree';
import { dir, file, makeTar } from '../../helpers/tar';
import type { ConformanceCase } from '../suite';

export const applydiffAtomic: ConformanceCase = {
  name: 'applydiff-atomic',
  async run({ driver: d }) {
    await d.create('base', '');
    await d.applyDiff('base', '', Readable.from([await makeTar([file('kept', 'from base')])]));
    await d.create('l', 'base');
    const before = await snapshotTree(await d.get('l'));
    await d.put('l');
    // dir + first file fit in the first 1536 bytes; the cut lands inside the second file's data.
    const tar = await makeTar([dir('x'), file('x/a', 'written first'), file('x/b', Buffer.alloc(4096, 1))]);
    const cut = tar.subarray(0, 2048 + 512);
    await assert.rejects(d.applyDiff('l', 'base', Readable.from([cut])), { code: 'ERR_GRAPHDRIVER_ARCHIVE' });

    if (await d.exists('l')) {
      const after = await snapshotTree(await d.get('l'));
      await d.put('l');
      assert.deepEqual(compareTrees(before, after, { labels: ['before applyDiff', 'after failed applyDiff'] }), [],
        'the failed applyDiff left a half-applied layer that still exists');
    } else {
      await assert.rejects(d.create('child', 'l'), { code: 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND' });
      await assert.rejects(d.get('l'), { code: 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND' });
      // An incomplete layer is removable, and its id is free again afterwards.
      await d.remove('l');
      assert.equal(await d.exists('l'), false);
      await d.create('l', 'base');
      assert.equal(await d.exists('l'), true);
    }
  },
};
