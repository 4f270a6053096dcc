// kill.vm.test.ts: crash safety of devicemapper (helpers/kill-trials.ts), in the VM where the
// kernel has device-mapper: 50 SIGKILLs at random points of create / applyDiff / get / remove,
// each followed by a fresh open that must find every layer whole, roll back any transaction
// the kill left open, and remove every leftover. The kill window is wider than on the host:
// under TCG a process needs about a second to open the driver.
import { test } from 'node:test';
import { driverRootUnavailable } from '../helpers/driver-root';
import { TRIALS, runKillTrials } from '../helpers/kill-trials';

test(`devicemapper: ${TRIALS} kills`, { timeout: 1_800_000, skip: driverRootUnavailable('devicemapper') ?? false },
  (t) => runKillTrials(t, 'devicemapper', { minMs: 800, spanMs: 3000 }));
