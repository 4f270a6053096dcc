// assert-code.ts: assertions on the stable `code` of a rejected promise (callers branch on code,
// never on message text).
import * as assert from 'node:assert/strict';

/** Asserts `fn()` rejects with an error whose `code` is `code`; returns that error. */
export async function rejectsWithCode(fn: () => Promise<unknown>, code: string, what: string): Promise<Error> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  if (caught === undefined) assert.fail(`${what}: expected a rejection with code ${code}, but it resolved`);
  const got = (caught as { code?: unknown }).code;
  assert.equal(got, code, `${what}: expected code ${code}, got ${String(got)} (${(caught as Error).message})`);
  return caught as Error;
}
