// overlay-unit.test.ts: what is specific to the overlay driver beyond the conformance suite, on
// real overlayfs mounts in temp dirs on /tmp: the layout rules (root/ vs upper/ + lower-id; an
// upper layer on an upper layer copies lower-id and upper/), the hardlink farm that applyDiff
// builds onto a parent with root/ (and the regression test that it never changes the parent),
// the tar scan that sends hardlink entries into shared inodes the naive way, counted get/put
// with mount cleanup, diffSize skipping shared inodes, and the pure mount spec. Mounts are read
// from /proc/self/mountinfo, not from the driver's word; every temp dir is unmounted and removed
// even on failure (helpers/tmp.ts).
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ChangeKind, type Change } from '../../lib/driver';
import { OverlayDriver } from '../../lib/drivers/overlay/driver';
import { OverlayLayout } from '../../lib/drivers/overlay/layout';
import { upperMount } from '../../lib/drivers/overlay/mounts';
import { getDriver } from '../../lib/index';
import { compareTrees, snapshotTree } from '../helpers/fs-tree';
import { skipUnlessRoot } from '../helpers/requires-root';
import { dir, file, hardlink, symlink, tarStreamOf, whiteout } from '../helpers/tar';
import { type TmpDir, mountsUnder, withTmpDir } from '../helpers/tmp';

const root = { skip: skipUnlessRoot('mounts overlayfs'), timeout: 300_000 };

/** An overlay driver on tmp/root; cleaned up even when `fn` throws (tmp cleanup unmounts what is left). */
async function withDriver(fn: (d: OverlayDriver, home: string, tmp: TmpDir) => Promise<void>): Promise<void> {
  await withTmpDir(async (tmp) => {
    const r = await tmp.mkdir('root', 0o700);
    const d = await getDriver('overlay', r);
    assert.ok(d instanceof OverlayDriver);
    try {
      await fn(d, path.join(r, 'overlay'), tmp);
    } finally {
      await d.cleanup();
    }
    assert.deepEqual(mountsUnder(r), [], 'cleanup() left mounts behind');
  }, 'overlay-unit-');
}

async function ino(p: string): Promise<bigint> {
  return (await fsp.lstat(p, { bigint: true })).ino;
}

function show(changes: Change[]): string[] {
  return changes.map((c) => `${ChangeKind[c.kind]} ${c.path}`).sort();
}

/** A base layer with a few kinds of entries, owners and modes. */
async function makeBase(d: OverlayDriver): Promise<void> {
  await d.create('base');
  await d.applyDiff('base', '', await tarStreamOf([
    dir('etc', { mode: 0o750, uid: 1000, gid: 1000 }),
    file('etc/passwd', 'root:x:0:0\n', { mode: 0o600, uid: 1000, gid: 1000 }),
    file('etc/hosts', '127.0.0.1 localhost\n'),
    file('bin-tool', 'ELF', { mode: 0o4755 }),
    symlink('etc/link', 'passwd'),
    dir('data', { pax: { 'SCHILY.xattr.user.tag': 'kept' } }),
    file('data/keep', 'unchanged'),
    file('gone', 'deleted by the child'),
  ]));
}

