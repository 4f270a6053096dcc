// multiprocess.test.ts: processes sharing one driver home never corrupt each other
// (helpers/multiprocess-cases.ts), on every driver; devicemapper's run in the VM
// (multiprocess.vm.test.ts), aufs's are skipped with the reason (no aufs module here).
import { multiprocessTests } from '../helpers/multiprocess-cases';

for (const driverName of ['vfs', 'overlay2', 'overlay', 'btrfs', 'aufs']) multiprocessTests(driverName);
