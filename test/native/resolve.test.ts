// resolve.test.ts: the confinement primitives the archive engine relies on. openat2 with
// RESOLVE_IN_ROOT treats the dir fd as '/', so absolute symlinks and '..' chains resolve inside
// it (a link to /etc reaches root/etc, never the host's /etc); RESOLVE_BENEATH refuses to leave
// (EXDEV); removeAllAt deletes a tree without following a symlink out of it.
import * as assert from 'node:assert/strict';
import { promises as fsp, readSync } from 'node:fs';
import { test } from 'node:test';
import { SyscallError } from '../../lib/index';
import { C, closeSync, open, openat, openat2, removeAllAt } from '../../lib/native';
import { withTmpDir } from '../helpers/tmp';

/** Reads up to 4 KiB from `fd` as UTF-8. */
function readFd(fd: number): string {
  const buf = Buffer.alloc(4096);
  return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString();
}

/** Opens `dir` as a directory fd, runs fn, and always closes it. */
async function withDir<T>(dir: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = await open(dir, C.O_RDONLY | C.O_DIRECTORY, 0);
  try {
    return await fn(fd);
  } finally {
    closeSync(fd);
  }
}

/** openat2 that returns the content read through the fd (closing it). */
async function readVia(dirfd: number, p: string, resolve: number): Promise<string> {
  const fd = await openat2(dirfd, p, C.O_RDONLY, 0, resolve);
  try {
    return readFd(fd);
  } finally {
    closeSync(fd);
  }
}

test('RESOLVE_IN_ROOT: absolute and ../ symlinks resolve inside the root', async () => {
  await withTmpDir(async (tmp) => {
    const root = await tmp.mkdir('root/a/b');
    const r = tmp.join('root');
    await fsp.symlink('/etc', tmp.join('root/link'));
    await fsp.symlink('../../..', tmp.join('root/a/b/up'));
    await withDir(r, async (fd) => {
      // Nothing called etc inside the root yet: the host's /etc/passwd must not be reached.
      await assert.rejects(openat2(fd, 'link/passwd', C.O_RDONLY, 0, C.RESOLVE_IN_ROOT), (e: unknown) =>
        e instanceof SyscallError && e.code === 'ENOENT' && e.syscall === 'openat2');
      await assert.rejects(openat2(fd, 'a/b/up/etc/passwd', C.O_RDONLY, 0, C.RESOLVE_IN_ROOT), { code: 'ENOENT' });
      await assert.rejects(openat2(fd, '../../../../etc/passwd', C.O_RDONLY, 0, C.RESOLVE_IN_ROOT), { code: 'ENOENT' });
      // With root/etc/passwd present, every one of those reaches it.
      await fsp.mkdir(tmp.join('root/etc'));
      await fsp.writeFile(tmp.join('root/etc/passwd'), 'inside the root\n');
      assert.equal(await readVia(fd, 'link/passwd', C.RESOLVE_IN_ROOT), 'inside the root\n');
      assert.equal(await readVia(fd, 'a/b/up/etc/passwd', C.RESOLVE_IN_ROOT), 'inside the root\n');
      assert.equal(await readVia(fd, '/etc/passwd', C.RESOLVE_IN_ROOT), 'inside the root\n');
      assert.equal(await readVia(fd, '../../etc/passwd', C.RESOLVE_IN_ROOT), 'inside the root\n');
    });
    assert.ok(root.endsWith('root/a/b'));
  });
});

test('RESOLVE_BENEATH rejects .. and absolute symlinks with EXDEV', async () => {
  await withTmpDir(async (tmp) => {
    const r = await tmp.mkdir('root/sub');
    await fsp.writeFile(tmp.join('outside'), 'outside');
    await fsp.writeFile(tmp.join('root/sub/in'), 'in');
    await fsp.symlink('/etc', tmp.join('root/abs'));
    await withDir(tmp.join('root'), async (fd) => {
      await assert.rejects(openat2(fd, '../outside', C.O_RDONLY, 0, C.RESOLVE_BENEATH), (e: unknown) =>
        e instanceof SyscallError && e.code === 'EXDEV' && e.errno === -18 && e.syscall === 'openat2');
      await assert.rejects(openat2(fd, 'abs/passwd', C.O_RDONLY, 0, C.RESOLVE_BENEATH), { code: 'EXDEV' });
      // '..' that stays inside is fine.
      assert.equal(await readVia(fd, 'sub/../sub/in', C.RESOLVE_BENEATH), 'in');
      await assert.rejects(openat2(fd, 'abs/passwd', C.O_RDONLY, 0, C.RESOLVE_NO_SYMLINKS), { code: 'ELOOP' });
    });
    assert.ok(r.endsWith('root/sub'));
  });
});

test('openat and openat2 create files relative to the dir fd', async () => {
  await withTmpDir(async (tmp) => {
    await withDir(tmp.path, async (fd) => {
      const f = await openat2(fd, 'new', C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600, C.RESOLVE_IN_ROOT);
      closeSync(f);
      await assert.rejects(openat2(fd, 'new', C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600, C.RESOLVE_IN_ROOT), { code: 'EEXIST' });
      const g = await openat(fd, 'new', C.O_RDONLY, 0);
      closeSync(g);
      assert.equal((await fsp.stat(tmp.join('new'))).mode & 0o777 & ~0o600, 0);
    });
  });
});

test('removeAllAt removes a tree holding symlinks out of it, leaving the outside alone', async () => {
  await withTmpDir(async (tmp) => {
    const outside = await tmp.mkdir('outside/dir');
    await fsp.writeFile(tmp.join('outside/dir/keep'), 'keep me');
    await tmp.mkdir('root/victim/deep/er');
    await fsp.writeFile(tmp.join('root/victim/deep/er/f'), 'f');
    await fsp.symlink(outside, tmp.join('root/victim/out'));
    await fsp.symlink('../../outside/dir', tmp.join('root/victim/deep/rel-out'));
    await fsp.symlink(tmp.join('outside/dir/keep'), tmp.join('root/victim/file-out'));
    await fsp.chmod(tmp.join('root/victim/deep/er'), 0o500);
    await withDir(tmp.join('root'), async (fd) => {
      await removeAllAt(fd, 'victim');
      await removeAllAt(fd, 'victim'); // a missing name is not an error
    });
    assert.deepEqual(await fsp.readdir(tmp.join('root')), []);
    assert.deepEqual(await fsp.readdir(outside), ['keep']);
    assert.equal(await fsp.readFile(tmp.join('outside/dir/keep'), 'utf8'), 'keep me');
  });
});

test('removeAllAt of a symlink to a directory removes only the link', async () => {
  await withTmpDir(async (tmp) => {
    const target = await tmp.mkdir('target');
    await fsp.writeFile(tmp.join('target/x'), 'x');
    await fsp.symlink(target, tmp.join('link'));
    await withDir(tmp.path, (fd) => removeAllAt(fd, 'link'));
    assert.deepEqual((await fsp.readdir(tmp.path)).sort(), ['target']);
    assert.deepEqual(await fsp.readdir(target), ['x']);
  });
});
