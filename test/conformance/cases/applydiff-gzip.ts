// applydiff-gzip: applyDiff takes a layer tar plain or gzip-compressed (as image layers are
// shipped); both give the same tree and the same size.
import * as assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { compareTrees, snapshotTree } from '../../helpers/fs-tree';
import { dir, file, makeTar, symlink } from '../../helpers/tar';
import type { ConformanceCase } from '../suite';

export const applydiffGzip: ConformanceCase = {
  name: 'applydiff-gzip',
  async run({ driver: d }) {
    const tar = await makeTar([
      dir('etc'), file('etc/os-release', 'ID=test\n'), file('big', Buffer.alloc(200_000, 0x5a), { mode: 0o600 }),
      symlink('etc/link', 'os-release'),
    ]);
    await d.create('plain', '');
    await d.create('gz', '');
    const sizePlain = await d.applyDiff('plain', '', Readable.from([tar]));
    const sizeGz = await d.applyDiff('gz', '', Readable.from([gzipSync(tar)]));
    assert.equal(sizePlain, 8 + 200_000);
    assert.equal(sizeGz, sizePlain);
    const a = await snapshotTree(await d.get('plain'));
    const b = await snapshotTree(await d.get('gz'));
    await d.put('plain');
    await d.put('gz');
    assert.deepEqual(compareTrees(a, b, { labels: ['plain', 'gzip'] }), []);
    assert.equal(a.get('/big')?.size, 200_000);
  },
};
