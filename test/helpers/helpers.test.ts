// helpers.test.ts: the test oracles themselves. compareTrees must report each kind of
// difference the conformance cases rely on (else a case comparing trees could never fail), the
// tar builder must write exactly the entries asked for, and tarFromDir (GNU tar) must agree.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { test } from 'node:test';
import { lsetxattr, mount } from '../../lib/native';
import { buildTree, compareTrees, listTree, snapshotTree } from './fs-tree';
import type { EntrySpec } from './fs-tree';
import { skipUnlessRoot } from './requires-root';
import { dir, file, hardlink, makeTar, opaque, symlink, tarFromDir, tarNames, whiteout } from './tar';
import { TmpDir, mountsUnder, withTmpDir } from './tmp';

const spec: EntrySpec[] = [
  { type: 'dir', path: 'd', mode: 0o750 },
  { type: 'file', path: 'd/f', content: 'abc', mtimeNs: 1_000_000_000_500n },
  { type: 'hardlink', path: 'd/h', target: 'd/f' },
  { type: 'file', path: 'g', content: 'g', mtimeNs: 2_000_000_000_000n },
  { type: 'symlink', path: 's', target: 'd/f', mtimeNs: 3_000_000_000_000n },
];

test('compareTrees reports every field that differs', { skip: skipUnlessRoot('chown') }, async () => {
  await withTmpDir(async (tmp) => {
    const a = tmp.join('a');
    const b = tmp.join('b');
    await buildTree(a, spec);
    await buildTree(b, spec);
    assert.deepEqual(compareTrees(await snapshotTree(a), await snapshotTree(b)), []);
    const base = await snapshotTree(a);
    const diffs = async (): Promise<string[]> => compareTrees(base, await snapshotTree(b), { mtime: 'ns' });

    await fsp.chmod(tmp.join('b/d'), 0o755);
    assert.deepEqual(await diffs(), ['/d: mode 0750 (a) != 0755 (b)']);
    await fsp.chmod(tmp.join('b/d'), 0o750);
    await fsp.lchown(tmp.join('b/g'), 1, 0);
    assert.deepEqual(await diffs(), ['/g: uid 0 (a) != 1 (b)']);
    await fsp.lchown(tmp.join('b/g'), 0, 0);
    await fsp.utimes(tmp.join('b/g'), 2000, 2000.25);
    assert.equal((await diffs()).length, 1);
    assert.deepEqual(compareTrees(base, await snapshotTree(b), { mtime: 's' }), []);
    await buildTree(b, [{ type: 'file', path: 'g', content: 'G', mtimeNs: 2_000_000_000_000n }]);
    assert.deepEqual((await diffs()).map((l) => l.split(' ').slice(0, 2).join(' ')), ['/g: sha256']);
    await buildTree(b, [{ type: 'file', path: 'g', content: 'g', mtimeNs: 2_000_000_000_000n }]);
    await lsetxattr(tmp.join('b/g'), 'user.x', Buffer.from([0, 1]), 0);
    assert.deepEqual(await diffs(), ['/g: xattrs [] (a) != [user.x=0001] (b)']);
    await fsp.rm(tmp.join('b/g'));
    await buildTree(b, [{ type: 'file', path: 'g', content: 'g', mtimeNs: 2_000_000_000_000n }]);
    await fsp.rm(tmp.join('b/d/h'));
    await fsp.writeFile(tmp.join('b/d/h'), 'abc');
    const hard = await diffs();
    assert.ok(hard.some((l) => l.startsWith('/d/f: links')) && hard.some((l) => l.startsWith('/d/h: links')), hard.join('\n'));
    await fsp.rm(tmp.join('b/s'));
    await fsp.symlink('elsewhere', tmp.join('b/s'));
    assert.ok((await diffs()).some((l) => l.startsWith('/s: target')));
    await fsp.writeFile(tmp.join('b/extra'), '');
    assert.ok((await diffs()).includes('/extra: only in b (file)'));
    assert.deepEqual(await listTree(a), ['/d', '/d/f', '/d/h', '/g', '/s']);
  });
});

test('makeTar writes exactly the entries given, whiteouts and pax included', async () => {
  const buf = await makeTar([
    dir('a'), file('a/f', 'x', { pax: { 'SCHILY.xattr.user.foo': 'bar' } }), hardlink('a/h', 'a/f'),
    symlink('a/s', '../x'), whiteout('a/gone'), whiteout('top'), opaque('a/'),
  ]);
  assert.equal(buf.length % 512, 0);
  assert.deepEqual(await tarNames(buf), ['a/', 'a/f', 'a/h', 'a/s', 'a/.wh.gone', '.wh.top', 'a/.wh..wh..opq']);
  assert.ok(buf.includes(Buffer.from('SCHILY.xattr.user.foo=bar')));
});

test('tarFromDir (GNU tar) lists a staged tree', async () => {
  await withTmpDir(async (tmp) => {
    await fsp.mkdir(tmp.join('t/sub'), { recursive: true });
    await fsp.writeFile(tmp.join('t/sub/f'), 'f');
    assert.deepEqual((await tarNames(tarFromDir(tmp.join('t')))).sort(), ['./', './sub/', './sub/f']);
  });
});

test('TmpDir unmounts what is under it and removes itself', { skip: skipUnlessRoot('mounts tmpfs') }, async () => {
  const tmp = await TmpDir.create('helpers-');
  try {
    const mp = await tmp.mkdir('a/b');
    await mount('tmpfs', mp, 'tmpfs', 0, 'size=1m');
    await mount('tmpfs', mp, 'tmpfs', 0, 'size=1m'); // stacked
    await fsp.mkdir(`${mp}/c`);
    await mount('tmpfs', `${mp}/c`, 'tmpfs', 0, 'size=1m');
    assert.equal(mountsUnder(tmp.path).length, 3);
  } finally {
    await tmp.cleanup();
  }
  assert.deepEqual(mountsUnder(tmp.path), []);
  await assert.rejects(fsp.stat(tmp.path), { code: 'ENOENT' });
});
