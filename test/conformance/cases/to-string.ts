// toString: a driver's name is its registered name, and so is its string form.
import * as assert from 'node:assert/strict';
import type { ConformanceCase } from '../suite';

export const toStringCase: ConformanceCase = {
  name: 'toString',
  async run({ driver: d, driverName }) {
    assert.equal(d.name, driverName);
    assert.equal(String(d), driverName);
    assert.equal(`${d}`, driverName);
    assert.equal(d.toString(), driverName);
  },
};
