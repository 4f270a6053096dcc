// index.ts: registers the vfs driver with the registry; nothing else. Imported for its side
// effect by lib/index.ts.
import { register } from '../../registry';
import { VFS, hasLayers, init } from './driver';

register(VFS, init, hasLayers);
