// statfs.test.ts: the statfs(2) facade. Every field is a number; f_type is unsigned 32-bit
// (ramfs's magic 0x858458f6 has the top bit set, so a signed conversion would show); sizes of a
// tmpfs mounted with size=4m come back as the kernel computes them.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { SyscallError } from '../../lib/index';
import { mount, statfs } from '../../lib/native';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

const fields = ['f_type', 'f_bsize', 'f_blocks', 'f_bfree', 'f_bavail', 'f_files', 'f_ffree', 'f_namelen', 'f_frsize', 'f_flags'] as const;

test('statfs returns every field as a number', async () => {
  const st = await statfs('/');
  for (const f of fields) assert.equal(typeof st[f], 'number', f);
  for (const f of fields) assert.ok(Number.isFinite(st[f]) && st[f] >= 0, `${f} = ${st[f]}`);
  assert.ok(Array.isArray(st.f_fsid) && st.f_fsid.length === 2 && st.f_fsid.every((n) => typeof n === 'number'));
  assert.ok(st.f_bsize > 0 && st.f_namelen > 0);
});

test('statfs of /proc reports PROC_SUPER_MAGIC', async () => {
  assert.equal((await statfs('/proc')).f_type, 0x9fa0);
});

test('f_type is unsigned (ramfs, top bit set)', { skip: skipUnlessRoot('mounts ramfs') }, async () => {
  await withTmpDir(async (tmp) => {
    const mp = await tmp.mkdir('ramfs');
    await mount('ramfs', mp, 'ramfs', 0, null);
    const t = (await statfs(mp)).f_type;
    assert.equal(t, 0x858458f6);
    assert.ok(t > 0x7fffffff);
  });
});

test('a tmpfs of size=4m has 4 MiB of blocks', { skip: skipUnlessRoot('mounts tmpfs') }, async () => {
  await withTmpDir(async (tmp) => {
    const mp = await tmp.mkdir('tmpfs');
    await mount('tmpfs', mp, 'tmpfs', 0, 'size=4m,nr_inodes=1000');
    const st = await statfs(mp);
    assert.equal(st.f_type, 0x01021994);
    assert.equal(st.f_blocks * st.f_bsize, 4 * 1024 * 1024);
    assert.equal(st.f_bfree, st.f_blocks);
    assert.equal(st.f_files, 1000);
    assert.equal(st.f_namelen, 255);
  });
});

test('statfs of a missing path rejects with ENOENT and the path', async () => {
  await assert.rejects(statfs('/nonexistent/graphdriver-test'), (e: unknown) =>
    e instanceof SyscallError && e.code === 'ENOENT' && e.errno === -2 && e.syscall === 'statfs' && e.path === '/nonexistent/graphdriver-test');
});
