// getput-counted: get is counted. Two gets return the same path and need two puts; a third put
// has no get to release and throws NotMountedError; get of a missing layer throws LayerNotFound.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { NotMountedError } from '../../../lib/index';
import { rejectsWithCode } from '../../helpers/assert-code';
import type { ConformanceCase } from '../suite';

export const getputCounted: ConformanceCase = {
  name: 'getput-counted',
  async run({ driver: d }) {
    await d.create('l', '');
    const p1 = await d.get('l');
    const p2 = await d.get('l');
    assert.equal(p2, p1, 'a second get returned another path');
    // Still usable after one put while a get is outstanding.
    await d.put('l');
    await fsp.writeFile(path.join(p1, 'still-there'), 'x');
    assert.equal(await fsp.readFile(path.join(p1, 'still-there'), 'utf8'), 'x');
    await d.put('l');
    const err = await rejectsWithCode(() => d.put('l'), 'ERR_GRAPHDRIVER_NOT_MOUNTED', 'third put');
    assert.ok(err instanceof NotMountedError, 'not a NotMountedError');
    // The layer is whole again on the next get (what was written was kept).
    const p3 = await d.get('l');
    assert.equal(await fsp.readFile(path.join(p3, 'still-there'), 'utf8'), 'x');
    await d.put('l');
    await rejectsWithCode(() => d.get('missing'), 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND', 'get of a missing layer');
    // put of a layer that was never got (and does not exist) is an error too: either code fits.
    await assert.rejects(() => d.put('missing'), (e: { code?: string }) =>
      e.code === 'ERR_GRAPHDRIVER_NOT_MOUNTED' || e.code === 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND');
  },
};
