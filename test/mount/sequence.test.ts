// sequence.test.ts: applyMountSequence (mount/apply.ts), the mount-then-MS_REMOUNT sequence the
// aufs driver uses to add branches past one page of mount data. aufs is not in this kernel, so
// the sequence is exercised on tmpfs, whose remount takes new data the same way (size=): the
// calls are real mount(2) calls. A failing remount must leave nothing mounted; malformed
// sequences and data over a page are refused before any call.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { MountLimitError } from '../../lib/errors';
import { applyMountSequence, mountsAt } from '../../lib/mount/apply';
import type { MountSpec } from '../../lib/mount/spec';
import { MS } from '../../lib/native';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

const tmpfs = (target: string, options: string[], flags: number): MountSpec => ({ type: 'tmpfs', source: 'none', target, options, flags });

test('mount then MS_REMOUNTs, in order; a failing remount detaches the mount', { skip: skipUnlessRoot('mounts tmpfs') }, async () => {
  await withTmpDir(async (tmp) => {
    const target = await tmp.mkdir('mnt');
    await applyMountSequence([tmpfs(target, ['size=1m', 'mode=0700'], 0), tmpfs(target, ['size=2m'], MS.MS_REMOUNT), tmpfs(target, ['size=3m'], MS.MS_REMOUNT)]);
    const [m] = await mountsAt(target);
    assert.equal(m?.fsType, 'tmpfs');
    assert.match(m!.superOptions, /(^|,)size=3072k(,|$)/);
    await applyMountSequence([]); // nothing to do
    const other = await tmp.mkdir('other');
    await assert.rejects(applyMountSequence([tmpfs(other, ['size=1m'], 0), tmpfs(other, ['size=not-a-size'], MS.MS_REMOUNT)]), { code: 'EINVAL' });
    assert.deepEqual(await mountsAt(other), [], 'the half-built mount was left mounted');
  }, 'mount-sequence-');
});

test('malformed sequences and data over a page are refused before any call', async () => {
  await assert.rejects(applyMountSequence([tmpfs('/nonexistent-a', [], MS.MS_REMOUNT)]), RangeError);
  await assert.rejects(applyMountSequence([tmpfs('/nonexistent-a', [], 0), tmpfs('/nonexistent-b', [], MS.MS_REMOUNT)]), RangeError);
  await assert.rejects(applyMountSequence([tmpfs('/nonexistent-a', [], 0), tmpfs('/nonexistent-a', [], 0)]), RangeError);
  await assert.rejects(applyMountSequence([tmpfs('/nonexistent-a', ['x'.repeat(4096)], 0)]), MountLimitError);
});
