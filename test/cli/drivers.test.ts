// drivers.test.ts: the CLI end to end (walkthrough.ts) on every registered driver that can run
// here, not only vfs: btrfs on a throwaway loop-device btrfs (skipped without
// mkfs.btrfs/losetup), overlay2 and any other driver on a temp root (skipped, with the
// driver's reason, when its init says it is not supported here; devicemapper's runs in the VM,
// cli/devicemapper.vm.test.ts).
import { test } from 'node:test';
import { registeredDrivers } from '../../lib/index';
import { btrfsUnavailable, withBtrfs } from '../helpers/btrfs-fs';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';
import { walkThrough } from './walkthrough';

test('CLI on btrfs (a loop-device btrfs)', { skip: btrfsUnavailable() ?? false }, async (t) => {
  await withBtrfs(async (fs) => walkThrough(t, 'btrfs', fs.mountpoint));
});

for (const driver of registeredDrivers().filter((d) => d !== 'btrfs' && d !== 'vfs')) {
  test(`CLI on ${driver}`, { skip: skipUnlessRoot(`${driver} needs root`) }, async (t) => {
    await withTmpDir(async (tmp) => walkThrough(t, driver, tmp.path));
  });
}

test('CLI on vfs', { skip: skipUnlessRoot('layers are owned 0:0') }, async (t) => {
  await withTmpDir(async (tmp) => walkThrough(t, 'vfs', tmp.path));
});
