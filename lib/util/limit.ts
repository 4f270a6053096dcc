// limit.ts: bounded concurrency for async work over a list (tree copies, hardlink farms).
// Keeps a fixed number of operations in flight so a large tree is fast without exhausting fds.

/** Runs `fn` over `items`, at most `limit` at once; after a failure starts no more, waits for the rest, rethrows. */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
}
