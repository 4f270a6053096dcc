// inode.test.ts: the inode facade (mknod/mknodat, utimensat, renameat2, fstatat, fchownat,
// symlinkat/readlinkat, linkat, unlinkat, mkdirat) against the real kernel in a temp dir,
// observed through node:fs (never through the facade under test).
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { test } from 'node:test';
import { SyscallError } from '../../lib/index';
import {
  C, closeSync, fchownat, fstatat, linkat, mkdirat, mknod, mknodat, open, readlinkat, renameat2, symlinkat, unlinkat, utimensat,
} from '../../lib/native';
import { majorMinor } from '../helpers/fs-tree';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';
import type { TmpDir } from '../helpers/tmp';

/** Opens tmp as a directory fd for the *at calls and always closes it. */
async function withDirFd(tmp: TmpDir, fn: (fd: number) => Promise<void>): Promise<void> {
  const fd = await open(tmp.path, C.O_RDONLY | C.O_DIRECTORY, 0);
  try {
    await fn(fd);
  } finally {
    closeSync(fd);
  }
}

test('mknod makes a char device and a fifo', { skip: skipUnlessRoot('mknod of a device') }, async () => {
  await withTmpDir(async (tmp) => {
    const dev = tmp.join('null');
    await mknod(dev, C.S_IFCHR | 0o640, 1, 3);
    const st = await fsp.lstat(dev, { bigint: true });
    assert.ok(st.isCharacterDevice());
    assert.deepEqual(majorMinor(st.rdev), [1, 3]);
    assert.equal(Number(st.mode & 0o777n) & ~0o640, 0);
    const big = tmp.join('big');
    await mknod(big, C.S_IFBLK | 0o600, 259, 70000);
    const bs = await fsp.lstat(big, { bigint: true });
    assert.ok(bs.isBlockDevice());
    assert.deepEqual(majorMinor(bs.rdev), [259, 70000]);
    const fifo = tmp.join('fifo');
    await mknod(fifo, C.S_IFIFO | 0o600, 0, 0);
    assert.ok((await fsp.lstat(fifo)).isFIFO());
    await assert.rejects(mknod(fifo, C.S_IFIFO | 0o600, 0, 0), (e: unknown) => e instanceof SyscallError && e.code === 'EEXIST' && e.path === fifo);
  });
});

test('mknodat makes the overlay whiteout: a 0/0 char device', { skip: skipUnlessRoot('mknod of a device') }, async () => {
  await withTmpDir(async (tmp) => {
    await withDirFd(tmp, async (fd) => {
      await mknodat(fd, 'wh', C.S_IFCHR | 0, 0, 0);
      const st = await fsp.lstat(tmp.join('wh'), { bigint: true });
      assert.ok(st.isCharacterDevice());
      assert.equal(st.rdev, 0n);
      const viaAt = await fstatat(fd, 'wh', C.AT_SYMLINK_NOFOLLOW);
      assert.equal(viaAt.mode & C.S_IFMT, C.S_IFCHR);
      assert.deepEqual([viaAt.rdevMajor, viaAt.rdevMinor], [0, 0]);
      assert.equal(viaAt.ino, st.ino);
    });
  });
});

test('utimensat sets ns times, on a symlink itself with AT_SYMLINK_NOFOLLOW', async () => {
  await withTmpDir(async (tmp) => {
    const f = tmp.join('f');
    await fsp.writeFile(f, 'x');
    await utimensat(C.AT_FDCWD, f, 111, 222, 1234567890, 123456789, 0);
    const st = await fsp.lstat(f, { bigint: true });
    assert.equal(st.mtimeNs, 1234567890123456789n);
    assert.equal(st.atimeNs, 111000000222n);
    await fsp.symlink('f', tmp.join('l'));
    await withDirFd(tmp, async (fd) => {
      await utimensat(fd, 'l', 5, 6, 7, 999999999, C.AT_SYMLINK_NOFOLLOW);
      assert.equal((await fsp.lstat(tmp.join('l'), { bigint: true })).mtimeNs, 7999999999n);
      assert.equal((await fsp.lstat(f, { bigint: true })).mtimeNs, 1234567890123456789n, 'followed the symlink');
      const at = await fstatat(fd, 'l', C.AT_SYMLINK_NOFOLLOW);
      assert.deepEqual([at.mtimeSec, at.mtimeNsec], [7, 999999999]);
    });
  });
});

