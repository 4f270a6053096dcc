// mount.test.ts: the mount(2)/umount2(2) facade against the real kernel, in temp dirs. Mounts
// are seen through /proc/self/mountinfo (not the facade's own word); errors carry Node's fs
// fields and a stack that starts at the caller (captured before crossing into native code).
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { SyscallError } from '../../lib/index';
import { MS, mount, statfs, umount2 } from '../../lib/native';
import { skipUnlessRoot } from '../helpers/requires-root';
import { mountsUnder, withTmpDir } from '../helpers/tmp';

const root = { skip: skipUnlessRoot('mount(2) and umount2(2)') };

test('mount constants have the kernel values', () => {
  assert.deepEqual([MS.MS_RDONLY, MS.MS_NOSUID, MS.MS_NODEV, MS.MS_REMOUNT, MS.MS_BIND, MS.MS_REC, MS.MS_PRIVATE],
    [1, 2, 4, 32, 4096, 16384, 1 << 18]);
  assert.deepEqual([MS.MNT_FORCE, MS.MNT_DETACH, MS.MNT_EXPIRE, MS.UMOUNT_NOFOLLOW], [1, 2, 4, 8]);
});

test('mount tmpfs with data, then umount2', root, async () => {
  await withTmpDir(async (tmp) => {
    const mp = await tmp.mkdir('mnt');
    await fsp.writeFile(path.join(mp, 'under'), 'hidden by the mount');
    await mount('tmpfs', mp, 'tmpfs', MS.MS_NOSUID, 'size=1m,mode=0710');
    assert.deepEqual(mountsUnder(tmp.path), [mp]);
    assert.equal((await statfs(mp)).f_type, 0x01021994);
    assert.equal((await fsp.stat(mp)).mode & 0o7777, 0o710);
    assert.deepEqual(await fsp.readdir(mp), []);
    await fsp.writeFile(path.join(mp, 'on-tmpfs'), 'x');
    await umount2(mp, 0);
    assert.deepEqual(mountsUnder(tmp.path), []);
    assert.deepEqual(await fsp.readdir(mp), ['under']);
  });
});

test('read-only mount refuses writes (EROFS)', root, async () => {
  await withTmpDir(async (tmp) => {
    const mp = await tmp.mkdir('ro');
    await mount('tmpfs', mp, 'tmpfs', MS.MS_RDONLY, null);
    await assert.rejects(fsp.writeFile(path.join(mp, 'f'), 'x'), { code: 'EROFS' });
    await umount2(mp, MS.MNT_DETACH);
    assert.deepEqual(mountsUnder(tmp.path), []);
  });
});

test('bind mount shows the source, MNT_DETACH removes it', root, async () => {
  await withTmpDir(async (tmp) => {
    const src = await tmp.mkdir('src');
    const dst = await tmp.mkdir('dst');
    await fsp.writeFile(path.join(src, 'file'), 'from src');
    await mount(src, dst, null, MS.MS_BIND, null);
    assert.equal(await fsp.readFile(path.join(dst, 'file'), 'utf8'), 'from src');
    await umount2(dst, MS.MNT_DETACH);
    assert.deepEqual(await fsp.readdir(dst), []);
  });
});

test('umount2 of a directory that is not a mount point rejects with EINVAL', root, async () => {
  await withTmpDir(async (tmp) => {
    const dir = await tmp.mkdir('plain');
    let caught: unknown;
    try {
      await umount2(dir, 0);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof SyscallError, `not a SyscallError: ${String(caught)}`);
    assert.equal(caught.code, 'EINVAL');
    assert.equal(caught.errno, -22);
    assert.equal(caught.syscall, 'umount2');
    assert.equal(caught.path, dir);
    assert.ok(caught.message.includes(dir), `message does not show the call: ${caught.message}`);
    assert.ok((caught.stack ?? '').includes('mount.test'), `stack lacks the call site:\n${caught.stack}`);
  });
});

test('mount of an unknown filesystem type rejects with ENODEV', root, async () => {
  await withTmpDir(async (tmp) => {
    const mp = await tmp.mkdir('mnt');
    await assert.rejects(mount('none', mp, 'no-such-fs-graphdriver', 0, null),
      (e: unknown) => e instanceof SyscallError && e.code === 'ENODEV' && e.syscall === 'mount');
    assert.deepEqual(mountsUnder(tmp.path), []);
  });
});

test('umount2 of a missing path rejects with ENOENT', root, async () => {
  await assert.rejects(umount2('/nonexistent/graphdriver-test', 0),
    (e: unknown) => e instanceof SyscallError && e.code === 'ENOENT' && e.errno === -2 && e.path === '/nonexistent/graphdriver-test');
});

test('bad arguments are TypeErrors thrown before any syscall', async () => {
  await assert.rejects(async () => umount2(42 as unknown as string, 0), TypeError);
});
