// index.ts: registers the overlay2 driver with the registry; nothing else. Imported for its
// side effect by lib/index.ts.
import { register } from '../../registry';
import { OVERLAY2, hasLayers, init } from './driver';

register(OVERLAY2, init, hasLayers);
