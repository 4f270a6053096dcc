// kill.test.ts: crash safety (helpers/kill-trials.ts): 50 SIGKILLs at random points per
// driver this machine runs; devicemapper's trials run in the VM (kill.vm.test.ts).
import { describe, test } from 'node:test';
import { skipUnlessRoot } from '../helpers/requires-root';
import { btrfsUnavailable } from '../helpers/btrfs-fs';
import { TRIALS, runKillTrials } from '../helpers/kill-trials';

describe('SIGKILL at random points leaves every store whole', { skip: skipUnlessRoot('drivers chown and mount') }, () => {
  for (const driverName of ['vfs', 'overlay2', 'overlay', 'btrfs']) {
    const unavailable = driverName === 'btrfs' ? btrfsUnavailable() : undefined;
    test(`${driverName}: ${TRIALS} kills`, { timeout: 600_000, skip: unavailable ?? false }, (t) => runKillTrials(t, driverName));
  }
});
