// tar-writer.ts: the header block(s) of one tar entry — a ustar header, preceded by a PAX
// header when a field does not fit ustar (long names, big ids or sizes, xattrs, nanosecond
// mtimes, GNU sparse records) — and the end-of-archive marker. Pure; no I/O here.
import { BLOCK, encodeHeader, encodePax, octalLimit, padding, type TarEntryHeader } from './tar-format';

/** Header fields the writer needs; anything that does not fit ustar goes to PAX. */
export interface WriteHeader {
  name: string; type: TarEntryHeader['type']; mode: number; uid: number; gid: number; size: number;
  mtimeSec: number; mtimeNsec?: number; linkname?: string; devmajor?: number; devminor?: number;
  xattrs?: ReadonlyMap<string, Buffer>;
  /** Further PAX records (e.g. GNU.sparse.*), written before the xattrs. */
  pax?: ReadonlyArray<[string, Buffer]>;
}

/** The header block(s) for one entry: a PAX header first when a field does not fit ustar. */
export function headerBlocks(h: WriteHeader): Buffer {
  const name = Buffer.from(h.name, 'utf8');
  const linkname = Buffer.from(h.linkname ?? '', 'utf8');
  const records: Array<[string, Buffer]> = [];
  if (name.length > 100) records.push(['path', name]);
  if (linkname.length > 100) records.push(['linkpath', linkname]);
  if (h.uid > octalLimit(8)) records.push(['uid', Buffer.from(String(h.uid))]);
  if (h.gid > octalLimit(8)) records.push(['gid', Buffer.from(String(h.gid))]);
  if (h.size > octalLimit(12)) records.push(['size', Buffer.from(String(h.size))]);
  if (h.mtimeNsec !== undefined && h.mtimeNsec !== 0) {
    records.push(['mtime', Buffer.from(`${h.mtimeSec}.${String(h.mtimeNsec).padStart(9, '0')}`)]);
  } else if (h.mtimeSec < 0 || h.mtimeSec > octalLimit(12)) {
    records.push(['mtime', Buffer.from(String(h.mtimeSec))]);
  }
  for (const r of h.pax ?? []) records.push(r);
  for (const [k, v] of h.xattrs ?? []) records.push([`SCHILY.xattr.${k}`, v]);
  const main = encodeHeader({
    name, linkname, type: h.type, mode: h.mode, uid: h.uid, gid: h.gid, size: h.size, mtime: h.mtimeSec,
    devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0,
  });
  if (records.length === 0) return main;
  const data = encodePax(records);
  const base = h.name.replace(/\/+$/, '').split('/').pop() ?? '';
  const paxName = Buffer.from(`PaxHeaders.0/${base}`, 'utf8').subarray(0, 100);
  const paxHeader = encodeHeader({
    name: paxName, linkname: Buffer.alloc(0), type: 'pax', mode: 0o644, uid: 0, gid: 0, size: data.length,
    mtime: Math.max(0, Math.min(h.mtimeSec, octalLimit(12))), devmajor: 0, devminor: 0,
  });
  return Buffer.concat([paxHeader, data, Buffer.alloc(padding(data.length)), main]);
}

/** The end-of-archive marker: two zero blocks. */
export function endOfArchive(): Buffer {
  return Buffer.alloc(BLOCK * 2);
}

export { padding };