test('layout: root/ without parent; upper/ + lower-id over a root/ parent; an upper child copies lower-id and upper/', root, async () => {
  await withDriver(async (d, home) => {
    const layout = new OverlayLayout(home);
    await makeBase(d);
    assert.deepEqual((await fsp.readdir(layout.layer('base'))).sort(), ['root']);
    await fsp.chmod(layout.root('base'), 0o711);

    await d.create('c1', 'base');
    assert.deepEqual((await fsp.readdir(layout.layer('c1'))).sort(), ['lower-id', 'merged', 'upper', 'work']);
    assert.equal(await fsp.readFile(layout.lowerIdFile('c1'), 'utf8'), 'base');
    assert.equal((await fsp.stat(layout.upper('c1'))).mode & 0o7777, 0o711, 'upper/ takes the mode of the parent root');

    const m = await d.get('c1');
    try {
      await fsp.writeFile(path.join(m, 'etc', 'added'), 'by c1');
      await fsp.rm(path.join(m, 'gone'));
    } finally {
      await d.put('c1');
    }
    await d.create('c2', 'c1');
    assert.equal(await fsp.readFile(layout.lowerIdFile('c2'), 'utf8'), 'base', 'one lower: the parent\'s lower-id');
    assert.equal(await fsp.readFile(path.join(layout.upper('c2'), 'etc', 'added'), 'utf8'), 'by c1');
    const wh = await fsp.lstat(path.join(layout.upper('c2'), 'gone'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'the whiteout was copied as a 0/0 char device');
    assert.notEqual(await ino(path.join(layout.upper('c2'), 'etc', 'added')), await ino(path.join(layout.upper('c1'), 'etc', 'added')),
      'a full copy, not links');
    const m2 = await d.get('c2');
    try {
      assert.deepEqual((await fsp.readdir(m2)).sort(), ['bin-tool', 'data', 'etc']);
      assert.equal(await fsp.readFile(path.join(m2, 'etc', 'added'), 'utf8'), 'by c1');
    } finally {
      await d.put('c2');
    }
    // Native changes of an upper layer against its lower; naive against anything else.
    assert.deepEqual(show(await d.changes('c1', 'base')), ['Add /etc/added', 'Delete /gone', 'Modify /etc']);
    assert.deepEqual(show(await d.changes('c2', 'c1')), []);
  });
});

// Regression test: the farm must never change the parent layer. A hardlink farm makes the new
// root/ share each regular file's inode with the parent's root/: the kernel keeps data, owner,
// mode, xattrs and times in the inode, not in the directory entry, so writing, chown, chmod,
// setxattr or utimensat through either name changes both layers. The engine's overlay driver
// relied on ApplyDiff "never doing in-place writes"; here archive/apply.ts replaces an existing
// file by unlinking it and creating a new inode (openat O_CREAT|O_EXCL), so a changed file must
// come out as a NEW inode while the parent's keeps its content and metadata byte for byte.
test('applyDiff onto a root/ parent builds a hardlink farm; a changed file is a new inode and the parent is unchanged', root, async () => {
  await withDriver(async (d, home) => {
    const layout = new OverlayLayout(home);
    await makeBase(d);
    const before = await snapshotTree(layout.root('base'));
    const passwdIno = await ino(path.join(layout.root('base'), 'etc', 'passwd'));
    await d.create('img2', 'base');
    await d.applyDiff('img2', 'base', await tarStreamOf([
      dir('etc', { mode: 0o750, uid: 1000, gid: 1000 }),
      file('etc/passwd', 'root:x:0:0\nuser:x:1:1\n', { mode: 0o644, uid: 0, gid: 0 }),
      file('bin-tool', 'ELF2', { mode: 0o755 }),
      file('new', 'added'),
      whiteout('gone'),
    ]));
    assert.equal(d.applyStats.farm, 1, `expected the farm path (naive because: ${d.applyStats.lastNaiveReason})`);
    assert.deepEqual((await fsp.readdir(layout.layer('img2'))).sort(), ['root'], 'the layer became a root/ layer');

    const [b, n] = [layout.root('base'), layout.root('img2')];
    for (const shared of ['etc/hosts', 'data/keep']) {
      assert.equal(await ino(path.join(n, shared)), await ino(path.join(b, shared)), `${shared} is hardlinked`);
    }
    for (const own of ['etc', 'data', 'etc/link']) {
      assert.notEqual(await ino(path.join(n, own)), await ino(path.join(b, own)), `${own} is recreated, not shared`);
    }
    assert.notEqual(await ino(path.join(n, 'etc', 'passwd')), passwdIno, 'the changed file is a new inode');
    assert.equal(await fsp.readFile(path.join(n, 'etc', 'passwd'), 'utf8'), 'root:x:0:0\nuser:x:1:1\n');
    await assert.rejects(fsp.lstat(path.join(n, 'gone')), { code: 'ENOENT' });
    const dataDir = await fsp.stat(path.join(n, 'etc'));
    assert.deepEqual([dataDir.mode & 0o7777, dataDir.uid, dataDir.gid], [0o750, 1000, 1000], 'directory owner and mode kept');

    // The parent: every entry's content, owner, mode, mtime and xattrs as before.
    assert.deepEqual(compareTrees(before, await snapshotTree(b), { labels: ['base before', 'base after'] }), []);
    assert.equal(await ino(path.join(b, 'etc', 'passwd')), passwdIno);

    // diffSize skips the shared inodes: only the changed and added files count.
    assert.equal(await d.diffSize('img2', 'base'), 'root:x:0:0\nuser:x:1:1\n'.length + 'ELF2'.length + 'added'.length);
    assert.deepEqual(show(await d.changes('img2', 'base')),
      ['Add /new', 'Delete /gone', 'Modify /bin-tool', 'Modify /etc', 'Modify /etc/passwd']);
    // A child of the new image layer mounts over its root/.
    await d.create('ctr', 'img2');
    const m = await d.get('ctr');
    try {
      assert.equal(await fsp.readFile(path.join(m, 'new'), 'utf8'), 'added');
    } finally {
      await d.put('ctr');
    }
  });
});

test('a hardlink entry to a file the farm would share goes the naive way; one to a file of the same tar stays a farm', root, async () => {
  await withDriver(async (d, home) => {
    const layout = new OverlayLayout(home);
    await makeBase(d);
    const before = await snapshotTree(layout.root('base'));
    // archive/apply.ts chowns/chmods/utimes a link entry's inode, i.e. the target's: on a farm
    // that would be the parent's etc/hosts.
    await d.create('risky', 'base');
    const { naive, farm } = d.applyStats;
    await d.applyDiff('risky', 'base', await tarStreamOf([hardlink('hosts2', 'etc/hosts')]));
    assert.equal(d.applyStats.naive, naive + 1);
    assert.match(d.applyStats.lastNaiveReason, /hardlink/);
    assert.deepEqual(compareTrees(before, await snapshotTree(layout.root('base')), { labels: ['base before', 'base after'] }), []);
    assert.ok((await fsp.readdir(layout.layer('risky'))).includes('upper'), 'applied through the mount into upper/');

    await d.create('safe', 'base');
    await d.applyDiff('safe', 'base', await tarStreamOf([dir('x'), file('x/a', 'fresh'), hardlink('x/b', 'x/a')]));
    assert.equal(d.applyStats.farm, farm + 1, `expected the farm path (naive because: ${d.applyStats.lastNaiveReason})`);
    assert.equal(await ino(path.join(layout.root('safe'), 'x', 'b')), await ino(path.join(layout.root('safe'), 'x', 'a')));
    assert.deepEqual(compareTrees(before, await snapshotTree(layout.root('base')), { labels: ['base before', 'base after'] }), []);
  });
});

test('get/put are counted: one mount for n gets, gone after n puts, 64 concurrent pairs, cleanup() unmounts', root, async () => {
  await withDriver(async (d, home) => {
    await makeBase(d);
    await d.create('ctr', 'base');
    const merged = new OverlayLayout(home).merged('ctr');
    const p = await d.get('ctr');
    assert.equal(p, merged);
    await d.get('ctr');
    await d.get('ctr');
    assert.deepEqual(mountsUnder(home), [merged]);
    await d.put('ctr');
    await d.put('ctr');
    assert.deepEqual(mountsUnder(home), [merged]);
    await d.put('ctr');
    assert.deepEqual(mountsUnder(home), []);
    await assert.rejects(d.put('ctr'), { code: 'ERR_GRAPHDRIVER_NOT_MOUNTED' });

    await Promise.all(Array.from({ length: 64 }, async () => { await d.get('ctr'); }));
    assert.deepEqual(mountsUnder(home), [merged]);
    await Promise.all(Array.from({ length: 64 }, async () => { await d.put('ctr'); }));
    assert.deepEqual(mountsUnder(home), []);

    // A root/ layer is returned as is, never mounted.
    assert.equal(await d.get('base'), new OverlayLayout(home).root('base'));
    await d.put('base');
    await d.get('ctr');
    await d.get('ctr');
    assert.equal(mountsUnder(home).length, 1);
    await d.cleanup();
    assert.deepEqual(mountsUnder(home), []);
  });
});

test('an upper layer\'s diffSize is native on upper/; the mount spec carries one lower and the label', () => {
  const layout = new OverlayLayout('/var/lib/x/overlay');
  const spec = upperMount(layout, 'ctr', 'img', { index: true, redirectDir: true, metacopy: false }, 'system_u:object_r:container_file_t:s0');
  assert.deepEqual(spec.lowerdirs, ['/var/lib/x/overlay/layers/img/root']);
  assert.equal(spec.target, '/var/lib/x/overlay/layers/ctr/merged');
  assert.deepEqual(spec.options, [
    'upperdir=/var/lib/x/overlay/layers/ctr/upper', 'workdir=/var/lib/x/overlay/layers/ctr/work', 'index=off', 'redirect_dir=off',
    'context="system_u:object_r:container_file_t:s0"',
  ]);
  assert.equal(upperMount(layout, 'ctr', 'img', { index: false, redirectDir: false, metacopy: false }).options.length, 2);
});

test('diffSize of an upper layer against its lower counts only upper/', root, async () => {
  await withDriver(async (d) => {
    await makeBase(d);
    await d.create('ctr', 'base');
    const m = await d.get('ctr');
    try {
      await fsp.writeFile(path.join(m, 'etc', 'hosts'), '0123456789');
      await fsp.rm(path.join(m, 'gone'));
    } finally {
      await d.put('ctr');
    }
    assert.equal(await d.diffSize('ctr', 'base'), 10);
    assert.deepEqual(show(await d.changes('ctr', 'base')), ['Delete /gone', 'Modify /etc', 'Modify /etc/hosts']);
  });
});
