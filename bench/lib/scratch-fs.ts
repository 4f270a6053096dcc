// scratch-fs.ts: the filesystem a benchmark works on, mounted by the bench itself in a fresh
// temp dir so the shared machine's disk writeback does not swamp the ratios: tmpfs (default),
// or a sparse image file attached to a loop device and formatted ext4, xfs or btrfs. Owns set-up and
// teardown: teardown unmounts, detaches the loop device and removes the temp dir, runs even
// when set-up failed half way, and is also run on SIGINT/SIGTERM. Also: sync of the scratch
// filesystem (syncfs) and facts about it for the report.
import { execFileSync } from 'node:child_process';
import { closeSync as closeFd, openSync, readFileSync } from 'node:fs';
import { MS, mount, syncfs, umount2 } from '../../lib/native';
import { TmpDir } from '../../test/helpers/tmp';

export type ScratchKind = 'tmpfs' | 'ext4' | 'xfs' | 'btrfs';

export interface ScratchFs {
  readonly kind: ScratchKind;
  /** The mounted filesystem's root. */
  readonly mountpoint: string;
  /** The loop device (ext4/xfs) or ''. */
  readonly device: string;
  /** The mount's line of /proc/self/mountinfo (for the report). */
  mountInfo(): string;
  /** syncfs(2) of the scratch filesystem. */
  sync(): Promise<void>;
  teardown(): Promise<void>;
}

const signalTeardowns = new Set<() => Promise<void>>();
let signalsHooked = false;

function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: tearing down scratch filesystems\n`);
      void Promise.allSettled([...signalTeardowns].map((f) => f())).then(() => process.exit(130));
    });
  }
}

/** Mounts a scratch filesystem of `sizeMiB` (tmpfs: an upper bound; loop: the image size). */
export async function makeScratch(kind: ScratchKind, sizeMiB: number): Promise<ScratchFs> {
  const tmp = await TmpDir.create('bench-');
  const mountpoint = tmp.join('mnt');
  let device = '';
  let mounted = false;
  let done = false;
  const teardown = async (): Promise<void> => {
    if (done) return;
    done = true;
    signalTeardowns.delete(teardown);
    const errors: string[] = [];
    if (mounted) {
      try {
        await umount2(mountpoint, 0);
      } catch {
        await umount2(mountpoint, MS.MNT_DETACH).catch((e: unknown) => errors.push(`umount: ${String(e)}`));
      }
      mounted = false;
    }
    if (device !== '') {
      try {
        execFileSync('losetup', ['-d', device], { stdio: 'pipe' });
      } catch (e) {
        errors.push(`losetup -d ${device}: ${String(e)}`);
      }
      device = '';
    }
    await tmp.cleanup().catch((e: unknown) => errors.push(`rm ${tmp.path}: ${String(e)}`));
    if (errors.length > 0) throw new Error(`scratch teardown: ${errors.join('; ')}`);
  };
  hookSignals();
  signalTeardowns.add(teardown);
  try {
    await tmp.mkdir('mnt');
    if (kind === 'tmpfs') {
      await mount('tmpfs', mountpoint, 'tmpfs', 0, `size=${sizeMiB}m,mode=0755`);
      mounted = true;
    } else {
      const image = tmp.join('image');
      execFileSync('truncate', ['-s', `${sizeMiB}M`, image]);
      device = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8', stdio: 'pipe' }).trim();
      if (kind === 'ext4') execFileSync('mkfs.ext4', ['-q', '-F', device], { stdio: 'pipe' });
      else if (kind === 'xfs') execFileSync('mkfs.xfs', ['-q', '-f', device], { stdio: 'pipe' });
      else execFileSync('mkfs.btrfs', ['-q', '-f', device], { stdio: 'pipe' });
      await mount(device, mountpoint, kind, 0, null);
      mounted = true;
    }
  } catch (err) {
    await teardown().catch(() => undefined);
    throw err;
  }
  return {
    kind, mountpoint,
    get device(): string { return device; },
    mountInfo(): string {
      const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === mountpoint);
      return line === undefined ? '' : line.split(' ').slice(4).join(' ');
    },
    async sync(): Promise<void> {
      const fd = openSync(mountpoint, 'r');
      try { await syncfs(fd); } finally { closeFd(fd); }
    },
    teardown,
  };
}

/** Runs `fn` on a fresh scratch filesystem and always tears it down. */
export async function withScratch<T>(kind: ScratchKind, sizeMiB: number, fn: (fs: ScratchFs) => Promise<T>): Promise<T> {
  const fs = await makeScratch(kind, sizeMiB);
  try {
    return await fn(fs);
  } finally {
    await fs.teardown();
  }
}
