// records.ts: reading and writing overlay2's per-layer records (link, lower, committed,
// incomplete files and the l/ symlinks), and the repair of l/ at init. Every name comes from
// layout.ts; markers are fsync'd (util/markers.ts). No mounting here.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { LayerNotFoundError, hasCode } from '../../errors';
import { MarkerSet } from '../../util/markers';
import {
  COMMITTED_FILE, INCOMPLETE_FILE, Overlay2Layout, SHORT_ID_LENGTH,
} from './layout';
import { type LayerRecord, parseLinkFile, parseLowerFile, shortOf } from './mounts';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** A new short link name: 26 base32 characters of 16 random bytes, as the engine makes them. */
export function newShortId(): string {
  const bytes = randomBytes(17);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5 && out.length < SHORT_ID_LENGTH) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out;
}

async function readOrUndefined(p: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(p, 'utf8');
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}

/** A layer's record with its incomplete state. */
export interface FullRecord extends LayerRecord {
  incomplete: boolean;
}

/** The layer directory exists (complete or not). */
export async function layerDirExists(layout: Overlay2Layout, id: string): Promise<boolean> {
  try {
    return (await fsp.lstat(layout.layer(id))).isDirectory();
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** Reads `id`'s record; LayerNotFoundError when its directory or link file is missing. */
export async function readRecord(layout: Overlay2Layout, id: string): Promise<FullRecord> {
  const [link, lower, committed, incomplete] = await Promise.all([
    readOrUndefined(layout.linkFile(id)), readOrUndefined(layout.lowerFile(id)),
    markers(layout, id).has(COMMITTED_FILE), markers(layout, id).has(INCOMPLETE_FILE),
  ]);
  if (link === undefined) throw new LayerNotFoundError(id);
  return { id, short: parseLinkFile(link), lowers: lower === undefined ? [] : parseLowerFile(lower), committed, incomplete };
}

/** The per-layer marker files (committed, incomplete) of `id`. */
export function markers(layout: Overlay2Layout, id: string): MarkerSet {
  return new MarkerSet(layout.layer(id));
}

/** The id whose diff l/<short> points at, or undefined when the link is missing or foreign. */
export async function idOfShort(layout: Overlay2Layout, short: string): Promise<string | undefined> {
  let target: string;
  try {
    target = await fsp.readlink(layout.link(short));
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'EINVAL')) return undefined;
    throw err;
  }
  return Overlay2Layout.idOfLinkTarget(target);
}

/** The parent id of a record ('' for none; undefined when its l/ link cannot be read). */
export async function parentOf(layout: Overlay2Layout, rec: LayerRecord): Promise<string | undefined> {
  if (rec.lowers.length === 0) return '';
  return idOfShort(layout, shortOf(rec.lowers[0]!));
}

/** Every layer directory in home/layers. */
export async function listLayerIds(layout: Overlay2Layout): Promise<string[]> {
  const entries = await fsp.readdir(layout.layersDir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}

/** Points l/<short> at ../layers/<id>/diff, replacing a missing, broken or wrong link. Returns true if it changed anything. */
export async function ensureLink(layout: Overlay2Layout, id: string, short: string): Promise<boolean> {
  const want = Overlay2Layout.linkTarget(id);
  let have: string | undefined;
  try {
    have = await fsp.readlink(layout.link(short));
  } catch (err) {
    if (!hasCode(err, 'ENOENT') && !hasCode(err, 'EINVAL')) throw err;
  }
  if (have === want) return false;
  if (have !== undefined || (await fsp.lstat(layout.link(short)).then(() => true, () => false))) {
    await fsp.rm(layout.link(short), { force: true, recursive: true });
  }
  await fsp.symlink(want, layout.link(short));
  return true;
}

/**
 * Rebuilds l/ from each layer's link file (missing or broken links come back; links to no
 * layer are removed). Returns how many links were repaired.
 */
export async function repairLinks(layout: Overlay2Layout): Promise<number> {
  let repaired = 0;
  const owners = new Set<string>();
  for (const id of await listLayerIds(layout)) {
    const link = await readOrUndefined(layout.linkFile(id));
    if (link === undefined) continue;
    let short: string;
    try {
      short = parseLinkFile(link);
    } catch {
      continue;
    }
    owners.add(short);
    if (await ensureLink(layout, id, short)) repaired++;
  }
  for (const name of await fsp.readdir(layout.linksDir)) {
    if (!owners.has(name)) {
      await fsp.rm(`${layout.linksDir}/${name}`, { force: true });
      repaired++;
    }
  }
  return repaired;
}
