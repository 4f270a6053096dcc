// devicemapper.test.ts: what of the devicemapper driver runs on this machine, whose kernel has
// no device-mapper: init fails with NotSupportedError (so selection moves on), and option
// parsing, which touches nothing. Everything that needs a pool runs in the VM suite
// (devicemapper.vm.test.ts).
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { InvalidOptionError, NotSupportedError, getDriver, newDriver } from '../../lib/index';
import { DEFAULT_BASE_SIZE, parseOptions } from '../../lib/drivers/devicemapper/options';
import { withTmpDir } from '../helpers/tmp';

const noDm = existsSync('/dev/mapper/control') ? 'this kernel has device-mapper; the VM suite covers init' : false;

test('init without device-mapper: NotSupportedError, nothing made, and selection moves on', { skip: noDm }, async () => {
  await withTmpDir(async (tmp) => {
    const root = await tmp.mkdir('root');
    await assert.rejects(getDriver('devicemapper', root), (err: unknown) => {
      assert.ok(err instanceof NotSupportedError, String(err));
      assert.match((err as Error).message, /no device-mapper/);
      return true;
    });
    assert.equal(existsSync(`${root}/devicemapper`), false, 'init made its home before checking the kernel');
    const d = await newDriver(root);
    try {
      assert.notEqual(d.name, 'devicemapper');
    } finally {
      await d.cleanup();
    }
  }, 'dm-host-');
});

test('options: defaults, sizes, booleans, percentages', () => {
  const d = parseOptions([]);
  assert.equal(d.baseSize, undefined);
  assert.equal(DEFAULT_BASE_SIZE, 10 * 1024 ** 3);
  assert.equal(d.loopDataSize, 100 * 1024 ** 3);
  assert.equal(d.loopMetadataSize, 2 * 1024 ** 3);
  assert.equal(d.blkDiscard, true);
  assert.equal(d.minFreeSpacePercent, 10);
  assert.equal(d.deferredRemoval, false);
  const o = parseOptions(['dm.basesize=20G', 'DM.LoopDataSize=1G', 'dm.loopmetadatasize=128M', 'dm.blocksize=512K', 'dm.min_free_space=5%',
    'dm.use_deferred_removal=true', 'dm.use_deferred_deletion=1', 'dm.blkdiscard=false', 'dm.mountopt=nodelalloc', 'dm.mountopt=noatime',
    'dm.mkfsarg=-b 4096', 'dm.mkfsarg=-O ^has_journal', 'dm.fs=ext4']);
  assert.equal(o.baseSize, 20 * 1024 ** 3);
  assert.equal(o.loopDataSize, 1024 ** 3);
  assert.equal(o.blockSize, 512 * 1024);
  assert.equal(o.minFreeSpacePercent, 5);
  assert.equal(o.deferredDeletion, true);
  assert.equal(o.blkDiscard, false);
  assert.equal(o.mountOptions, 'nodelalloc,noatime');
  assert.equal(o.mkfs.blockSize, 4096);
  assert.deepEqual(o.mkfs.features, ['^has_journal']);
  // External pools do not discard unless asked, as the engine.
  assert.equal(parseOptions(['dm.thinpooldev=/dev/mapper/mypool']).blkDiscard, false);
  assert.equal(parseOptions(['dm.thinpooldev=mypool']).thinPoolDevice, 'mypool');
});

test('options: refused with the reason', () => {
  const refused = (opts: string[], re: RegExp): void => {
    assert.throws(() => parseOptions(opts), (err: unknown) => err instanceof InvalidOptionError && re.test((err as Error).message));
  };
  refused(['dm.fs=xfs'], /mkfs\.xfs.*never spawns/);
  refused(['dm.fs=btrfs'], /unsupported filesystem/);
  refused(['dm.basesise=10G'], /did you mean dm\.basesize/);
  refused(['overlay2.size=1G'], /option of the overlay2 driver/);
  refused(['dm.blocksize=100K'], /multiple of 64K/);
  refused(['dm.blocksize=2G'], /multiple of 64K from 64K to 1G/);
  refused(['dm.min_free_space=100%'], /percentage/);
  refused(['dm.use_deferred_removal=maybe'], /boolean/);
  refused(['dm.use_deferred_deletion=true'], /needs dm\.use_deferred_removal=true/);
  refused(['dm.datadev=/dev/sdb'], /give both or neither/);
  refused(['dm.thinpooldev=p', 'dm.datadev=/dev/a', 'dm.metadatadev=/dev/b'], /cannot be combined/);
  refused(['dm.thinpooldev=a/b'], /device-mapper name/);
  refused(['dm.mkfsarg=-T huge'], /dm\.mkfsarg "-T huge"/);
  refused(['dm.basesize=0'], /greater than 0/);
  refused(['dm.basesize=1000'], /512-byte sectors/);
  refused(['dm.basesize'], /expected key=value/);
});
