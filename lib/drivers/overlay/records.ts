// records.ts: reading the overlay driver's per-layer state (root/ or upper/ + lower-id, the
// incomplete marker) and listing layers. Every name comes from layout.ts; markers are fsync'd
// (util/markers.ts). No mounting and no layer writes here.
import { promises as fsp } from 'node:fs';
import { LayerNotFoundError, hasCode } from '../../errors';
import { MarkerSet } from '../../util/markers';
import { validateId } from '../../util/ids';
import { INCOMPLETE_FILE, type OverlayLayout } from './layout';

/** A layer as found on disk: a complete tree (root/), or an upper dir over one lower layer. */
export type LayerRecord =
  | { id: string; kind: 'root'; incomplete: boolean }
  | { id: string; kind: 'upper'; lowerId: string; incomplete: boolean };

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fsp.lstat(p)).isDirectory();
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** The layer directory exists (complete or not). */
export function layerDirExists(layout: OverlayLayout, id: string): Promise<boolean> {
  return isDir(layout.layer(id));
}

/** The per-layer marker files (incomplete) of `id`. */
export function markers(layout: OverlayLayout, id: string): MarkerSet {
  return new MarkerSet(layout.layer(id));
}

/** Reads `id`'s record; LayerNotFoundError when its directory is missing or holds neither form. */
export async function readRecord(layout: OverlayLayout, id: string): Promise<LayerRecord> {
  const [hasRoot, incomplete] = await Promise.all([isDir(layout.root(id)), markers(layout, id).has(INCOMPLETE_FILE)]);
  if (hasRoot) return { id, kind: 'root', incomplete };
  let lowerId: string;
  try {
    lowerId = (await fsp.readFile(layout.lowerIdFile(id), 'utf8')).trim();
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) throw new LayerNotFoundError(id);
    throw err;
  }
  validateId(lowerId, 'lower-id');
  return { id, kind: 'upper', lowerId, incomplete };
}

/** Every layer directory in home/layers. */
export async function listLayerIds(layout: OverlayLayout): Promise<string[]> {
  const entries = await fsp.readdir(layout.layersDir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}
