// mounts.ts: pure functions from a layer's on-disk record (its lower chain, committed state)
// to the MountSpec that get() applies, and the codec of the `lower` file. No filesystem access
// and no syscalls here: mount/apply.ts mounts what these return.
import * as path from 'node:path';
import { MS } from '../../native';
import { type MountSpec, contextOption } from '../../mount/spec';
import { DIFF_DIR, LAYERS_DIR, LINKS_DIR, MERGED_DIR, SHORT_ID_PATTERN, WORK_DIR } from './layout';

import { type OverlayFeatures, featureOptions } from '../overlay-common/check';

// Shared with the overlay driver; re-exported for overlay2's callers and tests.
export type { OverlayFeatures };
export { featureOptions };

/** What a layer's mount depends on, read from its record. */
export interface LayerRecord {
  id: string;
  /** The layer's own short name (its `link` file). */
  short: string;
  /** The `lower` chain (`l/<short>` entries, nearest first); empty for a layer without parent. */
  lowers: readonly string[];
  /** A child was made on it: mount read-only, its diff as the topmost lower. */
  committed: boolean;
}

/**
 * The mount of layer `rec` in `home`, or null when get() returns diff/ without mounting (a layer
 * without lowers, as the engine does). Lowers are absolute `home/l/<short>` paths.
 */
export function layerMount(home: string, rec: LayerRecord, features: OverlayFeatures, mountLabel?: string): MountSpec | null {
  if (rec.lowers.length === 0) return null;
  const lowerPaths = rec.lowers.map((entry) => path.join(home, entry));
  const options = rec.committed
    ? [...featureOptions(features)]
    : [`upperdir=${path.join(home, LAYERS_DIR, rec.id, DIFF_DIR)}`, `workdir=${path.join(home, LAYERS_DIR, rec.id, WORK_DIR)}`, ...featureOptions(features)];
  if (mountLabel !== undefined && mountLabel !== '') options.push(contextOption(mountLabel));
  return {
    type: 'overlay',
    source: 'overlay',
    target: path.join(home, LAYERS_DIR, rec.id, MERGED_DIR),
    options,
    flags: rec.committed ? MS.MS_RDONLY : 0,
    lowerdirs: rec.committed ? [path.join(home, LINKS_DIR, rec.short), ...lowerPaths] : lowerPaths,
  };
}

/**
 * The most layers a chain may hold (the figure, within the kernel's 500 lower dirs): the
 * top mounts 499 lowers under its upper; a committed layer mounts its own diff over its lowers (at most 499).
 */
export const MAX_CHAIN_DEPTH = 500;

/** The `lower` file of a child of a parent whose short name is `parentShort` and chain is `parentLowers`. */
export function childLowers(parentShort: string, parentLowers: readonly string[]): string[] {
  return [`${LINKS_DIR}/${parentShort}`, ...parentLowers];
}

/** Encodes a lower chain as the `lower` file holds it. */
export function formatLowerFile(lowers: readonly string[]): string {
  return lowers.join(':');
}

/** Decodes a `lower` file; throws on an entry that is not `l/<26 chars>`. */
export function parseLowerFile(text: string): string[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  return trimmed.split(':').map((entry) => {
    const short = entry.startsWith(`${LINKS_DIR}/`) ? entry.slice(LINKS_DIR.length + 1) : '';
    if (!SHORT_ID_PATTERN.test(short)) throw new Error(`overlay2: malformed lower entry ${JSON.stringify(entry)}`);
    return entry;
  });
}

/** The short name of a `l/<short>` entry. */
export function shortOf(entry: string): string {
  return entry.slice(LINKS_DIR.length + 1);
}

/** Decodes a `link` file; throws unless it holds one short name. */
export function parseLinkFile(text: string): string {
  const short = text.trim();
  if (!SHORT_ID_PATTERN.test(short)) throw new Error(`overlay2: malformed link file ${JSON.stringify(text)}`);
  return short;
}
