// index.ts: registers the btrfs driver with the registry; nothing else. Imported for its side
// effect by lib/index.ts.
import { register } from '../../registry';
import { BTRFS, hasLayers, init } from './driver';

register(BTRFS, init, hasLayers);
