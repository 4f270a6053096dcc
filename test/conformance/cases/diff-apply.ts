// diff-apply: the engine's DriverTestDiffApply. A layer's diff, applied onto a sibling created
// on the same parent, reproduces the layer: applyDiff's size equals diffSize(upper, ''), the
// rewritten files carry the new content, the deletions (file and directory) are carried as
// whiteouts, and the two trees are equal (mtimes at the second precision a tar carries).
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { Driver } from '../../../lib/index';
import { compareTrees, snapshotTree } from '../../helpers/fs-tree';
import { collect } from '../../helpers/tar';
import type { ConformanceCase } from '../suite';

const fileCount = 50;
const deleteFile = 'file-remove.txt';
const deleteFileContent = 'This file should get removed in upper!';
const deleteDir = 'var/lib';

/** `size` bytes from a small seeded generator (xorshift32): the same seed gives the same bytes. */
export function randomContent(size: number, seed: number): Buffer {
  let x = (seed * 2654435761 + 1) >>> 0 || 1;
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** moby addManyFiles: directory-<i> (i in steps of 100) holding file-<j>, 64 seeded bytes, 0755. */
async function addManyFiles(d: Driver, id: string, count: number, seed: number): Promise<void> {
  const root = await d.get(id);
  try {
    for (let i = 0; i < count; i += 100) {
      const dir = path.join(root, `directory-${i}`);
      await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
      for (let j = 0; i + j < count && j < 100; j++) {
        const file = path.join(dir, `file-${j}`);
        await fsp.writeFile(file, randomContent(64, seed + i + j));
        await fsp.chmod(file, 0o755);
      }
    }
  } finally {
    await d.put(id);
  }
}

async function checkManyFiles(d: Driver, id: string, count: number, seed: number): Promise<void> {
  const root = await d.get(id);
  try {
    for (let i = 0; i < count; i += 100) {
      for (let j = 0; i + j < count && j < 100; j++) {
        const rel = `directory-${i}/file-${j}`;
        const got = await fsp.readFile(path.join(root, rel));
        assert.ok(got.equals(randomContent(64, seed + i + j)), `${id}:/${rel} does not hold the content of seed ${seed}`);
      }
    }
  } finally {
    await d.put(id);
  }
}

async function missing(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return false;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return true;
    throw err;
  }
}

export const diffApply: ConformanceCase = {
  name: 'diff-apply',
  async run({ driver: d }) {
    await d.create('base', '');
    await addManyFiles(d, 'base', fileCount, 3);
    const b = await d.get('base');
    await fsp.writeFile(path.join(b, deleteFile), deleteFileContent);
    await fsp.mkdir(path.join(b, deleteDir), { recursive: true, mode: 0o755 });
    await d.put('base');

    await d.create('upper', 'base');
    await addManyFiles(d, 'upper', fileCount, 6);
    const u = await d.get('upper');
    await fsp.rm(path.join(u, deleteFile));
    await fsp.rm(path.join(u, deleteDir), { recursive: true });
    await d.put('upper');

    const diffSize = await d.diffSize('upper', '');
    // Everything upper holds relative to nothing: its 50 files of 64 bytes.
    assert.equal(diffSize, fileCount * 64, 'diffSize(upper, "")');

    await d.create('diff', 'base');
    await checkManyFiles(d, 'diff', fileCount, 3);
    const p = await d.get('diff');
    assert.equal(await fsp.readFile(path.join(p, deleteFile), 'utf8'), deleteFileContent);
    await d.put('diff');

    const buf = await collect(await d.diff('upper', 'base'));
    const applyDiffSize = await d.applyDiff('diff', 'base', Readable.from([buf]));
    assert.equal(applyDiffSize, diffSize, 'applyDiff size != diffSize');

    await checkManyFiles(d, 'diff', fileCount, 6);
    const q = await d.get('diff');
    const uq = await d.get('upper');
    try {
      assert.ok(await missing(path.join(q, deleteFile)), `${deleteFile} still present after applyDiff`);
      assert.ok(await missing(path.join(q, deleteDir)), `${deleteDir} still present after applyDiff`);
      assert.deepEqual(compareTrees(await snapshotTree(uq), await snapshotTree(q), { mtime: 's', labels: ['upper', 'diff'] }), []);
    } finally {
      await d.put('upper');
      await d.put('diff');
    }
  },
};
