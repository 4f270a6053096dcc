// requires-root.ts: skip a test, with its reason, when the process is not root. Tests that
// mount, chown or mknod call this first; they never pass silently without doing their work.
import type { TestContext } from 'node:test';

/** True when running as uid 0. */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Returns true when root; otherwise marks `t` skipped with `needs root: <why>` and returns false.
 * Usage: `if (!requireRoot(t, 'mounts tmpfs')) return;`
 */
export function requireRoot(t: TestContext, why: string): boolean {
  if (isRoot()) return true;
  t.skip(`needs root: ${why}`);
  return false;
}

/** The `skip` option for test()/describe(): false when root, else the reason. */
export function skipUnlessRoot(why: string): string | false {
  return isRoot() ? false : `needs root: ${why}`;
}
