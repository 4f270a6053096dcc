// btrfs.test.ts: the btrfs driver (subvolumes and snapshots by ioctl) against the conformance
// suite on a real btrfs: one loop-device filesystem per variant (mkfs per case is too slow),
// a fresh directory on it per case. The `quota` variant sets btrfs.min_space, which turns
// quota on at init, so every case also runs with qgroups (and their removal) in play.
import { promises as fsp } from 'node:fs';
import { type BtrfsFs, btrfsUnavailable, makeBtrfs } from '../helpers/btrfs-fs';
import { type Variant, runDriverSuite } from '../conformance/suite';

const skip = btrfsUnavailable() ?? false;

/** A variant whose roots are fresh directories on its own btrfs. */
function onBtrfs(label: string, options: string[]): Variant {
  let fs: BtrfsFs | undefined;
  let n = 0;
  return {
    label, options, skip,
    before: async () => { fs = await makeBtrfs(); },
    after: async () => { await fs?.teardown(); fs = undefined; },
    makeRoot: async () => {
      if (fs === undefined) throw new Error('the btrfs fixture was not made (see the before hook)');
      const root = `${fs.mountpoint}/case-${++n}`;
      await fsp.mkdir(root, { mode: 0o700 });
      // rm -r deletes subvolumes too: rmdir(2) of an emptied subvolume root deletes it (Linux 4.18+, as root).
      return { root, teardown: () => fsp.rm(root, { recursive: true, force: true }) };
    },
  };
}

runDriverSuite('btrfs', [onBtrfs('default', []), onBtrfs('quota', ['btrfs.min_space=1M'])]);
