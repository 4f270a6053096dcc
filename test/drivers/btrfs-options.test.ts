// btrfs-options.test.ts: rootless unit tests of size parsing (util/units.ts, the engine's
// units.RAMInBytes rules) and of the btrfs driver's option validation (options.ts).
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidOptionError } from '../../lib/errors';
import { MIN_SPACE_OPTION, parseCreateOptions, parseOptions } from '../../lib/drivers/btrfs/options';
import { bytesToHuman, ramInBytes } from '../../lib/util/units';

const MiB = 1024 * 1024;

test('ramInBytes: binary units, any case, optional b/ib and one space', () => {
  const cases: Array<[string, number]> = [
    ['0', 0], ['32', 32], ['32b', 32], ['32B', 32], ['32k', 32 * 1024], ['32K', 32 * 1024], ['32kb', 32 * 1024],
    ['32Kb', 32 * 1024], ['32KiB', 32 * 1024], ['32kib', 32 * 1024], ['50M', 50 * MiB], ['50mb', 50 * MiB],
    ['50 MiB', 50 * MiB], ['1g', 1024 * MiB], ['1G', 1024 * MiB], ['2t', 2 * 1024 ** 4], ['1p', 1024 ** 5],
    ['1.5g', 1.5 * 1024 * MiB], ['0.5k', 512], ['1.0001k', 1024], ['.5k', 512], ['3.', 3],
  ];
  for (const [input, want] of cases) assert.equal(ramInBytes(input), want, input);
});

test('ramInBytes: rejects what the engine rejects', () => {
  for (const input of ['', ' ', 'm', '-1', '-1m', '1e3', '0x10', 'inf', 'NaN', '1x', '1mm', '1mib2', '1iB', '1kbb',
    '1bb', '1 2', '1  m', '1.2.3', 'm1', ' 1m', '1,5m', '1e', '1kab']) {
    assert.throws(() => ramInBytes(input), RangeError, JSON.stringify(input));
  }
  assert.throws(() => ramInBytes('9000000p'), /too large/);
  assert.throws(() => ramInBytes(5 as unknown as string), TypeError);
});

test('bytesToHuman renders binary units', () => {
  assert.equal(bytesToHuman(512), '512B');
  assert.equal(bytesToHuman(50 * MiB), '50MiB');
  assert.equal(bytesToHuman(1.5 * 1024 * MiB), '1.5GiB');
});

test('parseOptions: btrfs.min_space (any key case), nothing else', () => {
  assert.deepEqual(parseOptions([]), { minSpace: 0 });
  assert.deepEqual(parseOptions(['btrfs.min_space=10G']), { minSpace: 10 * 1024 * MiB });
  assert.deepEqual(parseOptions(['BTRFS.Min_Space=1m']), { minSpace: MiB });
  assert.throws(() => parseOptions(['btrfs.min_space=lots']), (e: unknown) =>
    e instanceof InvalidOptionError && /btrfs\.min_space/.test(e.message) && /invalid size/.test(e.message));
  assert.throws(() => parseOptions(['btrfs.min_spce=1G']), (e: unknown) =>
    e instanceof InvalidOptionError && e.message.includes(`did you mean ${MIN_SPACE_OPTION}?`) &&
    e.message.includes(`valid options: ${MIN_SPACE_OPTION}`));
  assert.throws(() => parseOptions(['min_space=1G']), /did you mean btrfs\.min_space\?/);
  assert.throws(() => parseOptions(['overlay2.size=1G']), /option of the overlay2 driver/);
  assert.throws(() => parseOptions(['btrfs.min_space']), /malformed/);
  assert.throws(() => parseOptions(['=1G']), /malformed/);
});

test('parseCreateOptions: size, checked against min_space', () => {
  const none = { minSpace: 0 };
  assert.equal(parseCreateOptions(undefined, none), undefined);
  assert.equal(parseCreateOptions({}, none), undefined);
  assert.equal(parseCreateOptions({ storageOpt: {} }, none), undefined);
  assert.equal(parseCreateOptions({ storageOpt: { size: '50M' } }, none), 50 * MiB);
  assert.equal(parseCreateOptions({ storageOpt: { Size: '1g' } }, none), 1024 * MiB);
  const min = { minSpace: 100 * MiB };
  assert.equal(parseCreateOptions({ storageOpt: { size: '100M' } }, min), 100 * MiB);
  assert.throws(() => parseCreateOptions({ storageOpt: { size: '50M' } }, min), (e: unknown) =>
    e instanceof InvalidOptionError && /50MiB cannot be less than btrfs\.min_space 100MiB/.test(e.message));
  assert.throws(() => parseCreateOptions({ storageOpt: { size: '0' } }, none), InvalidOptionError);
  assert.throws(() => parseCreateOptions({ storageOpt: { size: 'big' } }, none), /invalid size/);
  assert.throws(() => parseCreateOptions({ storageOpt: { sise: '1G' } }, none), (e: unknown) =>
    e instanceof InvalidOptionError && /did you mean size\?/.test(e.message) && /valid storage options: size/.test(e.message));
  assert.throws(() => parseCreateOptions({ storageOpt: { inodes: '10' } }, none), /unknown storage option "inodes"/);
  assert.throws(() => parseCreateOptions({ storageOpt: { size: 5 as unknown as string } }, none), TypeError);
  assert.throws(() => parseCreateOptions('x' as unknown as undefined, none), TypeError);
});
