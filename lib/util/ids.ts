// ids.ts: validation of layer ids and parents, done before any filesystem work.
import { InvalidIdError } from '../errors';

/** Throws InvalidIdError unless `id` is a usable layer id. */
export function validateId(id: unknown, what = 'id'): asserts id is string {
  if (typeof id !== 'string') throw new InvalidIdError(`layer ${what} must be a string, got ${typeof id}`);
  if (id === '') throw new InvalidIdError(`layer ${what} must not be empty`);
  if (id === '.' || id === '..') throw new InvalidIdError(`layer ${what} must not be ${JSON.stringify(id)}`);
  if (id.includes('/')) throw new InvalidIdError(`layer ${what} must not contain '/': ${JSON.stringify(id)}`);
  if (id.includes('\0')) throw new InvalidIdError(`layer ${what} must not contain NUL: ${JSON.stringify(id)}`);
  if (Buffer.byteLength(id) > 255) throw new InvalidIdError(`layer ${what} is longer than 255 bytes`);
}

/** Normalises a parent argument: '' / undefined mean none (returns ''); otherwise validates it. */
export function normalizeParent(parent: unknown): string {
  if (parent === undefined || parent === null || parent === '') return '';
  validateId(parent, 'parent');
  return parent;
}
