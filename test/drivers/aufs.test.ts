// aufs.test.ts: the aufs driver on this machine, whose kernel has no aufs (never mainline). init
// must say NotSupportedError and selection must move on; then the conformance suite runs twice:
// through getDriver (every case skipped with init's reason here; a kernel with aufs runs them
// all) and through the test seam openAufsForTest, whose mounter refuses mounts, so every case
// that does not need the union mount of a layer with a parent runs for real, and the six that
// do are skipped with that reason. Unit tests of the seam-driven behaviour: aufs-unit.test.ts;
// of the mount-data builder: aufs-mounts.test.ts.
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { NotSupportedError, getDriver, newDriver } from '../../lib/index';
import { openAufsForTest } from '../../lib/drivers/aufs/driver';
import { listsAufs } from '../../lib/drivers/aufs/check';
import { runDriverSuite } from '../conformance/suite';
import { NEEDS_AUFS, refusingMounter } from '../helpers/aufs-seam';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

const kernelHasAufs = listsAufs(readFileSync('/proc/filesystems', 'utf8'));
const noAufs = { skip: kernelHasAufs ? 'this kernel has aufs' : false };

test('init on a kernel without aufs: NotSupportedError, and home is not made', noAufs, async () => {
  await withTmpDir(async (tmp) => {
    await assert.rejects(getDriver('aufs', tmp.path, []), (e: unknown) =>
      e instanceof NotSupportedError && e.code === 'ERR_GRAPHDRIVER_NOT_SUPPORTED' && /\/proc\/filesystems/.test(e.message));
    assert.throws(() => readFileSync(path.join(tmp.path, 'aufs')), { code: 'ENOENT' });
  }, 'aufs-');
});

test("newDriver with priority ['aufs', 'vfs'] moves on to vfs", { skip: noAufs.skip || skipUnlessRoot('vfs layers are owned 0:0') }, async () => {
  await withTmpDir(async (tmp) => {
    const d = await newDriver(tmp.path, [], { priority: ['aufs', 'vfs'] });
    try {
      assert.equal(d.name, 'vfs');
    } finally {
      await d.cleanup();
    }
  }, 'aufs-');
});

/** Conformance cases that get() a layer with a parent: they need the aufs union mount. */
const NEEDS_UNION_MOUNT = new Set(['snapshot', 'deep-chain-50', 'diff-apply', 'changes', 'whiteout-opaque', 'applydiff-atomic', 'concurrency']);

runDriverSuite('aufs', [
  { label: 'init', options: [] },
  {
    label: 'test seam, no union mount',
    options: [],
    driverFactory: (root) => openAufsForTest(path.join(root, 'aufs'), { mounter: refusingMounter }),
    skipCase: (c) => (NEEDS_UNION_MOUNT.has(c.name) ? NEEDS_AUFS : undefined),
  },
]);
