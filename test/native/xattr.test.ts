// xattr.test.ts: the l*xattr(2) facade on a real filesystem (the temp dir's): binary values
// with NUL bytes survive, the l* calls act on a symlink itself and never follow it, create /
// replace flags behave, and a missing attribute is ENODATA.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { SyscallError } from '../../lib/index';
import { C, getxattr, lgetxattr, listxattr, llistxattr, lremovexattr, lsetxattr, setxattr } from '../../lib/native';
import { withTmpDir } from '../helpers/tmp';
import type { TmpDir } from '../helpers/tmp';

/** Runs `fn` in a temp dir whose filesystem takes user.* xattrs; skips with the reason if not. */
async function withXattrDir(t: TestContext, fn: (tmp: TmpDir) => Promise<void>): Promise<void> {
  await withTmpDir(async (tmp) => {
    const probe = tmp.join('probe');
    await fsp.writeFile(probe, '');
    try {
      await lsetxattr(probe, 'user.probe', Buffer.from('1'), 0);
    } catch (err) {
      t.skip(`the temp dir's filesystem takes no user.* xattrs: ${(err as Error).message}`);
      return;
    }
    await fn(tmp);
  });
}

test('binary values round-trip, NUL bytes included', async (t) => {
  await withXattrDir(t, async (tmp) => {
    const f = tmp.join('f');
    await fsp.writeFile(f, 'x');
    const value = Buffer.from([0, 1, 0, 0xff, 0, 0x7f, 0]);
    await lsetxattr(f, 'user.bin', value, 0);
    const got = await lgetxattr(f, 'user.bin');
    assert.ok(Buffer.isBuffer(got));
    assert.equal(got.toString('hex'), value.toString('hex'));
    await lsetxattr(f, 'user.empty', Buffer.alloc(0), 0);
    assert.equal((await lgetxattr(f, 'user.empty')).length, 0);
    const big = Buffer.alloc(3000, 0xa5);
    await lsetxattr(f, 'user.big', big, 0);
    assert.ok((await lgetxattr(f, 'user.big')).equals(big));
  });
});

test('llistxattr lists names; lremovexattr removes one', async (t) => {
  await withXattrDir(t, async (tmp) => {
    const f = tmp.join('f');
    await fsp.writeFile(f, 'x');
    await lsetxattr(f, 'user.a', Buffer.from('1'), 0);
    await lsetxattr(f, 'user.b', Buffer.from('2'), 0);
    assert.deepEqual((await llistxattr(f)).filter((n) => n.startsWith('user.')).sort(), ['user.a', 'user.b']);
    await lremovexattr(f, 'user.a');
    assert.deepEqual((await llistxattr(f)).filter((n) => n.startsWith('user.')), ['user.b']);
    await assert.rejects(lremovexattr(f, 'user.a'), { code: 'ENODATA', syscall: 'lremovexattr' });
    const g = tmp.join('none');
    await fsp.writeFile(g, '');
    assert.deepEqual((await llistxattr(g)).filter((n) => n.startsWith('user.')), []);
  });
});

test('lgetxattr of a missing attribute rejects with ENODATA', async (t) => {
  await withXattrDir(t, async (tmp) => {
    const f = tmp.join('f');
    await fsp.writeFile(f, 'x');
    await assert.rejects(lgetxattr(f, 'user.missing'), (e: unknown) =>
      e instanceof SyscallError && e.code === 'ENODATA' && e.errno === -61 && e.syscall === 'lgetxattr' && e.path === f);
    await assert.rejects(lgetxattr(tmp.join('no-file'), 'user.x'), { code: 'ENOENT' });
  });
});

test('XATTR_CREATE and XATTR_REPLACE', async (t) => {
  await withXattrDir(t, async (tmp) => {
    const f = tmp.join('f');
    await fsp.writeFile(f, 'x');
    await assert.rejects(lsetxattr(f, 'user.r', Buffer.from('v'), C.XATTR_REPLACE), { code: 'ENODATA' });
    await lsetxattr(f, 'user.r', Buffer.from('v1'), C.XATTR_CREATE);
    await assert.rejects(lsetxattr(f, 'user.r', Buffer.from('v2'), C.XATTR_CREATE), { code: 'EEXIST' });
    await lsetxattr(f, 'user.r', Buffer.from('v3'), C.XATTR_REPLACE);
    assert.equal((await lgetxattr(f, 'user.r')).toString(), 'v3');
  });
});

test('the l* calls do not follow symlinks; the plain ones do', async (t) => {
  await withXattrDir(t, async (tmp) => {
    const target = tmp.join('target');
    const link = tmp.join('link');
    await fsp.writeFile(target, 'x');
    await fsp.symlink('target', link);
    await setxattr(link, 'user.via-link', Buffer.from('followed'), 0);
    assert.equal((await lgetxattr(target, 'user.via-link')).toString(), 'followed');
    assert.equal((await getxattr(link, 'user.via-link')).toString(), 'followed');
    await assert.rejects(lgetxattr(link, 'user.via-link'), { code: 'ENODATA' });
    assert.ok((await listxattr(link)).includes('user.via-link'));
    assert.ok(!(await llistxattr(link)).includes('user.via-link'));
    // user.* is not allowed on a symlink itself.
    await assert.rejects(lsetxattr(link, 'user.on-link', Buffer.from('x'), 0), { code: 'EPERM' });
  });
});
