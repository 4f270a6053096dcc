// create-base: what is written into a layer (odd modes, setuid, sticky, owners) is kept across
// put and a fresh get (moby graphtest createBase/verifyBase, plus a setuid file chowned first).
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { ConformanceCase } from '../suite';

async function check(p: string, mode: number, uid: number, gid: number): Promise<void> {
  const st = await fsp.lstat(p);
  assert.equal((st.mode & 0o7777).toString(8), mode.toString(8), `${path.basename(p)}: mode`);
  assert.equal(st.uid, uid, `${path.basename(p)}: uid`);
  assert.equal(st.gid, gid, `${path.basename(p)}: gid`);
}

export const createBase: ConformanceCase = {
  name: 'create-base',
  needsRoot: 'chown to other uids',
  async run({ driver }) {
    await driver.create('base', '');
    const p = await driver.get('base');
    const dir = path.join(p, 'a subdir');
    await fsp.mkdir(dir);
    await fsp.lchown(dir, 1, 2);
    await fsp.chmod(dir, 0o1705);
    const file = path.join(p, 'a file');
    await fsp.writeFile(file, 'Some data');
    await fsp.chmod(file, 0o4222); // the engine's setuid 0222 file
    const suid = path.join(p, 'setuid file');
    await fsp.writeFile(suid, '#!/bin/true\n');
    await fsp.lchown(suid, 3, 4);
    await fsp.chmod(suid, 0o4755); // after chown: chown clears setuid
    await driver.put('base');

    const q = await driver.get('base');
    assert.deepEqual((await fsp.readdir(q)).sort(), ['a file', 'a subdir', 'setuid file']);
    await check(path.join(q, 'a subdir'), 0o1705, 1, 2);
    assert.ok((await fsp.lstat(path.join(q, 'a subdir'))).isDirectory());
    await check(path.join(q, 'a file'), 0o4222, 0, 0);
    assert.equal(await fsp.readFile(path.join(q, 'a file'), 'utf8'), 'Some data');
    await check(path.join(q, 'setuid file'), 0o4755, 3, 4);
    assert.equal(await fsp.readFile(path.join(q, 'setuid file'), 'utf8'), '#!/bin/true\n');
    await driver.put('base');
  },
};
