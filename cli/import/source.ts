// source.ts: where `import` reads an image from: a directory (an OCI image layout, or an
// unpacked `docker save`) or a tar file of either (gzip-compressed tars are first inflated to a
// temp file under <root>/cli/, removed on close). Names from manifests are cleaned so they
// cannot climb out of the directory or archive. Reads only; the caller closes the source.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { CliError } from '../errors';
import { CLI_DIR } from '../metadata';
import { TarIndex, cleanMemberName } from './tar-index';

export interface Blob {
  stream: NodeJS.ReadableStream;
  size: number;
}

export interface BlobSource {
  /** For messages: the path given. */
  readonly where: string;
  has(name: string): Promise<boolean>;
  /** A small JSON member, parsed. */
  readJson(name: string): Promise<unknown>;
  open(name: string): Promise<Blob>;
  close(): Promise<void>;
}

const MAX_JSON = 16 << 20;

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

class DirSource implements BlobSource {
  constructor(readonly where: string) {}

  private file(name: string): string {
    return path.join(this.where, cleanMemberName(name));
  }

  async has(name: string): Promise<boolean> {
    return (await fsp.stat(this.file(name)).catch(() => undefined))?.isFile() === true;
  }

  async readJson(name: string): Promise<unknown> {
    const f = this.file(name);
    const st = await fsp.stat(f).catch(() => undefined);
    if (st === undefined || !st.isFile()) throw new CliError(`${this.where}: ${name} is missing`);
    if (st.size > MAX_JSON) throw new CliError(`${this.where}: ${name} is too large for a manifest (${st.size} bytes)`);
    return parseJson(await fsp.readFile(f, 'utf8'), `${this.where}: ${name}`);
  }

  async open(name: string): Promise<Blob> {
    const f = this.file(name);
    const st = await fsp.stat(f).catch(() => undefined);
    if (st === undefined || !st.isFile()) throw new CliError(`${this.where}: layer ${name} is missing`);
    return { stream: createReadStream(f), size: st.size };
  }

  async close(): Promise<void> {}
}

class TarSource implements BlobSource {
  constructor(readonly where: string, private readonly index: TarIndex, private readonly temp?: string) {}

  async has(name: string): Promise<boolean> {
    return this.index.lookup(name) !== undefined;
  }

  async readJson(name: string): Promise<unknown> {
    const m = this.index.lookup(name);
    if (m === undefined) throw new CliError(`${this.where}: ${name} is missing`);
    if (m.size > MAX_JSON) throw new CliError(`${this.where}: ${name} is too large for a manifest (${m.size} bytes)`);
    const fh = await fsp.open(this.index.file, 'r');
    try {
      const buf = Buffer.alloc(m.size);
      await fh.read(buf, 0, m.size, m.offset);
      return parseJson(buf.toString('utf8'), `${this.where}: ${name}`);
    } finally {
      await fh.close();
    }
  }

  async open(name: string): Promise<Blob> {
    const m = this.index.lookup(name);
    if (m === undefined) throw new CliError(`${this.where}: layer ${name} is missing`);
    // createReadStream's end is inclusive, so an empty member gets an empty stream instead.
    const stream = m.size === 0 ? Readable.from([]) : createReadStream(this.index.file, { start: m.offset, end: m.offset + m.size - 1 });
    return { stream, size: m.size };
  }

  async close(): Promise<void> {
    if (this.temp !== undefined) await fsp.rm(this.temp, { force: true });
  }
}

async function isGzip(file: string): Promise<boolean> {
  const fh = await fsp.open(file, 'r');
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** Opens `where` (a directory or a tar / tar.gz file) as a BlobSource. */
export async function openSource(where: string, root: string): Promise<BlobSource> {
  const st = await fsp.stat(where);
  if (st.isDirectory()) return new DirSource(path.resolve(where));
  if (!st.isFile()) throw new CliError(`${where} is neither a directory nor a file`);
  if (!(await isGzip(where))) return new TarSource(path.resolve(where), await TarIndex.read(where));
  const dir = path.join(root, CLI_DIR);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = path.join(dir, `import-${randomBytes(6).toString('hex')}.tar`);
  try {
    await pipeline(createReadStream(where), createGunzip(), createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
    return new TarSource(path.resolve(where), await TarIndex.read(temp), temp);
  } catch (err) {
    await fsp.rm(temp, { force: true });
    throw err;
  }
}
