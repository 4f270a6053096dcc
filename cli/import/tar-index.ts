// tar-index.ts: an index of a tar file's members (name -> data offset and size), read header by
// header with positioned reads and no extraction, so `import` can read manifest.json wherever it
// sits and then stream each layer member straight from the file (createReadStream start/end).
// Knows ustar names with prefix, GNU long names ('L'), PAX path/size ('x'), symlinks and
// hardlinks between members (docker save links repeated layers). Nothing here writes anything.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { CliError } from '../errors';

const BLOCK = 512;

export interface TarMember {
  name: string;
  /** Byte offset of the data in the file. */
  offset: number;
  size: number;
  type: 'file' | 'dir' | 'symlink' | 'link' | 'other';
  linkname: string;
}

function cstr(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

function numeric(buf: Buffer, off: number, len: number): number {
  if ((buf[off]! & 0x80) !== 0) { // base-256
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + buf[i]!;
    return v;
  }
  const s = cstr(buf, off, len).trim();
  return s === '' ? 0 : Number.parseInt(s, 8);
}

function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = Number.parseInt(data.toString('ascii', pos, sp), 10);
    if (!Number.isInteger(len) || len <= 0) break;
    const rec = data.toString('utf8', sp + 1, pos + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    pos += len;
  }
  return out;
}

/** Normalises a member or manifest name: no leading './' or '/', no '..' escapes. */
export function cleanMemberName(name: string): string {
  const n = path.posix.normalize(`/${name}`).slice(1).replace(/\/$/, '');
  return n;
}

export class TarIndex {
  private constructor(readonly file: string, private readonly members: Map<string, TarMember>) {}

  /** Reads every header of the tar `file`. Throws CliError on a file that is not a tar. */
  static async read(file: string): Promise<TarIndex> {
    const fh = await fsp.open(file, 'r');
    const members = new Map<string, TarMember>();
    try {
      const { size: fileSize } = await fh.stat();
      const hdr = Buffer.alloc(BLOCK);
      let pos = 0;
      let longName: string | undefined;
      let longLink: string | undefined;
      let pax = new Map<string, string>();
      while (pos + BLOCK <= fileSize) {
        await fh.read(hdr, 0, BLOCK, pos);
        if (hdr.every((b) => b === 0)) break;
        let sum = 0;
        for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : hdr[i]!;
        if (sum !== numeric(hdr, 148, 8)) throw new CliError(`${file}: not a tar archive (bad header checksum at offset ${pos})`);
        const typeflag = String.fromCharCode(hdr[156]!);
        let size = numeric(hdr, 124, 12);
        const dataAt = pos + BLOCK;
        if (pax.has('size')) size = Number(pax.get('size'));
        const next = dataAt + Math.ceil(size / BLOCK) * BLOCK;
        if (typeflag === 'L' || typeflag === 'K' || typeflag === 'x') {
          if (size > 1 << 20) throw new CliError(`${file}: oversized tar extension header at offset ${pos}`);
          const data = Buffer.alloc(size);
          await fh.read(data, 0, size, dataAt);
          if (typeflag === 'L') longName = cstr(data, 0, size);
          else if (typeflag === 'K') longLink = cstr(data, 0, size);
          else pax = parsePax(data);
          pos = next;
          continue;
        }
        if (typeflag === 'g') { pos = next; continue; }
        const ustar = hdr.toString('ascii', 257, 262) === 'ustar';
        const prefix = ustar ? cstr(hdr, 345, 155) : '';
        const raw = pax.get('path') ?? longName ?? (prefix !== '' ? `${prefix}/${cstr(hdr, 0, 100)}` : cstr(hdr, 0, 100));
        const linkname = pax.get('linkpath') ?? longLink ?? cstr(hdr, 157, 100);
        const type = typeflag === '0' || typeflag === '\0' || typeflag === '7' ? 'file'
          : typeflag === '5' ? 'dir' : typeflag === '2' ? 'symlink' : typeflag === '1' ? 'link' : 'other';
        members.set(cleanMemberName(raw), { name: cleanMemberName(raw), offset: dataAt, size: type === 'file' ? size : 0, type, linkname });
        longName = undefined;
        longLink = undefined;
        pax = new Map();
        pos = next;
      }
    } finally {
      await fh.close();
    }
    if (members.size === 0) throw new CliError(`${file}: not a tar archive (no members)`);
    return new TarIndex(file, members);
  }

  /** The regular-file member `name`, following symlinks and hardlinks between members. */
  lookup(name: string): TarMember | undefined {
    let cur = cleanMemberName(name);
    for (let hops = 0; hops < 16; hops++) {
      const m = this.members.get(cur);
      if (m === undefined) return undefined;
      if (m.type === 'file') return m;
      if (m.type === 'link') cur = cleanMemberName(m.linkname);
      else if (m.type === 'symlink') cur = cleanMemberName(path.posix.join(path.posix.dirname(cur), m.linkname));
      else return undefined;
    }
    return undefined;
  }
}
