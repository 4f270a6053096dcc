// devicemapper.vm.test.ts: the CLI end to end (walkthrough.ts) on devicemapper, in the VM where
// the kernel has device-mapper, with the driver's default pool (100G data and 2G metadata
// sparse files, a 10G base device) in VM_SCRATCH. Every command is its own process: `mount`
// leaves the layer mounted and the pool up, a later `umount` takes the mount over and
// releases it, and the last command's cleanup removes the pool.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { driverRootUnavailable, removeDmDevicesOf } from '../helpers/driver-root';
import { walkThrough } from './walkthrough';

test('CLI on devicemapper (in the VM)', { skip: driverRootUnavailable('devicemapper') ?? false, timeout: 600_000 }, async (t) => {
  const base = await fsp.mkdtemp(path.join(process.env['VM_SCRATCH'] ?? '/nonexistent', 'graphdriver-test-cli-dm-'));
  try {
    await walkThrough(t, 'devicemapper', base);
  } finally {
    await removeDmDevicesOf(path.join(base, 'root'));
    await fsp.rm(base, { recursive: true, force: true });
  }
});
