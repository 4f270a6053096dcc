// index.ts: registers the devicemapper driver with the registry; nothing else. Imported for its
// side effect by lib/index.ts.
import { register } from '../../registry';
import { DEVICEMAPPER, hasLayers, init } from './driver';

register(DEVICEMAPPER, init, hasLayers);
