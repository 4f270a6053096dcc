// overlay.test.ts: the overlay driver (the engine's first overlay layout: root/ image layers as
// hardlink farms, one-lower overlay mounts for container layers) against the conformance
// suite, on the machine's /tmp (ext4).
import { runDriverSuite } from '../conformance/suite';

runDriverSuite('overlay');
