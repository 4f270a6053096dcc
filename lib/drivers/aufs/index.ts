// index.ts: registers the aufs driver with the registry; nothing else. Imported for its side
// effect by lib/index.ts.
import { register } from '../../registry';
import { AUFS, hasLayers, init } from './driver';

register(AUFS, init, hasLayers);
