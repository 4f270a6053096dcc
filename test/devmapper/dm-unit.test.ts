// dm-unit.test.ts: what lib/devmapper does without a device: the status-line parsers (on
// lines in the kernel's formats), the table builders, argument validation (InvalidArgumentError
// before any ioctl), device-number helpers, and on a kernel without device-mapper the ENOENT
// the driver's init turns into NotSupportedError.
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { InvalidArgumentError, SyscallError } from '../../lib/errors';
import * as dm from '../../lib/devmapper/dm';
import { devString, parseDevString, splitDev } from '../../lib/devmapper/devno';
import * as native from '../../lib/native';
import { DM } from '../../lib/native';

test('DM constants have the kernel values', () => {
  assert.equal(DM.DM_READONLY_FLAG, 1);
  assert.equal(DM.DM_SUSPEND_FLAG, 2);
  assert.equal(DM.DM_STATUS_TABLE_FLAG, 16);
  assert.equal(DM.DM_BUFFER_FULL_FLAG, 256);
  assert.equal(DM.DM_NOFLUSH_FLAG, 1 << 11);
  assert.equal(DM.DM_DATA_OUT_FLAG, 1 << 16);
  assert.equal(DM.DM_DEFERRED_REMOVE, 1 << 17);
  assert.equal(DM.DM_NAME_LEN, 128);
  assert.equal(DM.DM_UUID_LEN, 129);
});

test('parseThinPoolStatus: current kernels, older ones, held root, modes, Fail', () => {
  assert.deepEqual(dm.parseThinPoolStatus('0 141/4161600 34/8192 - rw discard_passdown queue_if_no_space - 1024'), {
    transactionId: 0, usedMetadataBlocks: 141, totalMetadataBlocks: 4161600, usedDataBlocks: 34, totalDataBlocks: 8192,
    heldMetadataRoot: null, mode: 'rw', discard: 'passdown', discardPassdown: true, errorOrQueue: 'queue', needsCheck: false,
    metadataLowWatermark: 1024,
  });
  // Before 4.19 there is no low watermark.
  const old = dm.parseThinPoolStatus('7 10/20 30/40 123 ro no_discard_passdown error_if_no_space needs_check');
  assert.ok(old !== null);
  assert.equal(old.transactionId, 7);
  assert.equal(old.heldMetadataRoot, 123);
  assert.equal(old.mode, 'ro');
  assert.equal(old.discard, 'no_passdown');
  assert.equal(old.discardPassdown, false);
  assert.equal(old.errorOrQueue, 'error');
  assert.equal(old.needsCheck, true);
  assert.equal('metadataLowWatermark' in old, false);
  const oods = dm.parseThinPoolStatus('1 1/2 2/2 - out_of_data_space ignore_discard queue_if_no_space - 5\n');
  assert.equal(oods?.mode, 'out_of_data_space');
  assert.equal(oods?.discard, 'ignore');
  assert.equal(dm.parseThinPoolStatus('Fail'), null);
  for (const bad of ['', 'Error', '0 1/2 3/4 - rw', 'x 1/2 3/4 - rw discard_passdown queue_if_no_space - 1',
    '0 1/2 3/4 - sideways discard_passdown queue_if_no_space - 1', '0 1-2 3/4 - rw discard_passdown queue_if_no_space - 1']) {
    assert.throws(() => dm.parseThinPoolStatus(bad), InvalidArgumentError, JSON.stringify(bad));
  }
});

test('parseThinStatus: mapped sectors, highest, nothing mapped, Fail', () => {
  assert.deepEqual(dm.parseThinStatus('2048 4095'), { mappedSectors: 2048, highestMappedSector: 4095 });
  assert.deepEqual(dm.parseThinStatus('0 -'), { mappedSectors: 0, highestMappedSector: null });
  assert.equal(dm.parseThinStatus('Fail'), null);
  assert.throws(() => dm.parseThinStatus('1'), InvalidArgumentError);
  assert.throws(() => dm.parseThinStatus('a b'), InvalidArgumentError);
});

test('table builders: thin-pool and thin params', () => {
  assert.equal(dm.thinPoolTable({ major: 7, minor: 0 }, { major: 7, minor: 1 }, 128, 32768, ['skip_block_zeroing']),
    '7:0 7:1 128 32768 1 skip_block_zeroing');
  assert.equal(dm.thinPoolTable('/dev/loop0', '7:1', 2097152, 0), '/dev/loop0 7:1 2097152 0 0');
  assert.equal(dm.thinTable({ major: 253, minor: 0 }, 5), '253:0 5');
  assert.equal(dm.thinTable('253:0', 0, { major: 7, minor: 3 }), '253:0 0 7:3');
  for (const bs of [64, 129, 2097152 + 128, 1.5]) {
    assert.throws(() => dm.thinPoolTable('7:0', '7:1', bs, 0), { code: 'ERR_GRAPHDRIVER_INVALID_ARGUMENT' }, String(bs));
  }
  assert.throws(() => dm.thinPoolTable('7:0', '7:1', 128, -1), InvalidArgumentError);
  assert.throws(() => dm.thinPoolTable('7:0 x', '7:1', 128, 0), InvalidArgumentError);
  assert.throws(() => dm.thinPoolTable('7:0', '7:1', 128, 0, ['two words']), InvalidArgumentError);
  assert.throws(() => dm.thinTable('253:0', 2 ** 24), InvalidArgumentError);
  assert.throws(() => dm.thinTable('253:0', -1), InvalidArgumentError);
});

