// whiteout-opaque: a hand-made layer tar with AUFS-style whiteouts applied onto a child of
// base. `.wh.gone` deletes /gone, `dir/.wh.sub` deletes a subdirectory with its contents,
// `opq/.wh..wh..opq` makes /opq opaque so only what this tar puts there remains, and no
// whiteout marker ever appears in the resulting tree. The parent is untouched.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { buildTree, compareTrees, listTree, snapshotTree } from '../../helpers/fs-tree';
import { dir, file, opaque, tarStreamOf, whiteout } from '../../helpers/tar';
import type { ConformanceCase } from '../suite';

export const whiteoutOpaque: ConformanceCase = {
  name: 'whiteout-opaque',
  async run({ driver: d }) {
    await d.create('base', '');
    const b = await d.get('base');
    await buildTree(b, [
      { type: 'file', path: 'gone', content: 'bye' },
      { type: 'file', path: 'stays', content: 'here' },
      { type: 'dir', path: 'dir/sub/deeper' },
      { type: 'file', path: 'dir/sub/deeper/f', content: 'f' },
      { type: 'file', path: 'dir/keep', content: 'keep' },
      { type: 'file', path: 'opq/old1', content: 'old1' },
      { type: 'file', path: 'opq/kept-new', content: 'old version' },
      { type: 'file', path: 'opq/olddir/x', content: 'x' },
    ]);
    const baseBefore = await snapshotTree(b);
    await d.put('base');

    await d.create('child', 'base');
    const size = await d.applyDiff('child', 'base', await tarStreamOf([
      whiteout('gone'),
      dir('dir'),
      whiteout('dir/sub'),
      dir('opq'),
      opaque('opq'),
      file('opq/kept-new', 'kept-new'),
    ]));
    assert.equal(size, 'kept-new'.length, 'applyDiff size: only kept-new carries content');

    const c = await d.get('child');
    try {
      assert.deepEqual(await listTree(c), ['/dir', '/dir/keep', '/opq', '/opq/kept-new', '/stays']);
      assert.equal(await fsp.readFile(path.join(c, 'opq/kept-new'), 'utf8'), 'kept-new');
      assert.equal(await fsp.readFile(path.join(c, 'stays'), 'utf8'), 'here');
      const b2 = await d.get('base');
      assert.deepEqual(compareTrees(baseBefore, await snapshotTree(b2), { labels: ['base before', 'base after'] }), []);
      await d.put('base');
    } finally {
      await d.put('child');
    }

    // The layer's own diff carries the deletions back out as whiteouts, never as plain files.
    const ch = (await d.changes('child', 'base')).map((x) => x.path).sort();
    for (const p of ch) assert.ok(!path.basename(p).startsWith('.wh.'), `changes lists a whiteout marker: ${p}`);
    assert.ok(ch.includes('/gone') && ch.includes('/dir/sub') && ch.includes('/opq/old1') && ch.includes('/opq/olddir'),
      `changes misses a deletion: ${ch.join(', ')}`);
  },
};
