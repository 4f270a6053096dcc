// aufs-unit.test.ts: the aufs driver's own behaviour, through its documented test seam
// (openAufsForTest: no kernel probe, and a RecordingMounter instead of mount(2), since this
// kernel has no aufs). Everything else is real: layout and layers files on disk, diff dirs
// written by the confined archive engine with whiteouts kept as files, native changes / diff /
// diffSize read from them, incomplete markers, crash leftovers swept at init. What cannot be
// tested here: the union mount itself (what aufs shows at mnt/<id>); see aufs-mounts.test.ts
// for the exact mount(2) calls get() would make.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { ChangeKind, type Change } from '../../lib/driver';
import { IncompatibleFsError, InvalidOptionError, LayerExistsError, LayerNotFoundError } from '../../lib/errors';
import { FsMagic } from '../../lib/fsmagic';
import { type AufsDriver, hasLayers, openAufsForTest } from '../../lib/drivers/aufs/driver';
import { checkBackingFs, listsAufs, probeDirperm1 } from '../../lib/drivers/aufs/check';
import { parseOptions } from '../../lib/drivers/aufs/options';
import { MS } from '../../lib/native';
import { RecordingMounter, refusingMounter } from '../helpers/aufs-seam';
import { compareTrees, listTree, snapshotTree } from '../helpers/fs-tree';
import { skipUnlessRoot } from '../helpers/requires-root';
import { collect, dir, file, hardlink, makeTar, opaque, tarNames, tarStreamOf, whiteout } from '../helpers/tar';
import { type TmpDir, withTmpDir } from '../helpers/tmp';

const root = { skip: skipUnlessRoot('layer dirs are owned 0:0') };

/** An aufs driver through the seam on tmp/root/aufs; cleaned up even when `fn` throws. */
async function withAufs(fn: (d: AufsDriver, home: string, m: RecordingMounter, tmp: TmpDir) => Promise<void>): Promise<void> {
  await withTmpDir(async (tmp) => {
    const home = tmp.join('root', 'aufs');
    const m = new RecordingMounter();
    const d = await openAufsForTest(home, { mounter: m, dirperm1: false });
    try {
      await fn(d, home, m, tmp);
    } finally {
      await d.cleanup();
    }
  }, 'aufs-unit-');
}

function show(changes: Change[]): string[] {
  return changes.map((c) => `${ChangeKind[c.kind]} ${c.path}`).sort((a, b) => {
    const [pa, pb] = [a.slice(a.indexOf(' ') + 1), b.slice(b.indexOf(' ') + 1)];
    return pa < pb ? -1 : pa > pb ? 1 : 0;
  });
}

const BASE = [
  dir('etc'), file('etc/passwd', 'root'), file('etc/hosts', 'h'), file('gone', 'bye'), file('same', 'same'),
  dir('dir'), dir('dir/sub'), dir('dir/sub/deeper'), file('dir/sub/deeper/f', 'f'), file('dir/keep', 'keep'),
  dir('opq'), file('opq/old1', 'old1'), dir('opq/olddir'), file('opq/olddir/x', 'x'), file('opq/kept', 'old'),
];
const CHILD = [
  whiteout('gone'), dir('dir'), whiteout('dir/sub'), dir('opq'), opaque('opq'), file('opq/kept', 'new'), file('etc/passwd', 'root2'),
  whiteout('never-existed'), file('new', 'n'), dir('newdir'), whiteout('newdir/ignored'),
  dir('.wh..wh.plnk'), file('.wh..wh.plnk/123.456', 'aufs metadata: skipped'),
];

/** base <- child (whiteouts, an opaque dir) as in BASE and CHILD. */
async function baseAndChild(d: AufsDriver): Promise<void> {
  await d.create('base', '');
  await d.applyDiff('base', '', await tarStreamOf(BASE));
  await d.create('child', 'base');
  await d.applyDiff('child', 'base', await tarStreamOf(CHILD));
}

