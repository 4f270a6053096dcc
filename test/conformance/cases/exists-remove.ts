// exists-remove: exists/remove/create bookkeeping. exists follows create and remove; remove of
// a missing layer and create on a missing parent throw LayerNotFound (the latter leaving no
// trace); create of an existing id throws LayerExists and leaves the layer as it was.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { rejectsWithCode } from '../../helpers/assert-code';
import { listTree } from '../../helpers/fs-tree';
import type { ConformanceCase } from '../suite';

export const existsRemove: ConformanceCase = {
  name: 'exists-remove',
  async run({ driver: d, root }) {
    assert.equal(await d.exists('l'), false);
    await d.create('l', '');
    assert.equal(await d.exists('l'), true);
    const p = await d.get('l');
    await fsp.writeFile(path.join(p, 'f'), 'data');
    await d.put('l');

    await rejectsWithCode(() => d.create('l', ''), 'ERR_GRAPHDRIVER_LAYER_EXISTS', 'create of an existing id');
    const q = await d.get('l');
    assert.equal(await fsp.readFile(path.join(q, 'f'), 'utf8'), 'data', 'create of an existing id changed it');
    await d.put('l');

    await d.remove('l');
    assert.equal(await d.exists('l'), false);
    await rejectsWithCode(() => d.get('l'), 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND', 'get after remove');
    await rejectsWithCode(() => d.remove('l'), 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND', 'remove of a removed layer');
    await rejectsWithCode(() => d.remove('never'), 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND', 'remove of a missing layer');

    const before = await listTree(root);
    await rejectsWithCode(() => d.create('orphan', 'no-such-parent'), 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND', 'create with a missing parent');
    assert.equal(await d.exists('orphan'), false);
    assert.deepEqual(await listTree(root), before, 'create with a missing parent left something under root');

    // The id is reusable after remove.
    await d.create('l', '');
    const r = await d.get('l');
    assert.deepEqual(await fsp.readdir(r), []);
    await d.put('l');
  },
};
