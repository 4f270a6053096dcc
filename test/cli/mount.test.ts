// mount.test.ts: `mount` and `umount` across processes, as --help describes them. On vfs the
// path is a plain directory and umount only checks the layer. On overlay2 (when it inits on
// this machine) the mount made by one `graphdriver mount` process outlives it, and `umount` in
// a later process takes it over and releases it, however many `mount` runs came before.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { skipUnlessRoot } from '../helpers/requires-root';
import { mountsUnder, withTmpDir } from '../helpers/tmp';
import { ok, runCli, vfs } from './helpers';

const skip = skipUnlessRoot('layers are owned 0:0; overlay2 mounts');

test('mount prints a writable path; umount checks the layer (vfs)', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const root = tmp.join('root');
    ok(vfs(root, 'create', 'base'), 'create base');
    ok(vfs(root, 'create', 'ctr', 'base'), 'create ctr');
    const p = ok(vfs(root, 'mount', 'ctr'), 'mount').out.trim();
    assert.ok(path.isAbsolute(p));
    await fsp.writeFile(path.join(p, 'hello'), 'hi');
    ok(vfs(root, 'umount', 'ctr'), 'umount');
    assert.deepEqual(ok(vfs(root, 'changes', 'ctr'), 'changes').out, 'A /hello\n');
    const missing = vfs(root, 'umount', 'nope');
    assert.equal(missing.status, 3);
  });
});

test('overlay2: a mount outlives `graphdriver mount`; `umount` in a later process releases it', { skip }, async (t) => {
  await withTmpDir(async (tmp) => {
    const root = tmp.join('root');
    const o2 = (...args: string[]): ReturnType<typeof runCli> => runCli(['--root', root, '--driver', 'overlay2', ...args]);
    const probe = o2('create', 'base');
    if (probe.status === 4) { t.skip(`overlay2 does not init here: ${probe.err.trim()}`); return; }
    ok(probe, 'create base');
    ok(o2('create', 'ctr', 'base'), 'create ctr');
    const p = ok(o2('mount', 'ctr'), 'mount').out.trim();
    const real = await fsp.realpath(p);
    assert.deepEqual(mountsUnder(real), [real], 'mounted after the process exited');
    assert.equal(ok(o2('mount', 'ctr'), 'mount again').out.trim(), p);
    assert.deepEqual(mountsUnder(real), [real], 'taken over, not stacked');
    await fsp.writeFile(path.join(p, 'written'), 'x');
    ok(o2('umount', 'ctr'), 'umount');
    assert.deepEqual(mountsUnder(real), [], 'one umount releases it');
    assert.equal(ok(o2('changes', 'ctr'), 'changes').out, 'A /written\n');
    ok(o2('rm', 'ctr'), 'rm ctr');
    ok(o2('rm', 'base'), 'rm base');
  });
});
