// tar-scan.ts: decides, before a layer tar is applied onto a hardlink farm (farm.ts), whether
// applying it can touch an inode the farm shares with the parent layer. The input is spooled
// to a file, read once here, then applied from the spool.
//
// Why this is needed: archive/apply.ts (and native/apply.cc) never write into an existing file
// (a file entry over an existing name unlinks it and creates a new inode, O_EXCL), and every
// directory, symlink and node of a farm is its own inode. But a hardlink entry (`link`) is
// applied as linkat() to its target followed by fchownat/setxattr/fchmodat/utimensat on the
// new name — that is, on the *target's* inode. If the target is a farm file, that inode is
// also the parent layer's: its owner, mode, xattrs or times would change under the parent.
// So a farm apply is allowed only when every link entry's target is a file this same tar
// created (a fresh inode), reached by a path whose every directory is a real directory made or
// merged by an earlier dir entry of this tar (so no symlink can redirect the lookup to a farm
// file), and nothing in between replaced or removed the target or one of those directories.
// Any other tar is applied the naive way (through the overlay mount: copy-up protects the
// lower). A change to archive/apply.ts would make this scan unnecessary (see the driver's docs).
// No filesystem writes here except the spool file.
import { type ReadStream, createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { cleanName } from '../../archive/root';
import { readTar } from '../../archive/tar-stream-io';
import { WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE_DIR, WHITEOUT_PREFIX } from '../../archive/whiteout';

/** The scan's verdict. */
export interface ScanResult {
  /** True when applying the tar onto a farm cannot modify a shared inode. */
  farmSafe: boolean;
  /** Why not, when not. */
  reason?: string;
}

/** Paths of this tar's fresh files and real directories, invalidated as later entries replace them. */
class Tracker {
  private readonly fresh = new Set<string>();
  private readonly dirs = new Set<string>();

  /** Every proper prefix of `parts` is a directory this tar made or merged (and nothing replaced since). */
  private literalParents(parts: readonly string[]): boolean {
    for (let k = 1; k < parts.length; k++) if (!this.dirs.has(parts.slice(0, k).join('/'))) return false;
    return true;
  }

  /** `p` is replaced or removed: it and everything below it stop being known. */
  invalidate(p: string): void {
    this.fresh.delete(p);
    if (!this.dirs.delete(p)) return; // only a known directory can have known entries below it
    const prefix = `${p}/`;
    for (const s of [this.fresh, this.dirs]) for (const q of s) if (q.startsWith(prefix)) s.delete(q);
  }

  dir(parts: readonly string[]): void {
    const p = parts.join('/');
    this.fresh.delete(p); // a directory over a file replaces it; over a directory it merges
    if (this.literalParents(parts)) this.dirs.add(p);
  }

  file(parts: readonly string[]): void {
    const p = parts.join('/');
    this.invalidate(p);
    if (this.literalParents(parts)) this.fresh.add(p);
  }

  /** A link entry; false when its target may be a farm (shared) inode. */
  link(parts: readonly string[], target: readonly string[]): boolean {
    const t = target.join('/');
    if (!this.fresh.has(t) || !this.literalParents(target)) return false;
    const p = parts.join('/');
    this.invalidate(p);
    if (this.literalParents(parts)) this.fresh.add(p);
    return true;
  }
}

/** Reads the tar entries of `source` (plain or gzip) and judges them. */
async function judge(source: AsyncIterable<Buffer>): Promise<ScanResult> {
  const it = source[Symbol.asyncIterator]();
  const first = await it.next();
  const rest = async function* (): AsyncGenerator<Buffer> {
    if (!first.done) yield first.value;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  };
  let plain: AsyncIterable<Buffer> = rest();
  if (!first.done && first.value[0] === 0x1f && first.value[1] === 0x8b) {
    const gunzip = createGunzip();
    pipeline(Readable.from(rest()), gunzip).catch(() => undefined); // errors end the iteration below
    plain = gunzip;
  }
  const t = new Tracker();
  for await (const entry of readTar(plain)) {
    const h = entry.header;
    const parts = cleanName(h.name);
    if (parts.length === 0) continue;
    if (parts[0]!.startsWith(WHITEOUT_META_PREFIX) && !(parts.length === 1 && parts[0] === WHITEOUT_OPAQUE_DIR)) continue;
    const base = parts[parts.length - 1]!;
    if (base.startsWith(WHITEOUT_PREFIX)) {
      // An opaque dir keeps what this tar unpacked in it; a whiteout removes its victim.
      if (base !== WHITEOUT_OPAQUE_DIR && !base.startsWith(WHITEOUT_META_PREFIX)) {
        t.invalidate([...parts.slice(0, -1), base.slice(WHITEOUT_PREFIX.length)].join('/'));
      }
      continue;
    }
    if (h.type === 'dir') t.dir(parts);
    else if (h.type === 'file') t.file(parts);
    else if (h.type === 'link') {
      const target = cleanName(h.linkname, 'hardlink target');
      if (!t.link(parts, target)) {
        return { farmSafe: false, reason: `hardlink ${JSON.stringify(h.name)} -> ${JSON.stringify(h.linkname)} may name a file shared with the parent layer` };
      }
    } else t.invalidate(parts.join('/'));
  }
  return { farmSafe: true };
}

/**
 * Copies `input` to the file `spoolPath`, then reads the spool once and judges it. A tar the
 * scan cannot read is judged not farm-safe (the apply itself then reports what is wrong with it).
 */
export async function spoolAndScan(input: AsyncIterable<Buffer | string>, spoolPath: string): Promise<ScanResult> {
  await pipeline(Readable.from(input), createWriteStream(spoolPath, { mode: 0o600 }));
  const spool = createReadStream(spoolPath, { highWaterMark: 1 << 20 });
  try {
    return await judge(spool as AsyncIterable<Buffer>);
  } catch (err) {
    return { farmSafe: false, reason: `the tar could not be scanned: ${(err as Error).message}` };
  } finally {
    await closeSpool(spool);
  }
}

/** The spooled tar, for the apply; close it with closeSpool whatever the apply did. */
export function readSpool(spoolPath: string): ReadStream {
  return createReadStream(spoolPath, { highWaterMark: 1 << 20 });
}

/** Destroys a spool stream and waits until its fd is closed (a reader may stop before its end). */
export async function closeSpool(stream: ReadStream): Promise<void> {
  if (stream.closed) return;
  const closed = once(stream, 'close');
  stream.destroy();
  await closed;
}
