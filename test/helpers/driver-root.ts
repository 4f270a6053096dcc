// driver-root.ts: a throwaway driver root for tests that run a driver in several processes:
// a directory in a TmpDir, or a directory on a throwaway loop-device btrfs for btrfs. Both are
// removed (and the btrfs unmounted and detached) when `fn` is done, even when it failed.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { btrfsUnavailable, withBtrfs } from './btrfs-fs';
import { skipUnlessRoot } from './requires-root';
import { withTmpDir } from './tmp';

/** Why `driverName` cannot run here (a skip reason), or undefined. */
export function driverRootUnavailable(driverName: string): string | undefined {
  if (driverName === 'btrfs') return btrfsUnavailable();
  if (driverName === 'aufs') return 'needs the aufs kernel module (this kernel has none)';
  const root = skipUnlessRoot('drivers chown and mount');
  return root === false ? undefined : root;
}

/** Runs `fn` with a fresh root for `driverName`, and `tmpFile(name)` for scratch files beside it. */
export async function withDriverRoot(driverName: string, fn: (root: string, tmpFile: (name: string) => string) => Promise<void>, prefix: string): Promise<void> {
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
