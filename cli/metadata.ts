// metadata.ts: the CLI's own record of the layers it made, because the library has no "list
// layers" call (and must not grow one for the CLI). One JSON file per driver under
// <root>/cli/<driver>.json:
//   { "version": 1, "driver": "vfs", "layers": [ { "id", "parent", "created", "source"? } ] }
// in creation order. create/rm/apply/import keep it; `ls` reads it and asks the driver which
// of the recorded layers still exist. Layers made by other tools on the same root are not in
// it (and not listed); a layer removed behind the CLI's back is listed as missing.
//
// Every update is read-modify-write under <root>/cli/<driver>.lock (O_EXCL, holding the pid;
// a lock whose pid is dead is broken) and published atomically: write a temp file, fsync it,
// rename it over the old one, fsync the directory. A crash leaves the old or the new file,
// never a torn one. Owns <root>/cli/ only; never touches the driver's home.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError } from './errors';

/** The CLI's directory under the storage root. */
export const CLI_DIR = 'cli';
const VERSION = 1;
const LOCK_WAIT_MS = 30_000;

export interface LayerRecord {
  id: string;
  /** '' for none. */
  parent: string;
  /** ISO 8601 time the CLI created (or first recorded) the layer. */
  created: string;
  /** Where its contents came from: a file applied, or an image imported. */
  source?: string;
}

interface FileShape {
  version: number;
  driver: string;
  layers: LayerRecord[];
}

function hasCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

function isRecord(v: unknown): v is LayerRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return typeof r.id === 'string' && typeof r.parent === 'string' && typeof r.created === 'string'
    && (r.source === undefined || typeof r.source === 'string');
}

export class LayerStore {
  readonly dir: string;
  readonly file: string;
  private readonly lockFile: string;

  constructor(root: string, readonly driver: string) {
    this.dir = path.join(root, CLI_DIR);
    this.file = path.join(this.dir, `${driver}.json`);
    this.lockFile = path.join(this.dir, `${driver}.lock`);
  }

  /** The recorded layers, in creation order (empty when the file does not exist yet). */
  async list(): Promise<LayerRecord[]> {
    let text: string;
    try {
      text = await fsp.readFile(this.file, 'utf8');
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return [];
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new CliError(`${this.file} is not valid JSON (${(err as Error).message}); move it away to start a new record`);
    }
    const shape = parsed as Partial<FileShape>;
    if (typeof shape !== 'object' || shape === null || shape.version !== VERSION || !Array.isArray(shape.layers) || !shape.layers.every(isRecord)) {
      throw new CliError(`${this.file} is not a graphdriver CLI layer record (version ${VERSION})`);
    }
    return shape.layers;
  }

  /** The record of `id`, if any. */
  async find(id: string): Promise<LayerRecord | undefined> {
    return (await this.list()).find((r) => r.id === id);
  }

  /** Records `rec` (replacing an earlier record of the same id, keeping its place). */
  async put(rec: LayerRecord): Promise<void> {
    await this.update((layers) => {
      const i = layers.findIndex((r) => r.id === rec.id);
      if (i >= 0) layers[i] = rec;
      else layers.push(rec);
      return layers;
    });
  }

  /** Forgets `id`; true when it was recorded. */
  async delete(id: string): Promise<boolean> {
    let found = false;
    await this.update((layers) => {
      found = layers.some((r) => r.id === id);
      return layers.filter((r) => r.id !== id);
    });
    return found;
  }

  /** Read-modify-write under the lock, published atomically. */
  private async update(fn: (layers: LayerRecord[]) => LayerRecord[]): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.withLock(async () => {
      const layers = fn(await this.list());
      const body: FileShape = { version: VERSION, driver: this.driver, layers };
      await writeAtomic(this.file, `${JSON.stringify(body, null, 2)}\n`);
    });
  }

  private async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const fh = await fsp.open(this.lockFile, 'wx', 0o600);
        try {
          await fh.writeFile(`${process.pid}\n`);
        } finally {
          await fh.close();
        }
        break;
      } catch (err) {
        if (!hasCode(err, 'EEXIST')) throw err;
        if (await this.lockIsStale()) {
          await fsp.rm(this.lockFile, { force: true });
          continue;
        }
        if (Date.now() > deadline) throw new CliError(`timed out waiting for ${this.lockFile} (another graphdriver process is updating the layer record)`);
        await sleep(25);
      }
    }
    try {
      return await fn();
    } finally {
      await fsp.rm(this.lockFile, { force: true });
    }
  }

  /** A lock file whose pid no longer runs (or that is empty after a crash mid-write). */
  private async lockIsStale(): Promise<boolean> {
    let text: string;
    try {
      text = await fsp.readFile(this.lockFile, 'utf8');
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return false; // released meanwhile: just retry
      throw err;
    }
    const pid = Number.parseInt(text, 10);
    if (!Number.isInteger(pid) || pid <= 0) {
      // Written between open and write by a live process, or torn by a crash: judge by age.
      const st = await fsp.stat(this.lockFile).catch(() => undefined);
      return st !== undefined && Date.now() - st.mtimeMs > 5_000;
    }
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return hasCode(err, 'ESRCH');
    }
  }
}

/** Writes `file` atomically: temp file beside it, fsync, rename over, fsync the directory. */
export async function writeAtomic(file: string, data: string): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${randomBytes(6).toString('hex')}`);
  const fh = await fsp.open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  const dh = await fsp.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
