// deep-chain-50: a chain of 50 layers, each adding `layer-<i>` and rewriting a shared file;
// the top layer shows all 50 files and the last content.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { ConformanceCase } from '../suite';

const depth = 50;

export const deepChain50: ConformanceCase = {
  name: 'deep-chain-50',
  async run({ driver }) {
    let parent = '';
    for (let i = 0; i < depth; i++) {
      const id = `layer-${i}`;
      await driver.create(id, parent);
      const p = await driver.get(id);
      await fsp.writeFile(path.join(p, id), `content of ${i}\n`);
      await fsp.writeFile(path.join(p, 'shared'), `written by ${i}\n`);
      await driver.put(id);
      parent = id;
    }
    const top = await driver.get(parent);
    const expected = [...Array.from({ length: depth }, (_, i) => `layer-${i}`), 'shared'].sort();
    assert.deepEqual((await fsp.readdir(top)).sort(), expected);
    for (let i = 0; i < depth; i++) {
      assert.equal(await fsp.readFile(path.join(top, `layer-${i}`), 'utf8'), `content of ${i}\n`);
    }
    assert.equal(await fsp.readFile(path.join(top, 'shared'), 'utf8'), `written by ${depth - 1}\n`);
    await driver.put(parent);
    // The middle of the chain still shows only its own ancestry.
    const mid = await driver.get('layer-9');
    assert.deepEqual((await fsp.readdir(mid)).sort(), [...Array.from({ length: 10 }, (_, i) => `layer-${i}`), 'shared'].sort());
    assert.equal(await fsp.readFile(path.join(mid, 'shared'), 'utf8'), 'written by 9\n');
    await driver.put('layer-9');
  },
};
