// create-empty: a layer created without a parent is an empty directory, mode 0755, owned 0:0.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { ConformanceCase } from '../suite';

export const createEmpty: ConformanceCase = {
  name: 'create-empty',
  needsRoot: 'checks the layer is owned 0:0',
  async run({ driver }) {
    await driver.create('empty', '');
    assert.equal(await driver.exists('empty'), true);
    const p = await driver.get('empty');
    assert.ok(path.isAbsolute(p), `get returned a relative path: ${p}`);
    const st = await fsp.lstat(p);
    assert.ok(st.isDirectory(), 'layer root is not a directory');
    assert.equal((st.mode & 0o7777).toString(8), '755');
    assert.equal(st.uid, 0);
    assert.equal(st.gid, 0);
    assert.deepEqual(await fsp.readdir(p), []);
    await driver.put('empty');
  },
};
