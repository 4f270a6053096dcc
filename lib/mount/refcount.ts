// refcount.ts: counted get/put, the one copy every driver uses. The first get of an id runs
// `activate` (mount, or nothing for drivers that return a plain directory); the last put runs
// `deactivate`. Callers serialise per id (util/locker.ts); this module only counts.
import { NotMountedError } from '../errors';

export class RefCounter {
  private readonly counts = new Map<string, number>();

  /** The current count of `id`. */
  count(id: string): number {
    return this.counts.get(id) ?? 0;
  }

  /** Increments; runs `activate` first when the count was zero (and does not count if it throws). */
  async acquire(id: string, activate: () => Promise<void>): Promise<number> {
    const n = this.count(id);
    if (n === 0) await activate();
    this.counts.set(id, n + 1);
    return n + 1;
  }

  /** Decrements; runs `deactivate` when it reaches zero. put without get throws NotMountedError. */
  async release(id: string, deactivate: () => Promise<void>): Promise<number> {
    const n = this.count(id);
    if (n === 0) throw new NotMountedError(id);
    if (n === 1) {
      await deactivate();
      this.counts.delete(id);
      return 0;
    }
    this.counts.set(id, n - 1);
    return n - 1;
  }

  /** Forgets `id` (after remove). */
  forget(id: string): void {
    this.counts.delete(id);
  }

  /** Every id with a non-zero count. */
  active(): string[] {
    return [...this.counts.keys()];
  }
}
