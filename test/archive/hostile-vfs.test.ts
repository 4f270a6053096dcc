// hostile-vfs.test.ts: the hostile shapes of hostile.test.ts, applied through a real driver
// (vfs, with NaiveDiffDriver) rather than the archive engine alone: the driver's root sits
// below victim files at several levels, and after each apply (refused or confined) the victims'
// content, modes and listings are unchanged and the failed layer is not left looking complete.
import { strict as assert } from 'node:assert';
import { promises as fsp } from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { getDriver } from '../../lib/index';
import { makeTar, snapshot, type Entry } from '../helpers/hostile-tar';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

const up = (n: number): string => '../'.repeat(n);

const shapes: Array<[string, (n: number) => Entry[]]> = [
  ['dot-dot name', (n) => [{ name: `${up(n)}victim/file`, data: 'pwned' }]],
  ['absolute name with dot-dots', (n) => [{ name: `/${up(n)}victim/file`, data: 'inside' }]],
  ['write through a symlink', (n) => [{ name: 'esc', type: 'symlink', linkname: up(n) }, { name: 'esc/victim/file', data: 'pwned' }]],
  ['absolute symlink then write', (n) => [{ name: 'abs', type: 'symlink', linkname: '/' + up(n) }, { name: 'abs/victim/file', data: 'x' }]],
  ['hardlink out', (n) => [{ name: 'hl', type: 'link', linkname: `${up(n)}victim/file` }]],
  ['hardlink through a symlink', (n) => [{ name: 'esc', type: 'symlink', linkname: up(n) }, { name: 'hl', type: 'link', linkname: 'esc/victim/file' }]],
  ['whiteout through a symlink', (n) => [{ name: 'esc', type: 'symlink', linkname: `${up(n)}victim` }, { name: 'esc/.wh.file' }]],
  ['whiteout with dot-dots', (n) => [{ name: `${up(n)}victim/.wh.file` }]],
  ['opaque through a symlink', (n) => [{ name: 'esc', type: 'symlink', linkname: `${up(n)}victim` }, { name: 'esc/.wh..wh..opq' }]],
  ['PAX-style long name climbing out', (n) => [{ name: `${'d/'.repeat(60)}${up(60 + n)}victim/file`, data: 'pwned' }]],
];

test('hostile layer tars applied through the vfs driver never touch anything outside the layer',
  { skip: skipUnlessRoot('the vfs driver chowns and mknods') }, async () => {
    await withTmpDir(async (tmp) => {
      for (const d of ['', 'a', 'a/b', 'a/b/c', 'a/b/c/root', 'a/b/c/root/vfs', 'a/b/c/root/vfs/dir']) {
        await fsp.mkdir(tmp.join(d, 'victim'), { recursive: true });
        await fsp.writeFile(tmp.join(d, 'victim', 'file'), 'precious', { mode: 0o600 });
      }
      const driver = await getDriver('vfs', tmp.join('a/b/c/root'));
      const outside = async (): Promise<string[]> => (await snapshot(tmp.path)).filter((l) => !/^a\/b\/c\/root\/vfs\/(dir|staging|incomplete|locks)\/(?!victim)/.test(l));
      const before = await outside();
      let k = 0;
      for (const [label, shape] of shapes) {
        for (const n of [1, 2, 4, 7]) {
          const id = `layer-${k++}`;
          await driver.create(id, '');
          let refused = false;
          try {
            await driver.applyDiff(id, '', Readable.from([makeTar(shape(n))]));
          } catch {
            refused = true;
          }
          assert.deepEqual(await outside(), before, `${label} at depth ${n} changed something outside the layer`);
          // A refused apply leaves the layer incomplete (absent), never half-applied and complete.
          if (refused) assert.equal(await driver.exists(id), false, `${label} at depth ${n}: failed layer still exists`);
          await driver.remove(id);
        }
      }
      await driver.cleanup();
    }, 'hostile-vfs-');
  });