test('layout: layers/<id> files (parent then ancestors), diff/<id> and mnt/<id> 0755 root; create and remove', root, async () => {
  await withAufs(async (d, home) => {
    for (const sub of ['layers', 'diff', 'mnt', 'incomplete', 'staging']) assert.ok((await fsp.stat(path.join(home, sub))).isDirectory(), sub);
    assert.equal(await hasLayers(home), false);
    await d.create('a', '');
    await d.create('b', 'a');
    await d.create('c', 'b');
    assert.equal(await fsp.readFile(path.join(home, 'layers/a'), 'utf8'), '');
    assert.equal(await fsp.readFile(path.join(home, 'layers/b'), 'utf8'), 'a\n');
    assert.equal(await fsp.readFile(path.join(home, 'layers/c'), 'utf8'), 'b\na\n');
    for (const p of ['diff/c', 'mnt/c']) {
      const st = await fsp.stat(path.join(home, p));
      assert.equal(st.mode & 0o7777, 0o755, p);
      assert.deepEqual([st.uid, st.gid], [0, 0], p);
    }
    assert.equal(await hasLayers(home), true);
    await assert.rejects(d.create('c', 'a'), LayerExistsError);
    assert.equal(await fsp.readFile(path.join(home, 'layers/c'), 'utf8'), 'b\na\n', 'a refused create changed the layer');
    const before = await listTree(home);
    await assert.rejects(d.create('orphan', 'missing'), LayerNotFoundError);
    assert.deepEqual(await listTree(home), before);
    await assert.rejects(d.create('x', '', { storageOpt: { size: '1G' } }), InvalidOptionError);

    await d.remove('b');
    for (const p of ['layers/b', 'diff/b', 'mnt/b']) await assert.rejects(fsp.lstat(path.join(home, p)), { code: 'ENOENT' });
    assert.deepEqual(await fsp.readdir(path.join(home, 'staging')), []);
    await assert.rejects(d.remove('b'), LayerNotFoundError);
    assert.deepEqual(await d.status(), [['Root Dir', home], ['Backing Filesystem', (await d.status())[1]![1]], ['Dirs', '2'], ['Dirperm1 Supported', 'false']]);
  });
});

test('get/put: no parent returns diff/<id> unmounted; a child is mounted once per count; put at zero unmounts', root, async () => {
  await withAufs(async (d, home, m) => {
    await d.create('base', '');
    await d.create('child', 'base');
    assert.equal(await d.get('base'), path.join(home, 'diff/base'));
    await d.put('base');
    assert.deepEqual(m.sequences, []);
    const target = path.join(home, 'mnt/child');
    assert.equal(await d.get('child', 'system_u:object_r:container_file_t:s0'), target);
    assert.equal(await d.get('child'), target);
    assert.deepEqual(m.sequences, [[{
      type: 'aufs', source: 'none', target, flags: 0,
      options: [`br:${home}/diff/child=rw:${home}/diff/base=ro+wh`, 'dio', 'xino=/dev/shm/aufs.xino', 'context="system_u:object_r:container_file_t:s0"'],
    }]]);
    await d.put('child');
    assert.deepEqual(m.unmounts, []);
    await d.put('child');
    assert.deepEqual(m.unmounts, [target]);
    await assert.rejects(d.put('child'), { code: 'ERR_GRAPHDRIVER_NOT_MOUNTED' });
    // A mount already there (another process's) is taken over, not stacked.
    m.active.add(target);
    await d.get('child');
    assert.equal(m.sequences.length, 1);
    // remove unmounts a mounted layer; cleanup unmounts what is still got.
    await d.remove('child');
    assert.deepEqual(m.unmounts, [target, target]);
    await d.create('c2', 'base');
    await d.get('c2');
    await d.cleanup();
    assert.deepEqual(m.unmounts.at(-1), path.join(home, 'mnt/c2'));
    assert.equal(m.active.size, 0);
  });
});

