// tampered.test.ts: layers changed behind the driver's back — a mount point or a layer's
// directory deleted by hand. The driver reports a clear error (a named error class or the
// syscall's errno, never a crash or a hang), and remove() still cleans up what is left.
import { strict as assert } from 'node:assert';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { getDriver } from '../../lib/index';
import { umount2 } from '../../lib/native';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

const skip = skipUnlessRoot('mounts overlayfs');

test('vfs: a layer directory deleted by hand is simply gone', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const root = await tmp.mkdir('root');
    const d = await getDriver('vfs', root);
    await d.create('a');
    await fsp.rm(path.join(root, 'vfs', 'dir', 'a'), { recursive: true });
    assert.equal(await d.exists('a'), false);
    await assert.rejects(d.get('a'), { code: 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND' });
    await assert.rejects(d.remove('a'), { code: 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND' });
    await d.create('a'); // the id is free again
    await d.cleanup();
  });
});

test('overlay2: a deleted merged/ is recreated, a deleted diff/ gives ENOENT, and remove cleans up', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const root = await tmp.mkdir('root');
    const d = await getDriver('overlay2', root);
    await d.create('base');
    await d.create('top', 'base');
    const merged = await d.get('top');
    await d.put('top');
    await fsp.rm(merged, { recursive: true });
    assert.equal(await d.get('top'), merged, 'the mount point is made again');
    await d.put('top');
    const layers = path.dirname(path.dirname(merged));
    await fsp.rm(path.join(layers, 'top', 'diff'), { recursive: true });
    await assert.rejects(d.get('top'), (err: unknown) => (err as { code?: string }).code === 'ENOENT');
    await d.remove('top');
    assert.equal(await d.exists('top'), false);
    await assert.rejects(fsp.lstat(path.join(layers, 'top')), { code: 'ENOENT' });
    assert.equal(await d.exists('base'), true);
    await d.cleanup();
  });
});

test('overlay2: a mount removed behind the driver (umount by hand) is mounted again or released cleanly', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const root = await tmp.mkdir('root');
    const d = await getDriver('overlay2', root);
    await d.create('base');
    await d.create('top', 'base');
    const merged = await d.get('top');
    await umount2(merged, 0);
    await d.put('top'); // nothing mounted any more: put still succeeds
    const again = await d.get('top');
    await fsp.writeFile(path.join(again, 'x'), 'y');
    await d.put('top');
    await d.remove('top');
    await d.cleanup();
  });
});
