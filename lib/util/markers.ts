// markers.ts: durable per-layer markers — one empty file per id in one directory — for
// states that must survive a crash (e.g. "incomplete: a diff is being applied"). Setting and
// clearing are fsync'd (file and directory) before they resolve. Ids must be validated.
import { constants as fsc, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { hasCode } from '../errors';

export class MarkerSet {
  constructor(readonly dir: string) {}

  /** Makes the marker directory (mode 0700). */
  async init(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  async has(id: string): Promise<boolean> {
    try {
      await fsp.lstat(path.join(this.dir, id));
      return true;
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return false;
      throw err;
    }
  }

  async set(id: string): Promise<void> {
    const fh = await fsp.open(path.join(this.dir, id), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.syncDir();
  }

  async clear(id: string): Promise<void> {
    try {
      await fsp.unlink(path.join(this.dir, id));
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return;
      throw err;
    }
    await this.syncDir();
  }

  async list(): Promise<string[]> {
    try {
      return await fsp.readdir(this.dir);
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return [];
      throw err;
    }
  }

  private async syncDir(): Promise<void> {
    const fh = await fsp.open(this.dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}
