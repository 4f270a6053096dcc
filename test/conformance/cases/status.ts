// status: status() is a non-empty list of [string, string] pairs that names the backing
// filesystem of the driver's home, by the fsmagic name table (devicemapper: of its devices).
import * as assert from 'node:assert/strict';
import { fsName, getFsMagic } from '../../../lib/index';
import type { ConformanceCase } from '../suite';

export const status: ConformanceCase = {
  name: 'status',
  async run({ driver: d, root, driverName }) {
    const s = await d.status();
    assert.ok(Array.isArray(s) && s.length > 0, 'status() is empty');
    for (const pair of s) {
      assert.ok(Array.isArray(pair) && pair.length === 2, `not a pair: ${JSON.stringify(pair)}`);
      assert.equal(typeof pair[0], 'string');
      assert.equal(typeof pair[1], 'string');
    }
    const backing = s.filter(([k]) => k === 'Backing Filesystem');
    assert.equal(backing.length, 1, `no single 'Backing Filesystem' in ${JSON.stringify(s)}`);
    // devicemapper names the filesystem of its thin devices there (the base device's, as the
    // engine); every other driver names the filesystem its home is on.
    if (driverName === 'devicemapper') assert.equal(backing[0]![1], 'ext4');
    else assert.equal(backing[0]![1], fsName(await getFsMagic(root)));
  },
};
