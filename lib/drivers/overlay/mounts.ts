// mounts.ts: the pure function from an upper layer's record to the MountSpec get() applies.
// No filesystem access and no syscalls here: mount/apply.ts mounts what this returns.
import { type MountSpec, contextOption } from '../../mount/spec';
import { type OverlayFeatures, featureOptions } from '../overlay-common/check';
import type { OverlayLayout } from './layout';

/**
 * The mount of upper layer `id` over its one lower `lowerId`: lowerdir=<lower>/root,
 * upperdir=<id>/upper, workdir=<id>/work on <id>/merged, with every overlay feature that would
 * make upper/ more than a plain diff turned off, and `context="…"` for a mount label.
 */
export function upperMount(layout: OverlayLayout, id: string, lowerId: string, features: OverlayFeatures,
  mountLabel?: string): MountSpec {
  const options = [`upperdir=${layout.upper(id)}`, `workdir=${layout.work(id)}`, ...featureOptions(features)];
  if (mountLabel !== undefined && mountLabel !== '') options.push(contextOption(mountLabel));
  return { type: 'overlay', source: 'overlay', target: layout.merged(id), options, flags: 0, lowerdirs: [layout.root(lowerId)] };
}
