// tar.ts: layer tarballs made by hand for tests. Two ways: GNU tar over a staged directory
// (tarFromDir, an independent oracle of what a tar of a tree looks like), or tar-stream to write
// exact entries the way a hand-crafted layer would (whiteouts `.wh.NAME`, the opaque marker
// `.wh..wh..opq`, devices, hardlinks, pax xattrs via 'SCHILY.xattr.<name>').
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';

/** A tar-stream header (name required) with pax records, e.g. {'SCHILY.xattr.user.foo': 'v'}. */
export type TarHeader = Partial<Omit<tarStream.Header, 'pax'>> & { name: string; pax?: Record<string, string> };

export interface TarEntry {
  header: TarHeader;
  content?: string | Buffer;
}

const epoch = new Date('2020-01-02T03:04:05Z');

/** A regular file entry (mode 0644, 0:0 unless given). */
export function file(name: string, content: string | Buffer, extra: Partial<TarHeader> = {}): TarEntry {
  return { header: { name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: epoch, ...extra }, content };
}

/** A directory entry (mode 0755 unless given). */
export function dir(name: string, extra: Partial<TarHeader> = {}): TarEntry {
  return { header: { name: name.endsWith('/') ? name : `${name}/`, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: epoch, ...extra } };
}

/** A symlink entry. */
export function symlink(name: string, target: string, extra: Partial<TarHeader> = {}): TarEntry {
  return { header: { name, type: 'symlink', linkname: target, mode: 0o777, uid: 0, gid: 0, mtime: epoch, ...extra } };
}

/** A hardlink entry to an earlier entry `target`. */
export function hardlink(name: string, target: string): TarEntry {
  return { header: { name, type: 'link', linkname: target, mode: 0o644, uid: 0, gid: 0, mtime: epoch } };
}

/** `dir/.wh.base`: deletes `dir/base` from the layers below. */
export function whiteout(pathToDelete: string): TarEntry {
  const i = pathToDelete.lastIndexOf('/');
  const name = i < 0 ? `.wh.${pathToDelete}` : `${pathToDelete.slice(0, i)}/.wh.${pathToDelete.slice(i + 1)}`;
  return file(name, '');
}

/** `dir/.wh..wh..opq`: makes `dir` opaque (hides what the layers below had in it). */
export function opaque(dirName: string): TarEntry {
  return file(`${dirName.replace(/\/+$/, '')}/.wh..wh..opq`, '');
}

/** Writes the entries, in order, into a tar held in memory. */
export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(Buffer.from(c as Uint8Array)));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const body = e.content === undefined ? undefined : Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content);
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (body !== undefined) pack.entry({ ...e.header, size: body.length }, body, cb);
      else pack.entry(e.header, cb);
    });
  }
  pack.finalize();
  return done;
}

/** makeTar as a Readable, ready for applyDiff. */
export async function tarStreamOf(entries: TarEntry[]): Promise<Readable> {
  return Readable.from([await makeTar(entries)]);
}

/** GNU tar of `dir` ('./...' names, numeric owners, xattrs) as a Buffer. Throws if tar fails. */
export function tarFromDir(dir: string, extraArgs: string[] = []): Buffer {
  const r = spawnSync('tar', ['-C', dir, '--numeric-owner', '--xattrs', '--xattrs-include=*', '-cf', '-', ...extraArgs, '.'],
    { maxBuffer: 1 << 30 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`tar exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout;
}

/** Collects a stream (e.g. driver.diff's tar) into one Buffer. */
export async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks);
}

/** The entry names of a tar held in memory, in order (for asserting what a diff carries). */
export async function tarNames(buf: Buffer): Promise<string[]> {
  const names: string[] = [];
  const ex = tarStream.extract();
  const done = (async () => {
    for await (const entry of ex) {
      names.push(entry.header.name);
      entry.resume();
    }
  })();
  Readable.from([buf]).pipe(ex);
  await done;
  return names;
}
