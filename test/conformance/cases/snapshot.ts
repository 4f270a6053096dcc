// snapshot: a child starts as an exact view of its parent (every entry, mode, owner, ns mtime,
// content, link, xattr and hardlink group), and writes in the child never reach the parent.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { buildTree, compareTrees, snapshotTree } from '../../helpers/fs-tree';
import type { ConformanceCase } from '../suite';

const t0 = 1_600_000_000_123_456_789n;

export const snapshot: ConformanceCase = {
  name: 'snapshot',
  needsRoot: 'chown, mknod',
  async run({ driver }) {
    await driver.create('base', '');
    const b = await driver.get('base');
    await buildTree(b, [
      { type: 'dir', path: 'etc', mode: 0o755, mtimeNs: t0 },
      { type: 'file', path: 'etc/hosts', content: '127.0.0.1 localhost\n', mtimeNs: t0 + 1n },
      { type: 'file', path: 'etc/shadow', content: 'root:*:1::::::\n', mode: 0o640, uid: 0, gid: 42, mtimeNs: t0 + 2n },
      { type: 'file', path: 'bin/tool', content: Buffer.alloc(70_000, 7), mode: 0o4755, mtimeNs: t0 + 3n },
      { type: 'hardlink', path: 'bin/tool-link', target: 'bin/tool' },
      { type: 'symlink', path: 'bin/sh', target: 'tool', uid: 5, gid: 6, mtimeNs: t0 + 4n },
      { type: 'dir', path: 'tmp', mode: 0o1777, mtimeNs: t0 },
      { type: 'file', path: 'data/x', content: 'x', uid: 1000, gid: 1000, xattrs: { 'user.origin': 'base' }, mtimeNs: t0 + 5n },
      { type: 'fifo', path: 'run/fifo', mode: 0o620, mtimeNs: t0 + 6n },
      { type: 'char', path: 'dev/null', major: 1, minor: 3, mode: 0o666, mtimeNs: t0 + 7n },
    ]);
    const before = await snapshotTree(b);
    await driver.put('base');

    await driver.create('child', 'base');
    const c = await driver.get('child');
    const b2 = await driver.get('base');
    assert.notEqual(c, b2, 'child and base share a path');
    assert.deepEqual(compareTrees(before, await snapshotTree(c), { labels: ['base', 'child'] }), []);

    await fsp.writeFile(path.join(c, 'etc/hosts'), 'changed\n');
    await fsp.appendFile(path.join(c, 'bin/tool'), 'more');
    await fsp.writeFile(path.join(c, 'new-file'), 'new');
    await fsp.rm(path.join(c, 'data'), { recursive: true });
    await fsp.chmod(path.join(c, 'etc/shadow'), 0o600);
    assert.deepEqual(compareTrees(before, await snapshotTree(b2), { labels: ['base before', 'base after child writes'] }), []);
    assert.equal(await fsp.readFile(path.join(c, 'etc/hosts'), 'utf8'), 'changed\n');
    await driver.put('base');
    await driver.put('child');
  },
};
