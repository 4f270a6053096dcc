// vfs.test.ts: the vfs driver (plain directories, full copies) against the conformance suite.
import { runDriverSuite } from '../conformance/suite';

runDriverSuite('vfs');
