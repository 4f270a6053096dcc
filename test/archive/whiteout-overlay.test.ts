// whiteout-overlay.test.ts: the conversion between the two whiteout forms. overlayfs marks a
// deletion in an upper layer with a 0/0 character device and an opaque directory with the
// trusted.overlay.opaque=y xattr; layer tars carry AUFS names (.wh.NAME, .wh..wh..opq).
// Export with whiteouts 'overlay' turns the first form into the second; apply with
// whiteouts 'overlay' turns it back, writing into the layer without removing anything.
import { strict as assert } from 'node:assert';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { applyLayer } from '../../lib/archive/apply';
import { exportTree } from '../../lib/archive/export';
import { C, getxattr, lgetxattr, lsetxattr, mknod } from '../../lib/native';
import { skipUnlessRoot } from '../helpers/requires-root';
import { makeTar } from '../helpers/hostile-tar';
import { collect, tarNames } from '../helpers/tar';
import { withTmpDir } from '../helpers/tmp';

async function overlayUpper(dir: string): Promise<void> {
  await fsp.mkdir(path.join(dir, 'etc'));
  await fsp.writeFile(path.join(dir, 'etc', 'kept'), 'kept');
  await mknod(path.join(dir, 'etc', 'gone'), C.S_IFCHR, 0, 0);       // deleted 'etc/gone'
  await fsp.mkdir(path.join(dir, 'opq'));
  await lsetxattr(path.join(dir, 'opq'), 'trusted.overlay.opaque', Buffer.from('y'), 0);
  await fsp.writeFile(path.join(dir, 'opq', 'new'), 'only this');
  await mknod(path.join(dir, 'notwhiteout'), C.S_IFCHR | 0o600, 1, 3); // a real device stays a device
}

describe('overlay whiteout conversion', { skip: skipUnlessRoot('mknod and trusted.* xattrs') }, () => {
  test('export turns 0/0 devices and opaque xattrs into .wh. entries', async () => {
    await withTmpDir(async (tmp) => {
      const upper = await tmp.mkdir('upper');
      await overlayUpper(upper);
      const names = await tarNames(await collect(exportTree(upper, undefined, { whiteouts: 'overlay' })));
      assert.deepEqual(names.sort(), ['etc/', 'etc/.wh.gone', 'etc/kept', 'notwhiteout', 'opq/', 'opq/.wh..wh..opq', 'opq/new'].sort());
      // Without conversion the device travels as a device and no marker is invented.
      const plain = await tarNames(await collect(exportTree(upper)));
      assert.ok(plain.includes('etc/gone') && !plain.includes('opq/.wh..wh..opq'), plain.join(' '));
    });
  });

  test('apply with overlay whiteouts writes devices and xattrs back and removes nothing', async () => {
    await withTmpDir(async (tmp) => {
      const upper = await tmp.mkdir('upper');
      await overlayUpper(upper);
      const tar = await collect(exportTree(upper, undefined, { whiteouts: 'overlay' }));
      const diff = await tmp.mkdir('diff');
      await fsp.writeFile(path.join(diff, 'preexisting'), 'stays');
      await applyLayer(diff, Readable.from([tar]), { whiteouts: 'overlay' });
      const gone = await fsp.lstat(path.join(diff, 'etc', 'gone'), { bigint: true });
      assert.ok(gone.isCharacterDevice());
      assert.equal(gone.rdev, 0n);
      assert.equal((await getxattr(path.join(diff, 'opq'), 'trusted.overlay.opaque')).toString(), 'y');
      assert.equal(await fsp.readFile(path.join(diff, 'opq', 'new'), 'utf8'), 'only this');
      assert.equal(await fsp.readFile(path.join(diff, 'preexisting'), 'utf8'), 'stays');
      assert.ok((await fsp.lstat(path.join(diff, 'notwhiteout'))).isCharacterDevice());
      // And the same tar applied the AUFS way onto a lower tree deletes and hides.
      const lower = await tmp.mkdir('lower');
      await fsp.mkdir(path.join(lower, 'etc'));
      await fsp.writeFile(path.join(lower, 'etc', 'gone'), 'old');
      await fsp.mkdir(path.join(lower, 'opq'));
      await fsp.writeFile(path.join(lower, 'opq', 'hidden'), 'old');
      await applyLayer(lower, Readable.from([tar]));
      await assert.rejects(fsp.lstat(path.join(lower, 'etc', 'gone')), { code: 'ENOENT' });
      assert.deepEqual((await fsp.readdir(path.join(lower, 'opq'))).sort(), ['new']);
      await assert.rejects(lgetxattr(path.join(lower, 'opq'), 'trusted.overlay.opaque'), { code: 'ENODATA' });
    });
  });
});

describe('overlay metadata in a tar', { skip: skipUnlessRoot('trusted.* xattrs') }, () => {
  // overlayfs reads trusted.overlay.* of an upper/lower directory as its own metadata (a
  // redirect to another lower path, metacopy, opaque). A tar must not be able to plant it.
  test('trusted.overlay.* xattrs from a tar are dropped, in both whiteout forms', async () => {
    await withTmpDir(async (tmp) => {
      const xattrs = new Map([['trusted.overlay.redirect', Buffer.from('/etc')], ['trusted.overlay.opaque', Buffer.from('y')],
        ['user.kept', Buffer.from('1')]]);
      const tar = makeTar([{ name: 'd/', type: 'dir', mode: 0o755, xattrs }, { name: 'f', data: 'x', xattrs }]);
      for (const whiteouts of ['aufs', 'overlay'] as const) {
        const out = await tmp.mkdir(whiteouts);
        await applyLayer(out, Readable.from([tar]), { whiteouts });
        for (const p of ['d', 'f']) {
          await assert.rejects(lgetxattr(path.join(out, p), 'trusted.overlay.redirect'), { code: 'ENODATA' });
          await assert.rejects(lgetxattr(path.join(out, p), 'trusted.overlay.opaque'), { code: 'ENODATA' });
          assert.equal((await lgetxattr(path.join(out, p), 'user.kept')).toString(), '1');
        }
      }
    });
  });
});