test('applyDiff keeps whiteouts and opaque markers as empty files in diff/<id>, skips aufs metadata, never touches the parent', root, async () => {
  await withAufs(async (d, home) => {
    await d.create('base', '');
    assert.equal(await d.applyDiff('base', '', await tarStreamOf(BASE)), 4 + 1 + 3 + 4 + 1 + 4 + 4 + 1 + 3);
    const baseBefore = await snapshotTree(path.join(home, 'diff/base'));
    await d.create('child', 'base');
    // The sum of the tar's entry sizes, the skipped metadata file included (as the engine's UnpackLayer counts).
    assert.equal(await d.applyDiff('child', 'base', await tarStreamOf(CHILD)), 3 + 5 + 1 + 'aufs metadata: skipped'.length);
    const c = path.join(home, 'diff/child');
    assert.deepEqual(await listTree(c), [
      '/.wh.gone', '/.wh.never-existed', '/dir', '/dir/.wh.sub', '/etc', '/etc/passwd', '/new', '/newdir', '/newdir/.wh.ignored',
      '/opq', '/opq/.wh..wh..opq', '/opq/kept',
    ]);
    for (const wh of ['.wh.gone', 'dir/.wh.sub', 'opq/.wh..wh..opq']) {
      const st = await fsp.lstat(path.join(c, wh));
      assert.ok(st.isFile() && st.size === 0, `${wh} is an empty regular file`);
      assert.equal(st.mode & 0o777, 0o644, `${wh} keeps the entry's mode`);
    }
    assert.deepEqual(compareTrees(baseBefore, await snapshotTree(path.join(home, 'diff/base'))), []);
    // Hostile whiteouts stay refused in keep mode.
    for (const [i, name] of ['x/.wh.', '../.wh.x', '.wh...'].entries()) {
      await d.create(`bad${i}`, 'base');
      await assert.rejects(d.applyDiff(`bad${i}`, 'base', await tarStreamOf([file(name, '')])), { code: 'ERR_GRAPHDRIVER_ARCHIVE' }, name);
    }
    await assert.rejects(fsp.lstat(path.join(home, '.wh.x')), { code: 'ENOENT' });
  });
});

test('changes: whiteouts, opaque dirs and the parent-dir rule over a 3-layer chain; whole tree for no parent', root, async () => {
  await withAufs(async (d, home) => {
    await baseAndChild(d);
    assert.deepEqual(show(await d.changes('child', 'base')), [
      'Modify /dir', 'Delete /dir/sub', 'Modify /etc', 'Modify /etc/passwd', 'Delete /gone', 'Add /new', 'Add /newdir',
      'Modify /opq', 'Modify /opq/kept', 'Delete /opq/old1', 'Delete /opq/olddir',
    ]);
    // grandchild: names child whited out or hid behind its opaque dir are new again; a whiteout
    // of what child already deleted changes nothing; a name only base has is still a Modify.
    await d.create('grand', 'child');
    await d.applyDiff('grand', 'child', await tarStreamOf([
      file('gone', 'back'), dir('opq'), file('opq/old1', 'again'), dir('dir'), file('dir/keep', 'k2'), whiteout('dir/sub'), whiteout('etc/hosts'),
    ]));
    assert.deepEqual(show(await d.changes('grand', 'child')), [
      'Modify /dir', 'Modify /dir/keep', 'Modify /etc', 'Delete /etc/hosts', 'Add /gone', 'Modify /opq', 'Add /opq/old1',
    ]);
    // An opaque root hides every name of the layers below that it does not hold.
    await d.create('rootopq', 'base');
    await d.applyDiff('rootopq', 'base', await tarStreamOf([file('.wh..wh..opq', ''), file('same', 'same2')]));
    assert.deepEqual(show(await d.changes('rootopq', 'base')), ['Delete /dir', 'Delete /etc', 'Delete /gone', 'Delete /opq', 'Modify /same']);
    const baseList = await listTree(path.join(home, 'diff/base'));
    assert.deepEqual(show(await d.changes('base', '')), baseList.map((p) => `Add ${p}`));
  });
});

