// driver-root.ts: a throwaway driver root for tests that run a driver in several processes:
// a directory in a TmpDir; a directory on a throwaway loop-device btrfs for btrfs; a
// directory in VM_SCRATCH (a real disk) for devicemapper, which runs only in the VM. All are
// removed (the btrfs unmounted and detached, the devicemapper home's dm devices removed) when
// `fn` is done, even when it failed.
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { dm, splitDev } from '../../lib/devmapper';
import { DeviceNames } from '../../lib/drivers/devicemapper/layout';
import { MS, umount2 } from '../../lib/native';
import { btrfsUnavailable, withBtrfs } from './btrfs-fs';
import { skipUnlessRoot } from './requires-root';
import { mountsUnder, withTmpDir } from './tmp';

/** Why `driverName` cannot run here (a skip reason), or undefined. */
export function driverRootUnavailable(driverName: string): string | undefined {
  if (driverName === 'btrfs') return btrfsUnavailable();
  if (driverName === 'aufs') return 'needs the aufs kernel module (this kernel has none)';
  if (driverName === 'devicemapper') {
    if (process.env['GRAPHDRIVER_VM'] !== '1' || process.env['VM_SCRATCH'] === undefined) return 'needs device-mapper: runs in the VM suite (test/vm/)';
    if (!existsSync('/dev/mapper/control')) return 'needs device-mapper (/dev/mapper/control)';
  }
  const root = skipUnlessRoot('drivers chown and mount');
  return root === false ? undefined : root;
}

/** Removes every dm device named with the prefix of the devicemapper home under `root` (thin devices first). */
export async function removeDmDevicesOf(root: string): Promise<void> {
  let names: DeviceNames;
  try {
    const st = await fsp.stat(path.join(root, 'devicemapper'), { bigint: true });
    names = new DeviceNames(splitDev(st.dev), st.ino);
  } catch {
    return; // no home: nothing was made
  }
  const ours = (await dm.listDevices()).map((d) => d.name).filter((n) => n.startsWith(`${names.prefix}-`));
  for (const n of ours.filter((x) => x !== names.pool)) await dm.removeDevice(n).catch(() => undefined);
  if (ours.includes(names.pool)) await dm.removeDevice(names.pool).catch(() => undefined);
}

/** Runs `fn` with a fresh root for `driverName`, and `tmpFile(name)` for scratch files beside it. */
export async function withDriverRoot(driverName: string, fn: (root: string, tmpFile: (name: string) => string) => Promise<void>, prefix: string): Promise<void> {
  if (driverName === 'devicemapper') {
    const dir = await fsp.mkdtemp(path.join(process.env['VM_SCRATCH'] ?? '/nonexistent', `graphdriver-test-${prefix}`));
    try {
      await fsp.mkdir(path.join(dir, 'root'));
      await fn(path.join(dir, 'root'), (n) => path.join(dir, n));
    } finally {
      for (const mp of mountsUnder(dir).reverse()) await umount2(mp, MS.MNT_DETACH).catch(() => undefined);
      await removeDmDevicesOf(path.join(dir, 'root'));
      await fsp.rm(dir, { recursive: true, force: true });
    }
    return;
  }
  if (driverName !== 'btrfs') {
    await withTmpDir(async (tmp) => fn(await tmp.mkdir('root'), (n) => tmp.join(n)), prefix);
    return;
  }
  await withBtrfs(async (fs) => {
    const root = path.join(fs.mountpoint, 'root');
    await fsp.mkdir(root);
    await fn(root, (n) => path.join(fs.mountpoint, n));
  });
}
