// index.ts: registers the overlay driver with the registry; nothing else. Imported for its
// side effect by lib/index.ts.
import { register } from '../../registry';
import { OVERLAY, hasLayers, init } from './driver';

register(OVERLAY, init, hasLayers);
