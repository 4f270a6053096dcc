// tar-format.ts: the tar wire format — 512-byte ustar/GNU headers, numeric fields (octal or
// base-256), checksums and PAX records with binary values. Pure functions on Buffers; no I/O.
// We keep our own codec rather than tar-stream's because layer tars carry binary PAX values
// (SCHILY.xattr.security.capability) that must round-trip byte for byte, and because the
// reader must enforce limits on hostile input.

export const BLOCK = 512;

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** One archive member, after PAX and GNU long-name records were folded in. */
export interface TarEntryHeader {
  name: string;
  type: EntryType;
  mode: number;        // permission bits incl. setuid/setgid/sticky
  uid: number;
  gid: number;
  size: number;        // data bytes that follow (0 for all but files)
  mtimeSec: number;
  mtimeNsec: number;
  atimeSec?: number;
  atimeNsec?: number;
  linkname: string;    // hardlink or symlink target
  devmajor: number;
  devminor: number;
  xattrs: ReadonlyMap<string, Buffer>;
  /** For a GNU sparse file: its real size and data extents; `size` is then the stored bytes. */
  sparse?: SparseMap;
}

/** A sparse file's layout: data extents [offset, length] in order, holes between them. */
export interface SparseMap {
  realSize: number;
  extents: Array<[number, number]>;
}

const TYPE_FLAGS: Record<string, EntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', 'S': 'file', '1': 'link', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo',
};
const FLAG_OF: Record<EntryType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

/** A raw header as it is on the wire, before PAX/GNU records are applied. */
export interface RawHeader {
  typeflag: string;
  /** Old GNU sparse ('S'): extents in the header, whether extension blocks follow, real size. */
  gnuSparse?: { extents: Array<[number, number]>; extended: boolean; realSize: number };
  name: Buffer;
  linkname: Buffer;
  mode: number; uid: number; gid: number; size: number; mtime: number;
  devmajor: number; devminor: number;
}

function cstr(buf: Buffer, off: number, len: number): Buffer {
  const field = buf.subarray(off, off + len);
  const nul = field.indexOf(0);
  return nul === -1 ? field : field.subarray(0, nul);
}

/** A numeric field: octal ASCII (NUL/space padded) or GNU base-256 (high bit set). */
export function parseNumeric(buf: Buffer, off: number, len: number): number {
  const field = buf.subarray(off, off + len);
  if (field[0]! & 0x80) {
    // base-256, big-endian two's complement; negative values are refused
    if (field[0]! & 0x40) return NaN;
    let v = field[0]! & 0x3f;
    for (let i = 1; i < field.length; i++) {
      v = v * 256 + field[i]!;
      if (v > Number.MAX_SAFE_INTEGER) return NaN;
    }
    return v;
  }
  // Octal digits, optionally surrounded by spaces and ended by NUL or space.
  let i = 0;
  const end = field.length;
  while (i < end && field[i] === 0x20) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = field[i]!;
    if (c >= 0x30 && c <= 0x37) {
      v = v * 8 + (c - 0x30);
      digits++;
      continue;
    }
    if (c === 0) return v; // what follows a NUL terminator is not looked at
    if (c === 0x20) break;
    return NaN;
  }
  for (; i < end; i++) if (field[i] !== 0 && field[i] !== 0x20) return NaN;
  return digits === 0 ? 0 : v;
}

function checksumOf(block: Buffer): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 32 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return { unsigned, signed };
}

/** True for a block of 512 zero bytes (end-of-archive marker). */
export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** Decodes one header block; returns an error string for a block that is not a tar header. */
export function decodeHeader(block: Buffer): RawHeader | string {
  const stored = parseNumeric(block, 148, 8);
  const sum = checksumOf(block);
  if (Number.isNaN(stored) || (stored !== sum.unsigned && stored !== sum.signed)) return 'bad header checksum (not a tar archive, or corrupt)';
  let name = cstr(block, 0, 100);
  // POSIX ustar ("ustar\0") has a name prefix field; old GNU ("ustar  ") uses those bytes otherwise.
  if (block[257] === 0x75 && block[258] === 0x73 && block[259] === 0x74 && block[260] === 0x61 && block[261] === 0x72 && block[262] === 0) {
    const prefix = cstr(block, 345, 155);
    if (prefix.length > 0) name = Buffer.concat([prefix, Buffer.from('/'), name]);
  }
  const mode = parseNumeric(block, 100, 8);
  const uid = parseNumeric(block, 108, 8);
  const gid = parseNumeric(block, 116, 8);
  const size = parseNumeric(block, 124, 12);
  const mtime = parseNumeric(block, 136, 12);
  const devmajor = parseNumeric(block, 329, 8);
  const devminor = parseNumeric(block, 337, 8);
  // NaN never equals itself: one comparison chain finds any malformed field.
  if (mode !== mode || uid !== uid || gid !== gid || size !== size || mtime !== mtime || devmajor !== devmajor || devminor !== devminor) {
    const bad = [['mode', mode], ['uid', uid], ['gid', gid], ['size', size], ['mtime', mtime], ['devmajor', devmajor], ['devminor', devminor]]
      .find(([, v]) => Number.isNaN(v));
    return `invalid numeric field ${String(bad?.[0])}`;
  }
  const typeflag = String.fromCharCode(block[156]!);
  let gnuSparse: RawHeader['gnuSparse'];
  if (typeflag === 'S') {
    const extents = parseSparseEntries(block, 386, 4);
    if (typeof extents === 'string') return extents;
    gnuSparse = { extents, extended: block[482] !== 0, realSize: parseNumeric(block, 483, 12) };
    if (Number.isNaN(gnuSparse.realSize)) return 'invalid numeric field realsize';
  }
  const raw: RawHeader = { typeflag, name, linkname: cstr(block, 157, 100), mode, uid, gid, size, mtime, devmajor, devminor };
  if (gnuSparse !== undefined) raw.gnuSparse = gnuSparse;
  return raw;
}