test('names, uuids and ids are refused before any ioctl (InvalidArgumentError)', async () => {
  dm.validateName('a'.repeat(127));
  dm.validateName('docker-8:1-1234-pool');
  for (const bad of ['', 'a'.repeat(128), 'é'.repeat(64), 'a/b', 'control', '.', '..', 'a\0b']) {
    assert.throws(() => dm.validateName(bad), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'name', JSON.stringify(bad));
  }
  dm.validateUuid('');
  dm.validateUuid('u'.repeat(128));
  assert.throws(() => dm.validateUuid('u'.repeat(129)), InvalidArgumentError);
  const e = await dm.createDevice('a/b').then(() => undefined, (err: unknown) => err);
  assert.ok(e instanceof InvalidArgumentError);
  assert.equal(e.code, 'ERR_GRAPHDRIVER_INVALID_ARGUMENT');
  assert.equal(InvalidArgumentError.code, 'ERR_GRAPHDRIVER_INVALID_ARGUMENT');
  assert.equal(e.name, 'InvalidArgumentError');
  await assert.rejects(dm.createDevice('ok', 'u'.repeat(129)), InvalidArgumentError);
  await assert.rejects(dm.createThin('pool', 2 ** 24), InvalidArgumentError);
  await assert.rejects(dm.createSnap('pool', 1, -1), InvalidArgumentError);
  await assert.rejects(dm.setTransactionId('pool', 0, 0.5), InvalidArgumentError);
  await assert.rejects(dm.info({ uuid: '' }), InvalidArgumentError);
  await assert.rejects(dm.info({ major: 0, minor: 1 }), InvalidArgumentError);
  await assert.rejects(dm.loadTable('x', []), InvalidArgumentError);
  await assert.rejects(dm.loadTable('x', [{ start: 0, length: 1, type: 'a-very-long-target-type', params: '' }]), InvalidArgumentError);
  await assert.rejects(dm.message('x', -1, 'm'), InvalidArgumentError);
});

test('native argument checks throw TypeError synchronously-shaped (rejected promise from the facade)', async () => {
  await assert.rejects(native.dmDevStatus(-1, { name: 'a', uuid: 'b' } as unknown as string), TypeError);
  await assert.rejects(native.dmDevStatus(-1, 42 as unknown as string), TypeError);
  await assert.rejects(native.dmTableLoad(-1, 'x', [{ start: 0, length: 1, type: 'linear', params: 'a\0b' }], 0), TypeError);
  await assert.rejects(native.dmTableLoad(-1, 'x', [{ start: -1, length: 1, type: 'linear', params: '' }], 0), TypeError);
});

test('device numbers: split as glibc, print and parse as tables do', () => {
  assert.deepEqual(splitDev(0x0701), { major: 7, minor: 1 });
  assert.deepEqual(splitDev(0xfd03n), { major: 253, minor: 3 });
  // Minors over 255 use the high bits (makedev(259, 70000)).
  const big = (259n << 8n) | (70000n & 0xffn) | ((70000n & ~0xffn) << 12n);
  assert.deepEqual(splitDev(big), { major: 259, minor: 70000 });
  assert.equal(devString({ major: 253, minor: 3 }), '253:3');
  assert.deepEqual(parseDevString('7:12\n'), { major: 7, minor: 12 });
  assert.equal(parseDevString('7-12'), undefined);
});

test('without device-mapper: version() rejects ENOENT on /dev/mapper/control, errno kept',
  { skip: existsSync('/dev/mapper/control') ? 'this kernel has device-mapper (the VM suite covers it)' : false }, async () => {
    for (const call of [() => dm.version(), () => native.dmVersion(-1), () => dm.listDevices()]) {
      const e = await call().then(() => undefined, (err: unknown) => err);
      assert.ok(e instanceof SyscallError, String(e));
      assert.equal(e.code, 'ENOENT');
      assert.equal(e.errno, -2);
      assert.equal(e.syscall, 'open');
      assert.equal(e.path, '/dev/mapper/control');
    }
    await dm.closeControl();
  });