test('diff: the tar of diff/<id> with whiteouts as they are, top-level aufs metadata left out; applied to a sibling it reproduces the layer', root, async () => {
  await withAufs(async (d, home) => {
    await baseAndChild(d);
    // What aufs itself keeps at the top of a branch (hardlink dir, xino/trunc files): never exported.
    const c = path.join(home, 'diff/child');
    await fsp.mkdir(path.join(c, '.wh..wh.plnk'));
    await fsp.writeFile(path.join(c, '.wh..wh.plnk/1.2'), 'meta');
    await fsp.mkdir(path.join(c, '.wh..wh.aufs'));
    const tar = await collect(await d.diff('child', 'base'));
    const names = await tarNames(tar);
    assert.deepEqual(names, [
      '.wh.gone', '.wh.never-existed', 'dir/', 'dir/.wh.sub', 'etc/', 'etc/passwd', 'new', 'newdir/', 'newdir/.wh.ignored',
      'opq/', 'opq/.wh..wh..opq', 'opq/kept',
    ]);
    await d.create('sibling', 'base');
    await d.applyDiff('sibling', 'base', Readable.from([tar]));
    const meta = (p: string): boolean => p.startsWith('/.wh..wh.plnk') || p.startsWith('/.wh..wh.aufs');
    assert.deepEqual(compareTrees(await snapshotTree(c), await snapshotTree(path.join(home, 'diff/sibling')),
      { mtime: 's', skip: meta, labels: ['child', 'sibling'] }), []);
    assert.deepEqual(show(await d.changes('sibling', 'base')), show(await d.changes('child', 'base')));
    // An opaque root travels as a top-level .wh..wh..opq.
    await d.create('rootopq', 'base');
    await d.applyDiff('rootopq', 'base', await tarStreamOf([file('.wh..wh..opq', '')]));
    assert.deepEqual(await tarNames(await collect(await d.diff('rootopq', 'base'))), ['.wh..wh..opq']);
  });
});

test('diffSize: regular files of diff/<id>, each hardlinked inode once; equals what applyDiff wrote', root, async () => {
  await withAufs(async (d) => {
    await baseAndChild(d);
    assert.equal(await d.diffSize('child', 'base'), 3 + 5 + 1);
    await d.create('hl', 'base');
    const written = await d.applyDiff('hl', 'base', await tarStreamOf([file('a', '12345'), hardlink('b', 'a'), hardlink('c', 'a'), whiteout('same')]));
    assert.equal(written, 5);
    assert.equal(await d.diffSize('hl', 'base'), 5);
  });
});

test('a failed applyDiff leaves the layer incomplete: absent, unusable as parent, removable; leftovers swept at the next open', root, async () => {
  await withAufs(async (d, home, m) => {
    await d.create('base', '');
    await d.create('l', 'base');
    const tar = await makeTar([dir('x'), file('x/a', 'written first'), file('x/b', Buffer.alloc(4096, 1))]);
    await assert.rejects(d.applyDiff('l', 'base', Readable.from([tar.subarray(0, 2560)])), { code: 'ERR_GRAPHDRIVER_ARCHIVE' });
    assert.equal(await d.exists('l'), false);
    await assert.rejects(d.get('l'), LayerNotFoundError);
    await assert.rejects(d.create('child', 'l'), LayerNotFoundError);
    await d.remove('l');
    await d.create('l', 'base');
    assert.equal(await d.exists('l'), true);

    // What a crash can leave: staging entries, directories and markers of ids without a layers file.
    await fsp.writeFile(path.join(home, 'staging/layers-deadbeef'), 'x\n');
    await fsp.mkdir(path.join(home, 'staging/remove-deadbeef/diff'), { recursive: true });
    await fsp.mkdir(path.join(home, 'diff/orphan/sub'), { recursive: true });
    await fsp.mkdir(path.join(home, 'mnt/orphan'));
    await fsp.writeFile(path.join(home, 'incomplete/orphan'), '');
    // The sweep runs only when no other driver has the home open.
    await d.cleanup();
    const again = await openAufsForTest(home, { mounter: m, dirperm1: false });
    assert.deepEqual(await fsp.readdir(path.join(home, 'staging')), []);
    assert.deepEqual((await fsp.readdir(path.join(home, 'diff'))).sort(), ['base', 'l']);
    assert.deepEqual((await fsp.readdir(path.join(home, 'mnt'))).sort(), ['base', 'l']);
    assert.deepEqual(await fsp.readdir(path.join(home, 'incomplete')), []);
    assert.equal(await again.exists('l'), true);
    // An orphan's directories are cleared at create too, so the id starts empty.
    await fsp.mkdir(path.join(home, 'diff/fresh/stale'), { recursive: true });
    await again.create('fresh', '');
    assert.deepEqual(await fsp.readdir(path.join(home, 'diff/fresh')), []);
  });
});

