// metadata-roundtrip: everything a layer tar can carry survives diff -> applyDiff -> diff ->
// applyDiff: hardlinks, absolute/relative/dangling symlinks, user.* and security.capability
// xattrs, owners, setuid/setgid/sticky modes, char/block devices, fifos, and mtimes. A tar carries
// whole seconds, so the source is compared at second precision; A and B (both from tars) exactly.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { lgetxattr, lsetxattr } from '../../../lib/native';
import { buildTree, compareTrees, snapshotTree } from '../../helpers/fs-tree';
import type { EntrySpec } from '../../helpers/fs-tree';
import { collect } from '../../helpers/tar';
import type { ConformanceCase } from '../suite';

/** struct vfs_cap_data, VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, permitted = CAP_NET_BIND_SERVICE. */
export const capabilityV2 = Buffer.from([
  0x01, 0x00, 0x00, 0x02, // magic_etc 0x02000001 (le32)
  0x00, 0x04, 0x00, 0x00, // data[0].permitted = 1 << 10
  0x00, 0x00, 0x00, 0x00, // data[0].inheritable
  0x00, 0x00, 0x00, 0x00, // data[1].permitted
  0x00, 0x00, 0x00, 0x00, // data[1].inheritable
]);

const t = 1_650_000_000_987_654_321n;

export const metadataRoundtrip: ConformanceCase = {
  name: 'metadata-roundtrip',
  needsRoot: 'chown, mknod, security.capability',
  async run({ driver: d, tmp, t: test }) {
    // Can this filesystem hold the capability blob as written? (Checked, not assumed.)
    const probe = tmp.join('scratch', 'cap-probe');
    await fsp.writeFile(probe, '');
    let capOk = true;
    try {
      await lsetxattr(probe, 'security.capability', capabilityV2, 0);
      assert.ok((await lgetxattr(probe, 'security.capability')).equals(capabilityV2), 'capability blob reads back changed');
    } catch (err) {
      capOk = false;
      test.diagnostic(`security.capability not settable here (${(err as Error).message}); not part of this run`);
    }
    const spec: EntrySpec[] = [
      { type: 'dir', path: 'dirs/sticky', mode: 0o1777, mtimeNs: t },
      { type: 'dir', path: 'dirs/setgid', mode: 0o2755, uid: 5, gid: 6, mtimeNs: t, xattrs: { 'user.dir': 'on a dir' } },
      { type: 'file', path: 'f/plain', content: 'plain\n', mtimeNs: t + 1n },
      { type: 'hardlink', path: 'f/hard', target: 'f/plain' },
      { type: 'hardlink', path: 'other/hard2', target: 'f/plain' },
      { type: 'file', path: 'f/setuid', content: 'suid', mode: 0o4755, uid: 0, gid: 0, mtimeNs: t + 2n },
      { type: 'file', path: 'f/setgid', content: 'sgid', mode: 0o2711, uid: 7, gid: 8, mtimeNs: t + 3n },
      { type: 'file', path: 'f/owned', content: Buffer.alloc(10_000, 0xab), mode: 0o640, uid: 1000, gid: 1001, mtimeNs: t + 4n },
      { type: 'file', path: 'f/empty', content: '', mode: 0o400, mtimeNs: t + 5n },
      {
        type: 'file', path: 'f/xattrs', content: 'x', mode: 0o755, mtimeNs: t + 6n,
        xattrs: { 'user.foo': 'bar', 'user.bin': Buffer.from([0, 1, 2, 0, 255]), ...(capOk ? { 'security.capability': capabilityV2 } : {}) },
      },
      { type: 'symlink', path: 'l/abs', target: '/etc/passwd', mtimeNs: t + 7n },
      { type: 'symlink', path: 'l/rel', target: '../f/plain', uid: 3, gid: 4, mtimeNs: t + 8n },
      { type: 'symlink', path: 'l/dangling', target: 'nope/missing', mtimeNs: t + 9n },
      { type: 'char', path: 'd/null', major: 1, minor: 3, mode: 0o666, mtimeNs: t + 10n },
      { type: 'char', path: 'd/bigminor', major: 136, minor: 300, mode: 0o620, uid: 0, gid: 5, mtimeNs: t + 11n },
      { type: 'block', path: 'd/loop', major: 7, minor: 0, mode: 0o660, gid: 6, mtimeNs: t + 12n },
      { type: 'fifo', path: 'd/fifo', mode: 0o620, uid: 9, gid: 9, mtimeNs: t + 13n },
      { type: 'file', path: 'deep/a/b/c/d/e/f/g/h', content: 'deep', mtimeNs: t + 14n },
    ];
    await d.create('src', '');
    const s = await d.get('src');
    await buildTree(s, spec);
    const src = await snapshotTree(s);
    await d.put('src');
    // Sanity of the oracle itself: the builder did what the spec says.
    assert.deepEqual(src.get('/f/plain')?.links, ['/f/hard', '/f/plain', '/other/hard2']);
    assert.equal(src.get('/d/bigminor')?.rdev, '136:300');

    const tar1 = await collect(await d.diff('src', ''));
    await d.create('A', '');
    const sizeA = await d.applyDiff('A', '', Readable.from([tar1]));
    // What applyDiff wrote: regular file contents, each hardlinked inode once (the engine's
    // UnpackLayer sums tar header sizes; links, symlinks, devices and fifos carry none).
    const inodes = new Map<string, number>();
    for (const [p, r] of src) if (r.type === 'file') inodes.set(r.links?.[0] ?? p, r.size ?? 0);
    const expectedSize = [...inodes.values()].reduce((x, y) => x + y, 0);
    assert.equal(sizeA, expectedSize, 'applyDiff(A) size: bytes of regular files, hardlinks once');

    const tar2 = await collect(await d.diff('A', ''));
    await d.create('B', '');
    await d.applyDiff('B', '', Readable.from([tar2]));

    const a = await snapshotTree(await d.get('A'));
    const b = await snapshotTree(await d.get('B'));
    try {
      assert.deepEqual(compareTrees(src, a, { mtime: 's', labels: ['source', 'A'] }), []);
      assert.deepEqual(compareTrees(a, b, { mtime: 'ns', labels: ['A', 'B'] }), []);
      assert.equal(path.isAbsolute(a.get('/l/abs')?.target ?? ''), true);
    } finally {
      await d.put('A');
      await d.put('B');
    }
  },
};
