// remove.ts: removing a name below a directory the driver owns, fd-relative and never
// following a symlink (native removeAllAt); a missing name is not an error.
import * as native from '../native';
import { C } from '../native';

/** Removes dir/<name> and all below it without following symlinks; missing is fine. */
export async function removeBelow(dir: string, name: string): Promise<void> {
  const fd = await native.open(dir, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW, 0);
  try {
    await native.removeAllAt(fd, name);
  } finally {
    native.closeSync(fd);
  }
}