/** `count` old-GNU sparse entries (offset[12], numbytes[12]) at `off`; an all-zero entry ends the list. */
export function parseSparseEntries(block: Buffer, off: number, count: number): Array<[number, number]> | string {
  const out: Array<[number, number]> = [];
  for (let k = 0; k < count; k++) {
    const at = off + k * 24;
    if (block[at] === 0) break;
    const offset = parseNumeric(block, at, 12);
    const length = parseNumeric(block, at + 12, 12);
    if (Number.isNaN(offset) || Number.isNaN(length)) return 'invalid GNU sparse map entry';
    out.push([offset, length]);
  }
  return out;
}

/** The entry type of a typeflag, or undefined for types we do not extract. */
export function entryTypeOf(typeflag: string): EntryType | undefined {
  return TYPE_FLAGS[typeflag];
}

/** Parses PAX extended-header records ("LEN key=value\n"); values stay binary. */
export function parsePax(data: Buffer): Map<string, Buffer> | string {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < data.length) {
    if (data[off] === 0) break; // NUL padding after the last record
    const sp = data.indexOf(0x20, off);
    if (sp === -1 || sp - off > 20) return 'malformed PAX record length';
    const len = Number(data.subarray(off, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= sp - off + 1 || off + len > data.length) return 'malformed PAX record length';
    const rec = data.subarray(sp + 1, off + len);
    if (rec[rec.length - 1] !== 0x0a) return 'PAX record does not end with a newline';
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) return 'PAX record without a key';
    const key = rec.subarray(0, eq).toString('utf8');
    const value = Buffer.from(rec.subarray(eq + 1, rec.length - 1));
    off += len;
    if (key === 'GNU.sparse.offset' || key === 'GNU.sparse.numbytes') {
      // PAX sparse 0.0 repeats these two keys once per extent: gather them, in order, into
      // the 0.1 form ("offset,length,offset,length...").
      const prev = out.get('GNU.sparse.map');
      out.set('GNU.sparse.map', prev === undefined ? value : Buffer.concat([prev, Buffer.from(','), value]));
      continue;
    }
    out.set(key, value);
  }
  return out;
}

/** Encodes PAX records; the length prefix counts itself, so it is found by iteration. */
export function encodePax(records: ReadonlyArray<[string, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of records) {
    const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(Buffer.from(String(len), 'latin1'), body);
  }
  return Buffer.concat(parts);
}

function writeString(block: Buffer, off: number, len: number, value: Buffer): void {
  value.copy(block, off, 0, Math.min(len, value.length));
}

function writeOctal(block: Buffer, off: number, len: number, value: number): boolean {
  const s = Math.trunc(value).toString(8);
  if (value < 0 || s.length > len - 1) return false;
  block.write(s.padStart(len - 1, '0') + '\0', off, len, 'latin1');
  return true;
}

/** The largest value an octal field of `len` bytes holds. */
export function octalLimit(len: number): number {
  return 8 ** (len - 1) - 1;
}

export interface EncodeFields {
  name: Buffer; linkname: Buffer; type: EntryType | 'pax';
  mode: number; uid: number; gid: number; size: number; mtime: number; devmajor: number; devminor: number;
}

/** Encodes one ustar header block. Fields must already fit (the writer moves others to PAX). */
export function encodeHeader(h: EncodeFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeString(block, 0, 100, h.name);
  writeOctal(block, 100, 8, h.mode & 0o7777);
  writeOctal(block, 108, 8, Math.min(h.uid, octalLimit(8)));
  writeOctal(block, 116, 8, Math.min(h.gid, octalLimit(8)));
  writeOctal(block, 124, 12, h.size);
  writeOctal(block, 136, 12, Math.max(0, Math.min(h.mtime, octalLimit(12))));
  block[156] = (h.type === 'pax' ? 'x' : FLAG_OF[h.type]).charCodeAt(0);
  writeString(block, 157, 100, h.linkname);
  block.write('ustar\x0000', 257, 8, 'latin1');
  writeOctal(block, 329, 8, h.devmajor);
  writeOctal(block, 337, 8, h.devminor);
  const sum = checksumOf(block).unsigned;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return block;
}

/** Zero bytes that pad `size` up to a whole block. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}
