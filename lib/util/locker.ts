// locker.ts: per-id mutual exclusion. Within this process, operations on one layer run one
// at a time and different layers run in parallel (a promise chain per id). Given FileLocks, the
// same holds across processes sharing a driver home: after the in-process turn, a lock file
// is flocked too. Ids map onto a fixed set of STRIPES lock files (made once), so a failed or
// refused operation on some id leaves no file behind; two ids sharing a stripe only wait for
// each other across processes. Several ids are always locked in one order (ids sorted, then
// stripes sorted), so two operations can never wait on each other.
import { createHash } from 'node:crypto';
import type { FileLocks } from './file-lock';

/** Number of lock files a home's layers are spread over. */
export const STRIPES = 64;

export function stripeOf(id: string): string {
  return String(createHash('sha256').update(id).digest().readUInt32BE(0) % STRIPES);
}

export class Locker {
  private readonly tails = new Map<string, Promise<void>>();

  constructor(private readonly files?: FileLocks) {}

  /** Runs `fn` once every earlier holder of `id` is done; releases even if `fn` throws. */
  with<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.withAll([id], fn);
  }

  /** Runs `fn` holding every id of `ids` (in-process, then their lock files in stripe order). */
  async withAll<T>(ids: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(ids)].sort();
    const inProcess = (k: number): Promise<T> => (k === sorted.length ? this.withFiles(sorted, fn) : this.turn(sorted[k]!, () => inProcess(k + 1)));
    return inProcess(0);
  }

  private withFiles<T>(ids: readonly string[], fn: () => Promise<T>): Promise<T> {
    const files = this.files;
    if (files === undefined) return fn();
    const stripes = [...new Set(ids.map(stripeOf))].sort((a, b) => Number(a) - Number(b));
    const hold = (k: number): Promise<T> => (k === stripes.length ? fn() : files.exclusive(stripes[k]!, () => hold(k + 1)));
    return hold(0);
  }

  private async turn<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => { release = resolve; });
    const tail = previous.then(() => mine);
    this.tails.set(id, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(id) === tail) this.tails.delete(id);
    }
  }
}
