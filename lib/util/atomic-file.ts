// atomic-file.ts: a small file replaced atomically and durably — written to a temp name in the
// same directory, fsync'd, renamed over the old one, then the directory fsync'd — so after a
// crash it holds the old content or the new, never a mix or nothing. For metadata files.
import { randomBytes } from 'node:crypto';
import { constants as fsc, promises as fsp } from 'node:fs';
import * as path from 'node:path';

/** Temp names start with this; a directory's leftovers of a crash can be recognised by it. */
export const ATOMIC_TMP_PREFIX = '.tmp-';

/** fsync of a directory: makes its entries' renames and unlinks durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replaces `file` with `data` atomically (a new file gets `mode`). */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, ATOMIC_TMP_PREFIX + randomBytes(8).toString('hex'));
  try {
    const fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

/** Removes `file` durably; a missing file is fine. */
export async function removeFileDurably(file: string): Promise<void> {
  await fsp.rm(file, { force: true });
  await syncDir(path.dirname(file));
}
