// fsmagic.test.ts: backing-filesystem detection. getFsMagic against real mounts (a tmpfs this
// test mounts, /proc), the FsMagic constants against the kernel's include/uapi/linux/magic.h,
// and the fsName table (distinct names, hex for unknown numbers).
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { FsMagic, fsName, getFsMagic } from '../lib/index';
import { mount } from '../lib/native';
import { requireRoot } from './helpers/requires-root';
import { withTmpDir } from './helpers/tmp';

test('getFsMagic of a tmpfs is FsMagic.Tmpfs', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs')) return;
  await withTmpDir(async (tmp) => {
    const mp = await tmp.mkdir('mnt');
    await mount('tmpfs', mp, 'tmpfs', 0, 'size=1m');
    assert.equal(await getFsMagic(mp), FsMagic.Tmpfs);
    assert.equal(fsName(await getFsMagic(mp)), 'tmpfs');
  }); // withTmpDir unmounts it
});

test('getFsMagic of /proc is 0x9fa0', async () => {
  assert.equal(await getFsMagic('/proc'), 0x9fa0);
  assert.equal(FsMagic.Proc, 0x9fa0);
});

test('getFsMagic is unsigned and reports errors with the path', async () => {
  const m = await getFsMagic('/');
  assert.ok(Number.isInteger(m) && m >= 0 && m <= 0xffffffff, `not a uint32: ${m}`);
  await assert.rejects(getFsMagic('/nonexistent/graphdriver-test'), (e: { code?: string; syscall?: string }) =>
    e.code === 'ENOENT' && e.syscall === 'statfs');
  await assert.rejects(getFsMagic(''), TypeError);
});

test('FsMagic constants are the kernel magic numbers', () => {
  const expected: Record<string, number> = {
    Btrfs: 0x9123683e, Aufs: 0x61756673, Extfs: 0xef53, Xfs: 0x58465342, Overlay: 0x794c7630, Tmpfs: 0x01021994,
    Zfs: 0x2fc12fc1, Nfs: 0x6969, Ramfs: 0x858458f6, Squashfs: 0x73717368, F2fs: 0xf2f52010, Jfs: 0x3153464a,
    Reiserfs: 0x52654973, Smb: 0x517b, Cramfs: 0x28cd3d45, Jffs2: 0x72b6, Ecryptfs: 0xf15f, Fuse: 0x65735546,
    Erofs: 0xe0f5e1e2, Proc: 0x9fa0,
  };
  for (const [k, v] of Object.entries(expected)) {
    assert.equal((FsMagic as Record<string, number>)[k], v, `FsMagic.${k}`);
  }
  assert.ok(Object.isFrozen(FsMagic));
});

test('fsName gives each listed magic a distinct, non-empty name', () => {
  const listed = [FsMagic.Btrfs, FsMagic.Aufs, FsMagic.Extfs, FsMagic.Xfs, FsMagic.Overlay, FsMagic.Tmpfs, FsMagic.Zfs,
    FsMagic.Nfs, FsMagic.Ramfs, FsMagic.Squashfs, FsMagic.F2fs, FsMagic.Jfs, FsMagic.Reiserfs, FsMagic.Smb,
    FsMagic.Cramfs, FsMagic.Jffs2, FsMagic.Ecryptfs, FsMagic.Fuse, FsMagic.Erofs];
  const names = listed.map((m) => fsName(m));
  for (const [i, n] of names.entries()) {
    assert.ok(n.length > 0 && !n.startsWith('<unknown'), `fsName(0x${listed[i]!.toString(16)}) = ${n}`);
  }
  assert.equal(new Set(names).size, names.length, `duplicate names: ${names.join(', ')}`);
  assert.equal(fsName(FsMagic.Btrfs), 'btrfs');
  assert.equal(fsName(FsMagic.Extfs), 'extfs');
  assert.equal(fsName(FsMagic.Xfs), 'xfs');
});

test('fsName of an unknown magic shows it in hex', () => {
  assert.match(fsName(0x12345678), /12345678/);
  assert.match(fsName(0xdeadbeef), /deadbeef/i);
  // Signed and unsigned forms of the same 32-bit value name the same filesystem.
  assert.equal(fsName(FsMagic.Btrfs | 0), 'btrfs');
});
