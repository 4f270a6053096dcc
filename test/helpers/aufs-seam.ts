// aufs-seam.ts: mounters for the aufs driver's documented test seam (openAufsForTest). No
// kernel reachable from the tests has aufs, so these stand in for mount(2) alone: one records
// the calls the driver would make (and which targets it believes mounted), the other refuses
// every mount with the reason. Every other syscall the driver makes stays real.
import type { AufsMounter } from '../../lib/drivers/aufs/driver';
import type { MountSpec } from '../../lib/mount/spec';

/** The reason used wherever a test would need a real aufs union mount. */
export const NEEDS_AUFS = 'needs the aufs kernel module (not in this kernel): the union mount of a layer with a parent cannot be made here';

/** Records each mount sequence and unmount; a target counts as mounted between the two. */
export class RecordingMounter implements AufsMounter {
  /** Each mount() call: the sequence of mount(2) calls, copied. */
  readonly sequences: MountSpec[][] = [];
  readonly unmounts: string[] = [];
  readonly active = new Set<string>();

  async mount(specs: readonly MountSpec[]): Promise<void> {
    this.sequences.push(specs.map((s) => ({ ...s, options: [...s.options] })));
    if (specs[0] !== undefined) this.active.add(specs[0].target);
  }

  async unmount(target: string): Promise<boolean> {
    const was = this.active.delete(target);
    if (was) this.unmounts.push(target);
    return was;
  }

  async isMounted(target: string): Promise<boolean> {
    return this.active.has(target);
  }
}

/** Refuses every mount with NEEDS_AUFS; nothing is ever mounted. */
export const refusingMounter: AufsMounter = {
  async mount(): Promise<void> { throw new Error(NEEDS_AUFS); },
  async unmount(): Promise<boolean> { return false; },
  async isMounted(): Promise<boolean> { return false; },
};
