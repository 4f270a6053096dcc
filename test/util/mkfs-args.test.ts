// mkfs-args.test.ts: the engine's dm.mkfsarg strings turned into mkfsExt4 options — the forms
// the engine passes (one argv element each: "-b 4096", "-b4096", or "-b" then "4096"), and a
// named InvalidOptionError for anything mkfsExt4 cannot honour.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidOptionError } from '../../lib/errors';
import { parseMkfsArgs } from '../../lib/util/mkfs-args';

test('no arguments: no options (mkfsExt4 defaults)', () => {
  assert.deepEqual(parseMkfsArgs([]), {});
});

test('each supported option, in each value form', () => {
  assert.deepEqual(parseMkfsArgs(['-b 4096']), { blockSize: 4096 });
  assert.deepEqual(parseMkfsArgs(['-b2048']), { blockSize: 2048 });
  assert.deepEqual(parseMkfsArgs(['-b', '1024']), { blockSize: 1024 });
  assert.deepEqual(parseMkfsArgs(['-L base']), { label: 'base' });
  assert.deepEqual(parseMkfsArgs(['-L', 'sixteen-bytes-ok']), { label: 'sixteen-bytes-ok' });
  assert.deepEqual(parseMkfsArgs(['-N 100000']), { inodes: 100000 });
  assert.deepEqual(parseMkfsArgs(['-i 16384']), { bytesPerInode: 16384 });
  assert.deepEqual(parseMkfsArgs(['-I 256']), { inodeSize: 256 });
  assert.deepEqual(parseMkfsArgs(['-I128']), { inodeSize: 128 });
  assert.deepEqual(parseMkfsArgs(['-m 1']), { reservedPercent: 1 });
  assert.deepEqual(parseMkfsArgs(['-m', '0.5']), { reservedPercent: 0.5 });
  assert.deepEqual(parseMkfsArgs(['-O ^has_journal']), { features: ['^has_journal'] });
  assert.deepEqual(parseMkfsArgs(['-O', 'uninit_bg,^metadata_csum', '-O extents']), { features: ['uninit_bg', '^metadata_csum', 'extents'] });
  assert.deepEqual(parseMkfsArgs(['-E nodiscard']), { discard: false });
  assert.deepEqual(parseMkfsArgs(['-E lazy_itable_init=1']), { lazyItableInit: true });
  assert.deepEqual(parseMkfsArgs(['-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0']),
    { discard: false, lazyItableInit: false, lazyJournalInit: false });
  assert.deepEqual(parseMkfsArgs(['-E discard,lazy_journal_init']), { discard: true, lazyJournalInit: true });
  assert.deepEqual(parseMkfsArgs(['-J size=64']), { journal: true, journalBlocks: 16384 });
  assert.deepEqual(parseMkfsArgs(['-b 1024', '-J size=64']), { blockSize: 1024, journal: true, journalBlocks: 65536 });
  assert.deepEqual(parseMkfsArgs(['-U 6C7A1F0E-2B3D-4E5F-8A9B-0C1D2E3F4A5B']), { uuid: '6c7a1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b' });
  assert.deepEqual(parseMkfsArgs(['-U random']), {});
  assert.deepEqual(parseMkfsArgs(['-t ext4']), {});
  assert.deepEqual(parseMkfsArgs(['-j']), { journal: true });
  assert.deepEqual(parseMkfsArgs(['-q', '-F', '-qF']), {});
});

test('later arguments override earlier ones; a full engine-style list', () => {
  assert.deepEqual(parseMkfsArgs(['-b 1024', '-b 4096']), { blockSize: 4096 });
  assert.deepEqual(parseMkfsArgs(['-m 1', '-L docker-base', '-N 250000', '-E nodiscard,lazy_itable_init=1', '-O ^resize_inode']), {
    reservedPercent: 1, label: 'docker-base', inodes: 250000, discard: false, lazyItableInit: true, features: ['^resize_inode'],
  });
});

test('refused arguments name the argument and the reason', () => {
  const refused: Array<[string[], RegExp]> = [
    [['-b 8192'], /-b must be 1024, 2048 or 4096/],
    [['-b big'], /-b needs a decimal integer/],
    [['-b'], /-b needs a value/],
    [['-L seventeen-bytes!!'], /at most 16 bytes/],
    [['-N 0'], /-N must be from 1/],
    [['-N -5'], /-N needs a decimal integer/],
    [['-i 512'], /-i must be from 1024/],
    [['-I 512'], /-I must be 128 or 256/],
    [['-m 51'], /-m must be from 0 to 50/],
    [['-m x'], /-m needs a percentage/],
    [['-O bigalloc'], /feature "bigalloc" is not supported/],
    [['-O ^quota'], /feature "\^quota" is not supported/],
    [['-E stride=16'], /extended option "stride=16" is not supported/],
    [['-E lazy_itable_init=2'], /lazy_itable_init takes 0 or 1/],
    [['-J device=/dev/sdb'], /journal option "device=\/dev\/sdb" is not supported/],
    [['-J size=1'], /journal must be 1024 to 10240000 blocks/],
    [['-j', '-O ^has_journal'], /a journal was asked for but -O \^has_journal/],
    [['-U not-a-uuid'], /-U needs a UUID/],
    [['-t xfs'], /only ext4 is made in-process/],
    [['-T news'], /mkfs option -T is not supported/],
    [['-c'], /mkfs option -c is not supported/],
    [['-G 32'], /mkfs option -G is not supported/],
    [['-qc'], /-c in a group of switches/],
    [['/dev/sdb'], /not an option/],
    [['-b 4096 -L x'], /-b needs a decimal integer/],
    [[''], /empty argument/],
  ];
  for (const [args, re] of refused) {
    assert.throws(() => parseMkfsArgs(args), (e: unknown) => {
      assert.ok(e instanceof InvalidOptionError, `${JSON.stringify(args)}: ${String(e)}`);
      assert.equal(e.code, 'ERR_GRAPHDRIVER_INVALID_OPTION');
      assert.match(e.message, /^devicemapper: dm\.mkfsarg /, JSON.stringify(args));
      assert.match(e.message, re, JSON.stringify(args));
      return true;
    });
  }
});
