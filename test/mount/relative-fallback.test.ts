// relative-fallback.test.ts: the engine's fallback for kernels without fsconfig `lowerdir+`.
// mount(2) takes the whole option string in one page (4096 bytes), so a deep chain of long
// absolute lower paths does not fit; relative paths from the lowers' directory do, when the
// mount is made by a thread that did unshare(CLONE_FS) + chdir there (native mountFrom). This
// kernel has lowerdir+, so the test forces the mount(2) method and checks the merged tree,
// that the process's cwd never moved, and the limit error when even relative paths overflow.
import { strict as assert } from 'node:assert';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { MountLimitError } from '../../lib/errors';
import { MOUNT_DATA_MAX, applyMount, checkOverlayLimits, relativeForm, unmount } from '../../lib/mount/apply';
import type { MountSpec } from '../../lib/mount/spec';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

test('a chain too long for one page as absolute paths mounts with relative ones, from its own thread',
  { skip: skipUnlessRoot('mounts overlayfs') }, async () => {
    await withTmpDir(async (tmp) => {
      const long = tmp.join('a-long-directory-name-that-makes-each-absolute-lower-path-long'.repeat(2));
      const links = path.join(long, 'l');
      await fsp.mkdir(links, { recursive: true });
      const count = 60;
      const lowers: string[] = [];
      for (let i = 0; i < count; i++) {
        const d = path.join(links, `L${String(i).padStart(3, '0')}`);
        await fsp.mkdir(d);
        await fsp.writeFile(path.join(d, `file-${i}`), String(i));
        lowers.push(d);
      }
      const upper = await tmp.mkdir('upper');
      const work = await tmp.mkdir('work');
      const merged = await tmp.mkdir('merged');
      const spec: MountSpec = {
        type: 'overlay', source: 'overlay', target: merged, flags: 0,
        options: [`upperdir=${upper}`, `workdir=${work}`], lowerdirs: lowers,
      };
      assert.ok(Buffer.byteLength(`lowerdir=${lowers.join(':')}`) > MOUNT_DATA_MAX, 'the absolute form must overflow a page for this test');
      assert.ok(Buffer.byteLength(relativeForm(spec)!.data) <= MOUNT_DATA_MAX);
      const cwd = process.cwd();
      await applyMount(spec, links, 'mount-data');
      try {
        assert.equal(process.cwd(), cwd);
        const names = (await fsp.readdir(merged)).sort();
        assert.deepEqual(names, lowers.map((_, i) => `file-${i}`).sort());
        await fsp.writeFile(path.join(merged, 'written'), 'up');
        assert.equal(await fsp.readFile(path.join(upper, 'written'), 'utf8'), 'up');
      } finally {
        assert.equal(await unmount(merged), true);
      }
      // Past what even relative paths fit, the mount is refused before any syscall.
      const tooMany: MountSpec = { ...spec, lowerdirs: Array.from({ length: 499 }, (_, i) => path.join(links, `${'x'.repeat(12)}${i}`)) };
      assert.throws(() => checkOverlayLimits(tooMany, 'mount-data'), MountLimitError);
    }, 'relative-');
  });
