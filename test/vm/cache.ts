// cache.ts: where the harness keeps what it downloads and builds, and how it publishes an entry.
// Entries are built in a private directory under <cache>/tmp and renamed into place whole, so a
// reader sees a complete entry or none, and two first uses racing each other both build and
// one rename wins: no lock to leave behind when a run is killed half way.
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** `$GRAPHDRIVER_VM_CACHE`, else `${XDG_CACHE_HOME:-~/.cache}/graphdriver-vm`. */
export function cacheRoot(): string {
  const explicit = process.env['GRAPHDRIVER_VM_CACHE'];
  if (explicit !== undefined && explicit !== '') return path.resolve(explicit);
  const xdg = process.env['XDG_CACHE_HOME'];
  return path.join(xdg !== undefined && xdg !== '' ? path.resolve(xdg) : path.join(os.homedir(), '.cache'), 'graphdriver-vm');
}

/** Build directories older than this were left by a killed run; nobody is still using them. */
const STALE_BUILD_MS = 6 * 3600 * 1000;

/** A fresh private build directory under <cache>/tmp; stale ones of killed runs are removed. */
export function newBuildDir(root: string): string {
  const tmp = path.join(root, 'tmp');
  mkdirSync(tmp, { recursive: true });
  for (const name of readdirSync(tmp)) {
    const p = path.join(tmp, name);
    try {
      if (Date.now() - statSync(p).mtimeMs > STALE_BUILD_MS) rmSync(p, { recursive: true, force: true });
    } catch {
      // Another run removed it first.
    }
  }
  return mkdtempSync(path.join(tmp, `build-${process.pid}-`));
}

/**
 * Moves the finished `built` (file or directory) to `final`. If another run published `final`
 * first, ours is dropped and theirs kept (same key, same content). Returns `final`.
 */
export function publish(built: string, final: string): string {
  mkdirSync(path.dirname(final), { recursive: true });
  try {
    // For directories rename(2) fails with ENOTEMPTY/EEXIST when the target exists; for files
    // it replaces the target atomically, which is equally fine.
    renameSync(built, final);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    rmSync(built, { recursive: true, force: true });
  }
  return final;
}