test('a parent other than the layer\'s own falls back to naive diffs, which need the union mount', root, async () => {
  await withAufs(async (d, home, m) => {
    await baseAndChild(d);
    await d.changes('child', '');
    assert.equal(m.sequences.length, 1, 'naive changes mounted the layer');
    assert.equal(m.sequences[0]![0]!.target, path.join(home, 'mnt/child'));
    assert.deepEqual(m.unmounts, [path.join(home, 'mnt/child')]);
  });
  await withTmpDir(async (tmp) => {
    const d = await openAufsForTest(tmp.join('aufs'), { mounter: refusingMounter });
    try {
      await d.create('a', '');
      await d.create('b', 'a');
      await assert.rejects(d.get('b'), /needs the aufs kernel module/);
      await assert.rejects(d.put('b'), { code: 'ERR_GRAPHDRIVER_NOT_MOUNTED' }, 'a failed mount is not counted');
    } finally {
      await d.cleanup();
    }
  }, 'aufs-unit-');
});

test('dirperm1 probe: one aufs mount with dirperm1 through the mounter; refused means unsupported; the probe dir is removed', root, async () => {
  await withTmpDir(async (tmp) => {
    const staging = await tmp.mkdir('staging');
    const m = new RecordingMounter();
    assert.equal(await probeDirperm1(staging, m), true);
    assert.equal(m.sequences.length, 1);
    const [spec] = m.sequences[0]!;
    assert.match(spec!.options[0]!, new RegExp(`^br:${staging}/probe-[0-9a-f]{16}/base$`));
    assert.deepEqual([spec!.type, spec!.source, spec!.flags, ...spec!.options.slice(1)], ['aufs', 'none', 0, 'dirperm1', 'xino=/dev/shm/aufs.xino']);
    assert.deepEqual(m.unmounts, [spec!.target]);
    assert.equal(await probeDirperm1(staging, refusingMounter), false);
    assert.deepEqual(await fsp.readdir(staging), []);
    const d = await openAufsForTest(tmp.join('aufs'), { mounter: m, dirperm1: true });
    assert.deepEqual((await d.status()).at(-1), ['Dirperm1 Supported', 'true']);
    await d.create('a', '');
    await d.create('b', 'a');
    await d.get('b');
    assert.deepEqual(m.sequences.at(-1)![0]!.options.slice(1), ['dio', 'xino=/dev/shm/aufs.xino', 'dirperm1']);
    await d.cleanup();
  }, 'aufs-unit-');
});

test('init checks: /proc/filesystems parsing, incompatible backing filesystems, no options', () => {
  assert.equal(listsAufs('nodev\tsysfs\nnodev\taufs\n\text4\n'), true);
  assert.equal(listsAufs('nodev\tsysfs\n\text4\nnodev\toverlay\n'), false);
  assert.equal(listsAufs('nodev\taufs2\n'), false);
  for (const magic of [FsMagic.Btrfs, FsMagic.Aufs, FsMagic.Ecryptfs]) assert.throws(() => checkBackingFs(magic, '/h'), IncompatibleFsError);
  for (const magic of [FsMagic.Extfs, FsMagic.Xfs, FsMagic.Tmpfs]) checkBackingFs(magic, '/h');
  parseOptions([]);
  assert.throws(() => parseOptions(['aufs.size=1G']), InvalidOptionError);
  assert.throws(() => parseOptions(['overlay2.size=1G']), /overlay2 driver/);
  assert.equal(MS.MS_REMOUNT, 32);
});
