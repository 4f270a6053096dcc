// locker.ts: per-id mutual exclusion within this process. Operations on one layer run one at
// a time; operations on different layers run in parallel. No filesystem work here.

export class Locker {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` once every earlier holder of `id` is done; releases even if `fn` throws. */
  async with<T>(id: string, fn: () => Promise<T>): Promise<T> {
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
