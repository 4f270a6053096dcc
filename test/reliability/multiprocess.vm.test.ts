// multiprocess.vm.test.ts: processes sharing one devicemapper home never corrupt each other
// (helpers/multiprocess-cases.ts), in the VM where the kernel has device-mapper. Fewer rounds
// than on the host: under TCG every get mounts and every process opens the pool.
import { multiprocessTests } from '../helpers/multiprocess-cases';

multiprocessTests('devicemapper', { rounds: 40, reopens: 15 });
