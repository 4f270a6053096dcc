// common.ts: helpers several commands share: the default parent of a layer (what the CLI
// recorded when it made it), key=value parsing, and opening an input or output file.
import type { Ctx } from '../context';
import { UsageError } from '../errors';

/**
 * The parent a diff-like command compares against: the one given on the command line ('' =
 * none, the whole tree), else the parent the CLI recorded for `id`, else none.
 */
export async function parentFor(ctx: Ctx, id: string, given: string | undefined): Promise<string> {
  if (given !== undefined) return given;
  const rec = await (await ctx.store()).find(id);
  return rec?.parent ?? '';
}

/** Parses repeated key=value strings into a record; `what` names the option in errors. */
export function keyValues(list: readonly string[], what: string, command?: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`${what} expects key=value, got ${JSON.stringify(kv)}`, command);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** The text after a change kind, as `docker diff` prints it. */
export const CHANGE_LETTER = Object.freeze({ 0: 'C', 1: 'A', 2: 'D' } as const);
export const CHANGE_NAME = Object.freeze({ 0: 'Modify', 1: 'Add', 2: 'Delete' } as const);

/** Changes sorted by path, so output is the same whichever driver made the list. */
export function byPath<T extends { path: string }>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
