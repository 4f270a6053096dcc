// btrfs-fs.ts: a real, throwaway btrfs for tests and benches: a sparse image file in a TmpDir,
// attached with `losetup --find --show`, formatted with `mkfs.btrfs -q`, mounted with
// native.mount inside the same TmpDir. Tests may spawn tools; the library never does. The
// teardown (unmount, losetup -d, remove the image) runs even when set-up or the test failed,
// and a half-made fixture undoes what it did before rethrowing.
import { execFileSync } from 'node:child_process';
import { accessSync, constants as fsc, promises as fsp } from 'node:fs';
import { MS, mount, umount2 } from '../../lib/native';
import { TmpDir, makeSparseFile } from './tmp';

const SEARCH_PATH = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/** The absolute path of `tool` on the usual system paths, or undefined. */
function findTool(tool: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d !== ''), ...SEARCH_PATH];
  for (const d of dirs) {
    try {
      accessSync(`${d}/${tool}`, fsc.X_OK);
      return `${d}/${tool}`;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** Why a btrfs cannot be made here (a skip reason), or undefined when it can. */
export function btrfsUnavailable(): string | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root: loop devices and mount(2)';
  if (findTool('mkfs.btrfs') === undefined) return 'mkfs.btrfs not found (install btrfs-progs)';
  if (findTool('losetup') === undefined) return 'losetup not found (install util-linux)';
  return undefined;
}

/** A mounted loop-device btrfs. `mountpoint` is the btrfs root; remove it with teardown(). */
export interface BtrfsFs {
  readonly tmp: TmpDir;
  readonly mountpoint: string;
  readonly device: string;
  teardown(): Promise<void>;
}

/** Makes a `sizeMiB` btrfs (default 1 GiB: smaller ones get mixed block groups) in a fresh TmpDir. */
export async function makeBtrfs(sizeMiB = 1024): Promise<BtrfsFs> {
  const why = btrfsUnavailable();
  if (why !== undefined) throw new Error(`cannot make a btrfs: ${why}`);
  const tmp = await TmpDir.create('btrfs-');
  let device: string | undefined;
  let mounted = false;
  const mountpoint = tmp.join('mnt');
  const image = tmp.join('image');
  const teardown = async (): Promise<void> => {
    const errors: string[] = [];
    if (mounted) {
      try {
        await umount2(mountpoint, 0);
      } catch {
        // Busy (an open fd somewhere): detach lazily; losetup -d then autoclears the device.
        await umount2(mountpoint, MS.MNT_DETACH).catch((e: unknown) => errors.push(`umount: ${String(e)}`));
      }
      mounted = false;
    }
    if (device !== undefined) {
      try {
        execFileSync(findTool('losetup') ?? 'losetup', ['-d', device], { stdio: 'pipe' });
      } catch (e) {
        errors.push(`losetup -d ${device}: ${String(e)}`);
      }
      device = undefined;
    }
    await tmp.cleanup().catch((e: unknown) => errors.push(`rm: ${String(e)}`));
    if (errors.length > 0) throw new Error(`btrfs fixture teardown: ${errors.join('; ')}`);
  };
  try {
    await makeSparseFile(image, sizeMiB * 1024 * 1024);
    device = execFileSync(findTool('losetup')!, ['--find', '--show', image], { encoding: 'utf8', stdio: 'pipe' }).trim();
    execFileSync(findTool('mkfs.btrfs')!, ['-q', '-f', device], { stdio: 'pipe' });
    await fsp.mkdir(mountpoint, { mode: 0o755 });
    await mount(device, mountpoint, 'btrfs', 0, null);
    mounted = true;
  } catch (err) {
    await teardown().catch(() => undefined);
    throw err;
  }
  return {
    tmp, mountpoint, teardown,
    get device(): string { return device ?? ''; },
  };
}

/** Runs `fn` on a fresh btrfs and always tears it down, even when `fn` throws. */
export async function withBtrfs<T>(fn: (fs: BtrfsFs) => Promise<T>, sizeMiB?: number): Promise<T> {
  const fs = await makeBtrfs(sizeMiB);
  try {
    return await fn(fs);
  } finally {
    await fs.teardown();
  }
}
