// limits.test.ts: limits against hostile archives — entry count, PAX/long-name record size,
// path depth, name length — each refused with an ArchiveError that says which limit, never a
// crash or an unbounded allocation.
import { strict as assert } from 'node:assert';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { applyLayer } from '../../lib/archive/apply';
import { NAME_LIMITS } from '../../lib/archive/root';
import { ArchiveError } from '../../lib/errors';
import { makeTar } from '../helpers/hostile-tar';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

const skip = skipUnlessRoot('applies into a temp dir as root');

async function refused(tar: Buffer, message: RegExp, limits?: { maxRecordSize: number; maxEntries: number }): Promise<void> {
  await withTmpDir(async (tmp) => {
    const out = await tmp.mkdir('out');
    await assert.rejects(applyLayer(out, Readable.from([tar]), limits ? { limits } : {}),
      (err: unknown) => err instanceof ArchiveError && message.test(err.message));
  });
}

test('more entries than the limit', { skip }, async () => {
  const entries = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, data: 'x' }));
  await refused(makeTar(entries), /more than 10 entries/, { maxRecordSize: 1 << 20, maxEntries: 10 });
});

test('a PAX record larger than the limit', { skip }, async () => {
  await refused(makeTar([{ name: `${'d/'.repeat(900)}f`, data: 'x' }]), /exceeds the limit of 1024/, { maxRecordSize: 1024, maxEntries: 100 });
});

test(`a path nested deeper than ${NAME_LIMITS.maxDepth} directories`, { skip }, async () => {
  await refused(makeTar([{ name: `${'a/'.repeat(NAME_LIMITS.maxDepth + 1)}f`, data: 'x' }]), /nested deeper/);
});

test(`a name component longer than ${NAME_LIMITS.maxComponent} bytes`, { skip }, async () => {
  await refused(makeTar([{ name: `ok/${'n'.repeat(NAME_LIMITS.maxComponent + 1)}`, data: 'x' }]), /component longer/);
});

test(`a path longer than ${NAME_LIMITS.maxPath} bytes`, { skip }, async () => {
  await refused(makeTar([{ name: `${'abcdefgh/'.repeat(460)}f`, data: 'x' }]), /longer than 4096 bytes/);
});

test('a NUL in a PAX path', { skip }, async () => {
  // Longer than 100 bytes, so the name travels in a PAX record, where a NUL is not a terminator.
  await refused(makeTar([{ name: `${'p'.repeat(120)}\0b`, data: 'x' }]), /NUL/);
});
