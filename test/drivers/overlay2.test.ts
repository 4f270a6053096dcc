// overlay2.test.ts: the overlay2 driver (overlayfs mounts through the new mount API, native
// diffs from diff/) against the conformance suite, on the machine's /tmp (ext4).
import { runDriverSuite } from '../conformance/suite';

runDriverSuite('overlay2');