test('renameat2 RENAME_NOREPLACE refuses an existing target; RENAME_EXCHANGE swaps', async () => {
  await withTmpDir(async (tmp) => {
    await fsp.writeFile(tmp.join('a'), 'A');
    await fsp.writeFile(tmp.join('b'), 'B');
    await withDirFd(tmp, async (fd) => {
      await assert.rejects(renameat2(fd, 'a', fd, 'b', C.RENAME_NOREPLACE), (e: unknown) =>
        e instanceof SyscallError && e.code === 'EEXIST' && e.errno === -17 && e.syscall === 'renameat2');
      assert.equal(await fsp.readFile(tmp.join('b'), 'utf8'), 'B');
      await renameat2(fd, 'a', fd, 'c', C.RENAME_NOREPLACE);
      assert.deepEqual((await fsp.readdir(tmp.path)).sort(), ['b', 'c']);
      await renameat2(fd, 'b', fd, 'c', C.RENAME_EXCHANGE);
      assert.equal(await fsp.readFile(tmp.join('b'), 'utf8'), 'A');
      assert.equal(await fsp.readFile(tmp.join('c'), 'utf8'), 'B');
    });
  });
});

test('symlinkat, readlinkat, linkat, mkdirat, unlinkat', async () => {
  await withTmpDir(async (tmp) => {
    await withDirFd(tmp, async (fd) => {
      await symlinkat('../somewhere/else', fd, 'sl');
      const target = await readlinkat(fd, 'sl');
      assert.ok(Buffer.isBuffer(target));
      assert.equal(target.toString(), '../somewhere/else');
      await fsp.writeFile(tmp.join('f'), 'x');
      await linkat(fd, 'f', fd, 'hard', 0);
      const [a, b] = await Promise.all([fsp.lstat(tmp.join('f')), fsp.lstat(tmp.join('hard'))]);
      assert.equal(a.ino, b.ino);
      assert.equal(a.nlink, 2);
      await mkdirat(fd, 'd', 0o750);
      const dst = await fsp.lstat(tmp.join('d'));
      assert.ok(dst.isDirectory());
      assert.equal(dst.mode & 0o777 & ~0o750, 0);
      await assert.rejects(unlinkat(fd, 'd', 0), { code: 'EISDIR' });
      await unlinkat(fd, 'd', C.AT_REMOVEDIR);
      await unlinkat(fd, 'sl', 0);
      assert.deepEqual((await fsp.readdir(tmp.path)).sort(), ['f', 'hard']);
    });
  });
});

test('fchownat with AT_SYMLINK_NOFOLLOW changes the link, not its target', { skip: skipUnlessRoot('chown') }, async () => {
  await withTmpDir(async (tmp) => {
    await fsp.writeFile(tmp.join('f'), 'x');
    await fsp.symlink('f', tmp.join('l'));
    await withDirFd(tmp, async (fd) => {
      await fchownat(fd, 'l', 1234, 5678, C.AT_SYMLINK_NOFOLLOW);
      const l = await fsp.lstat(tmp.join('l'));
      const f = await fsp.lstat(tmp.join('f'));
      assert.deepEqual([l.uid, l.gid], [1234, 5678]);
      assert.deepEqual([f.uid, f.gid], [0, 0]);
      await fchownat(fd, 'f', 42, 43, 0);
      const st = await fstatat(fd, 'f', 0);
      assert.deepEqual([st.uid, st.gid], [42, 43]);
    });
  });
});
