// bad-ids: ids that are empty, '.', '..', contain '/' or NUL, or exceed 255 bytes are refused
// by every method with InvalidIdError (ERR_GRAPHDRIVER_INVALID_ID), in the id and in the parent
// position, before anything touches the disk: the listing under root is unchanged.
import { Readable } from 'node:stream';
import { rejectsWithCode } from '../../helpers/assert-code';
import { listTree } from '../../helpers/fs-tree';
import type { ConformanceCase } from '../suite';
import * as assert from 'node:assert/strict';

const bad = ['', '.', '..', 'a/b', 'a\0b', 'x'.repeat(256)];
const code = 'ERR_GRAPHDRIVER_INVALID_ID';

/** An empty but valid tar (two zero blocks). */
function emptyTar(): Readable {
  return Readable.from([Buffer.alloc(1024)]);
}

export const badIds: ConformanceCase = {
  name: 'bad-ids',
  async run({ driver: d, root }) {
    await d.create('ok', '');
    // A 255-byte id is the longest allowed; it is a valid id, not a bad one.
    const longest = 'y'.repeat(255);
    await d.create(longest, 'ok');
    assert.equal(await d.exists(longest), true);
    const before = await listTree(root);
    for (const id of bad) {
      const what = `id ${JSON.stringify(id.length > 20 ? `${id.slice(0, 8)}...(${id.length})` : id)}`;
      await rejectsWithCode(() => d.create(id, ''), code, `create(${what})`);
      await rejectsWithCode(() => d.remove(id), code, `remove(${what})`);
      await rejectsWithCode(() => d.get(id), code, `get(${what})`);
      await rejectsWithCode(() => d.put(id), code, `put(${what})`);
      await rejectsWithCode(() => d.exists(id), code, `exists(${what})`);
      await rejectsWithCode(() => d.diff(id, ''), code, `diff(${what})`);
      await rejectsWithCode(() => d.changes(id, ''), code, `changes(${what})`);
      const s = emptyTar();
      try {
        await rejectsWithCode(() => d.applyDiff(id, '', s), code, `applyDiff(${what})`);
      } finally {
        s.destroy();
      }
      await rejectsWithCode(() => d.diffSize(id, ''), code, `diffSize(${what})`);
      if (id === '') continue; // as a parent, '' means none
      await rejectsWithCode(() => d.create('new-layer', id), code, `create(new-layer, parent ${what})`);
      await rejectsWithCode(() => d.diff('ok', id), code, `diff(ok, parent ${what})`);
      await rejectsWithCode(() => d.changes('ok', id), code, `changes(ok, parent ${what})`);
      const s2 = emptyTar();
      try {
        await rejectsWithCode(() => d.applyDiff('ok', id, s2), code, `applyDiff(ok, parent ${what})`);
      } finally {
        s2.destroy();
      }
      await rejectsWithCode(() => d.diffSize('ok', id), code, `diffSize(ok, parent ${what})`);
    }
    assert.equal(await d.exists('new-layer'), false);
    assert.deepEqual(await listTree(root), before, 'a rejected call changed what is under root');
  },
};
