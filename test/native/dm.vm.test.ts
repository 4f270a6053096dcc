// dm.vm.test.ts: the device-mapper ioctls (native/dm.cc) and lib/devmapper end to end on a
// kernel with device-mapper: run inside the test VM (`test/vm/run -- node --test
// dist/test/native/dm.vm.test.js`), skipped elsewhere. Two loop devices on sparse files in
// $VM_SCRATCH (a real disk) back a thin-pool; thin devices, a snapshot, deferred removal,
// transaction ids and the kernel's errors are checked through independent views: the device
// nodes devtmpfs made (by rdev), sysfs, and the data read back. Every dm device and loop
// device is removed in a finally, also when a step failed.
import * as assert from 'node:assert/strict';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import * as dm from '../../lib/devmapper/dm';
import { blockDeviceNode, devString, sameDev, splitDev } from '../../lib/devmapper/devno';
import { attachLoop, detachLoop } from '../../lib/devmapper/loop';
import type { LoopDevice } from '../../lib/devmapper/loop';
import { SyscallError } from '../../lib/errors';
import * as native from '../../lib/native';
import type { DevNo } from '../../lib/native';
import { rejectsWithCode } from '../helpers/assert-code';
import { isRoot } from '../helpers/requires-root';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const scratch = process.env['VM_SCRATCH'];
const skip = !isRoot() ? 'needs root: device-mapper'
  : scratch === undefined || !existsSync('/dev/mapper/control') ? 'VM suite: needs device-mapper and $VM_SCRATCH (run it with test/vm/run)'
    : false;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` for up to ~5 s (deferred removal and autoclear happen on kernel work queues). */
async function eventually(what: string, cond: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await cond()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for: ${what}`);
}

async function sparseFile(p: string, size: number): Promise<string> {
  const fh = await fsp.open(p, 'w', 0o600);
  await fh.truncate(size);
  await fh.close();
  return p;
}

test('device-mapper: thin-pool, thin devices, snapshot, deferred remove, errors', { skip }, async (t) => {
  const dir = await fsp.mkdtemp(path.join(scratch!, 'graphdriver-test-dm-'));
  const prefix = `gdtest-${process.pid}-`;
  const names = { pool: `${prefix}pool`, thin: `${prefix}thin0`, snap: `${prefix}snap1`, lin: `${prefix}lin`, many: `${prefix}many` };
  const loops: LoopDevice[] = [];
  const handles: FileHandle[] = [];
  let pool: DevNo | undefined;
  let meta: LoopDevice | undefined;
  let data: LoopDevice | undefined;
  try {
    await t.test('version and the thin-pool target', async () => {
      const v = await dm.version();
      assert.equal(v.major, 4);
      assert.ok(v.minor >= 27, `dm ioctl 4.${v.minor}`);
      const tv = await dm.targetVersion('thin-pool');
      assert.equal(tv.length, 3);
      assert.ok(tv[0] >= 1);
      assert.ok((await native.dmListVersions(await dm.control())).some((x) => x.name === 'thin-pool'), 'loaded now');
      await rejectsWithCode(() => dm.targetVersion('no-such-target'), 'EINVAL', 'unknown target');
    });

    await t.test('a thin-pool on two loop devices', async () => {
      const metaFile = await sparseFile(path.join(dir, 'metadata'), 64 * MiB);
      const dataFile = await sparseFile(path.join(dir, 'data'), 1 * GiB);
      meta = await attachLoop(metaFile);
      loops.push(meta);
      // The engine's pattern: the data loop autoclears, held open until the pool holds it.
      data = await attachLoop(dataFile, { autoclear: true });
      loops.push(data);
      assert.equal(typeof data.fd, 'number');

      const created = await dm.createDevice(names.pool, `${prefix}pool-uuid`);
      assert.equal(created.name, names.pool);
      assert.equal(created.uuid, `${prefix}pool-uuid`);
      assert.equal(created.flags.activePresent, false);
      assert.equal(created.targetCount, 0);
      assert.ok(created.dev.major > 0);
      pool = created.dev;

      const params = dm.thinPoolTable(meta.dev, data.dev, 128, 32768, ['skip_block_zeroing']);
      const loaded = await dm.loadTable(names.pool, [{ start: 0, length: GiB / 512, type: 'thin-pool', params }]);
      assert.equal(loaded.flags.inactivePresent, true);
      assert.equal(loaded.flags.activePresent, false);
      const live = await dm.resume(names.pool);
      assert.equal(live.flags.activePresent, true);
      assert.equal(live.flags.inactivePresent, false);
      assert.equal(live.flags.suspended, false);
      assert.equal(live.targetCount, 1);

      // The pool holds the data loop now: our fd can go, the binding stays.
      native.closeSync(data.fd!);
      delete data.fd;
      await sleep(50);
      assert.ok(existsSync(`/sys/block/loop${data.number}/loop`), 'data loop still bound while the pool uses it');

      const st = await dm.tableStatus(names.pool);
      assert.equal(st.targets.length, 1);
      assert.equal(st.targets[0]!.type, 'thin-pool');
      assert.equal(st.targets[0]!.length, GiB / 512);
      const ps = dm.parseThinPoolStatus(st.targets[0]!.params);
      assert.ok(ps !== null, st.targets[0]!.params);
      assert.equal(ps.transactionId, 0);
      assert.equal(ps.usedDataBlocks, 0);
      assert.equal(ps.totalDataBlocks, GiB / (64 * 1024));
      assert.ok(ps.totalMetadataBlocks > 0 && ps.usedMetadataBlocks > 0);
      assert.equal(ps.mode, 'rw');
      assert.equal(ps.needsCheck, false);

      const tbl = await dm.table(names.pool);
      assert.equal(tbl.targets[0]!.type, 'thin-pool');
      // The kernel's table line ends with a space after the features; params are returned as it gave them.
      assert.equal(tbl.targets[0]!.params.trimEnd(), `${devString(meta.dev)} ${devString(data.dev)} 128 32768 1 skip_block_zeroing`);

      const poolDeps = await dm.deps(names.pool);
      assert.equal(poolDeps.length, 2);
      assert.ok(poolDeps.some((d) => sameDev(d, meta!.dev)) && poolDeps.some((d) => sameDev(d, data!.dev)), JSON.stringify(poolDeps));
      assert.deepEqual((await dm.info({ uuid: `${prefix}pool-uuid` }))?.name, names.pool, 'found by uuid');
      assert.deepEqual((await dm.info(pool))?.name, names.pool, 'found by device number');
    });

    await t.test('a thin device: node, size, writes show in both statuses', async () => {
      await dm.createThin(names.pool, 0);
      const dup = await rejectsWithCode(() => dm.createThin(names.pool, 0), 'EEXIST', 'create_thin of a taken id');
      assert.equal((dup as SyscallError).syscall, 'DM_TARGET_MSG');
      assert.equal((dup as SyscallError).path, names.pool);

      await dm.createDevice(names.thin);
      await dm.loadTable(names.thin, [{ start: 0, length: GiB / 512, type: 'thin', params: dm.thinTable(pool!, 0) }]);
      const info = await dm.resume(names.thin);

      const node = await dm.deviceNode(names.thin);
      assert.equal(node, `/dev/dm-${info.dev.minor}`, 'devtmpfs names it dm-<minor>');
      assert.ok(sameDev(splitDev((await fsp.stat(node, { bigint: true })).rdev), info.dev));
      // Without a /dev node: one made in a directory of ours.
      const nodes = path.join(dir, 'nodes');
      await fsp.mkdir(nodes);
      const made = await blockDeviceNode(info.dev, { name: 'not-in-dev', nodeDir: nodes });
      assert.equal(made, path.join(nodes, 'not-in-dev'));
      assert.equal(await native.blkGetSize64(made), GiB);
      assert.equal(await native.blkGetSize64(node), GiB);

      const before = dm.parseThinStatus((await dm.tableStatus(names.thin)).targets[0]!.params);
      assert.deepEqual(before, { mappedSectors: 0, highestMappedSector: null });
      const fh = await fsp.open(node, 'r+');
      try {
        await fh.write(Buffer.alloc(4 * MiB, 0xab), 0, 4 * MiB, 0);
        await fh.sync();
      } finally {
        await fh.close();
      }
      const after = dm.parseThinStatus((await dm.tableStatus(names.thin)).targets[0]!.params);
      assert.ok(after !== null && after.mappedSectors >= (4 * MiB) / 512, JSON.stringify(after));
      assert.ok(after.highestMappedSector !== null && after.highestMappedSector >= (4 * MiB) / 512 - 1);
      const ps = dm.parseThinPoolStatus((await dm.tableStatus(names.pool)).targets[0]!.params);
      assert.ok(ps !== null && ps.usedDataBlocks >= 64, `used data blocks ${ps?.usedDataBlocks}`);

      const thinDeps = await dm.deps(names.thin);
      assert.deepEqual(thinDeps, [pool], 'a thin device depends on its pool');
      const thinTable = await dm.table(names.thin);
      assert.equal(thinTable.targets[0]!.params.trimEnd(), `${devString(pool!)} 0`);
    });

    await t.test('a snapshot of the active origin (suspended around create_snap)', async () => {
      await dm.createSnap(names.pool, 1, 0, { suspendOrigin: names.thin });
      assert.equal((await dm.info(names.thin))?.flags.suspended, false, 'origin resumed');
      await dm.createDevice(names.snap);
      await dm.loadTable(names.snap, [{ start: 0, length: GiB / 512, type: 'thin', params: dm.thinTable(pool!, 1) }]);
      await dm.resume(names.snap);
      const fh = await fsp.open(await dm.deviceNode(names.snap), 'r');
      try {
        const buf = Buffer.alloc(4096);
        await fh.read(buf, 0, 4096, 2 * MiB);
        assert.ok(buf.every((b) => b === 0xab), 'the snapshot has the origin\'s data');
      } finally {
        await fh.close();
      }
      const list = await dm.listDevices();
      for (const n of [names.pool, names.thin, names.snap]) {
        const e = list.find((x) => x.name === n);
        assert.ok(e !== undefined, `${n} listed`);
        assert.ok(sameDev(e.dev, (await dm.info(n))!.dev));
        assert.equal(typeof e.eventNr, 'number');
      }
      assert.equal(list.find((x) => x.name === names.pool)?.uuid, `${prefix}pool-uuid`);
      assert.equal(list.find((x) => x.name === names.thin)?.uuid, '');
    });

    await t.test('kernel errors: EBUSY, EINVAL, ENXIO', async () => {
      // dm_hash_insert answers a taken name or uuid with EBUSY (not EEXIST).
      const e = await rejectsWithCode(() => dm.createDevice(names.pool), 'EBUSY', 'a taken name');
      assert.ok(e instanceof SyscallError);
      assert.equal(e.syscall, 'DM_DEV_CREATE');
      assert.equal(e.path, names.pool);
      await rejectsWithCode(() => dm.createDevice(`${prefix}other`, `${prefix}pool-uuid`), 'EBUSY', 'a taken uuid');
      assert.equal(await dm.info(`${prefix}other`), null, 'nothing made');
      const busy = await rejectsWithCode(() => dm.removeDevice(names.pool), 'EBUSY', 'removing a pool its thin devices hold');
      assert.equal((busy as SyscallError).syscall, 'DM_DEV_REMOVE');
      await rejectsWithCode(() => dm.message(names.pool, 0, 'no_such_message'), 'EINVAL', 'an unknown message');
      await rejectsWithCode(() => dm.message(names.pool, GiB, 'create_thin 9'), 'EINVAL', 'a sector outside the device');
      const nx = await rejectsWithCode(() => dm.suspend(`${prefix}absent`), 'ENXIO', 'no such device');
      assert.equal((nx as SyscallError).path, `${prefix}absent`);
      assert.equal(await dm.info(`${prefix}absent`), null);
      await rejectsWithCode(() => dm.removeDevice(`${prefix}absent`), 'ENXIO', 'remove of no such device');
    });

    await t.test('messages with and without an answer (DM_DATA_OUT_FLAG)', async () => {
      assert.equal(await dm.message(names.pool, 0, 'create_thin 5'), null, 'thin-pool messages answer nothing');
      await dm.deleteThin(names.pool, 5);
      const region = (await dm.message(names.thin, 0, '@stats_create - /1'))?.trim();
      assert.match(region ?? '', /^\d+$/, 'dm-stats answers the region id');
      const listed = await dm.message(names.thin, 0, '@stats_list');
      assert.match(listed ?? '', new RegExp(`^${region}: 0\\+${GiB / 512} `));
      await dm.message(names.thin, 0, `@stats_delete ${region}`);
    });

    await t.test('a table bigger than the first buffer; the inactive table; clear', async () => {
      // 1000 linear targets (built into dm-mod, unlike 'zero'): ~56 KiB of specs in, as much
      // table out (16 KiB first, then grown while DM_BUFFER_FULL_FLAG).
      await dm.createDevice(names.many);
      const m = devString(meta!.dev);
      const targets = Array.from({ length: 1000 }, (_, i) => ({ start: i * 8, length: 8, type: 'linear', params: `${m} ${i * 8}` }));
      const loaded = await dm.loadTable(names.many, targets);
      assert.equal(loaded.flags.inactivePresent, true);
      const inactive = await dm.table(names.many, { inactive: true });
      assert.equal(inactive.targets.length, 1000);
      assert.equal((await dm.table(names.many)).targets.length, 0, 'nothing live yet');
      const cleared = await dm.clearTable(names.many);
      assert.equal(cleared.flags.inactivePresent, false);
      await dm.loadTable(names.many, targets);
      await dm.resume(names.many);
      const live = await dm.table(names.many);
      assert.equal(live.targets.length, 1000);
      assert.deepEqual({ ...live.targets[999]!, params: live.targets[999]!.params.trimEnd() }, { start: 999 * 8, length: 8, type: 'linear', params: `${m} ${999 * 8}` });
      const st = await dm.tableStatus(names.many);
      assert.equal(st.targets.length, 1000, 'status lines too');
      assert.equal(await native.blkGetSize64(await dm.deviceNode(names.many)), 8000 * 512);

      // A read-only linear device over the metadata loop, live through a uuid.
      await dm.createDevice(names.lin, `${prefix}lin-uuid`);
      await dm.loadTable({ uuid: `${prefix}lin-uuid` }, [{ start: 0, length: 2048, type: 'linear', params: `${devString(meta!.dev)} 0` }], { readOnly: true });
      const lin = await dm.resume({ uuid: `${prefix}lin-uuid` });
      assert.equal(lin.flags.readOnly, true);
      assert.deepEqual(await dm.deps(names.lin), [meta!.dev]);
      await dm.removeDevice({ uuid: `${prefix}lin-uuid` });
      await dm.removeDevice(names.many);
      assert.equal(await dm.info(names.lin), null);
    });

    await t.test('deferred removal of an open device, and taking it back', async () => {
      const node = await dm.deviceNode(names.snap);
      let fh = await fsp.open(node, 'r');
      handles.push(fh);
      await rejectsWithCode(() => dm.removeDevice(names.snap), 'EBUSY', 'removing an open device');
      await dm.removeDevice(names.snap, { deferred: true });
      assert.equal((await dm.info(names.snap))?.flags.deferredRemove, true);
      await dm.cancelDeferredRemove(names.snap);
      assert.equal((await dm.info(names.snap))?.flags.deferredRemove, false);
      await fh.close();
      handles.pop();
      await sleep(100);
      assert.ok(await dm.info(names.snap) !== null, 'a cancelled removal leaves the device');

      fh = await fsp.open(node, 'r');
      handles.push(fh);
      await dm.removeDevice(names.snap, { deferred: true });
      const marked = await dm.info(names.snap);
      assert.equal(marked?.flags.deferredRemove, true);
      assert.equal(marked?.openCount, 1);
      await fh.close();
      handles.pop();
      await eventually('the deferred removal at last close', async () => await dm.info(names.snap) === null);
    });

    await t.test('transaction id, deleting thin devices, removing everything', async () => {
      await dm.setTransactionId(names.pool, 0, 1);
      assert.equal(dm.parseThinPoolStatus((await dm.tableStatus(names.pool)).targets[0]!.params)?.transactionId, 1);
      await rejectsWithCode(() => dm.setTransactionId(names.pool, 0, 2), 'EINVAL', 'a stale old transaction id');

      await rejectsWithCode(() => dm.deleteThin(names.pool, 0), 'EBUSY', 'deleting an active thin device');
      await dm.removeDevice(names.thin);
      await dm.deleteThin(names.pool, 0);
      await dm.deleteThin(names.pool, 1);
      const ps = dm.parseThinPoolStatus((await dm.tableStatus(names.pool)).targets[0]!.params);
      assert.equal(ps?.usedDataBlocks, 0, 'every block freed');

      await dm.removeDevice(names.pool);
      assert.equal(await dm.info(names.pool), null);
      // The data loop was autoclear and held only by the pool: it is gone with it.
      await eventually('the data loop autoclears', () => !existsSync(`/sys/block/loop${data!.number}/loop`));
      const left = (await dm.listDevices()).filter((d) => d.name.startsWith(prefix));
      assert.deepEqual(left, []);
    });
  } finally {
    for (const fh of handles) await fh.close().catch(() => undefined);
    // Dependents first; a device left suspended by a failed step is resumed so it can go.
    for (const name of [names.snap, names.thin, names.many, names.lin, names.pool]) {
      for (let i = 0; i < 50; i++) {
        try {
          const inf = await dm.info(name);
          if (inf === null) break;
          if (inf.flags.suspended) await dm.resume(name).catch(() => undefined);
          await dm.removeDevice(name);
          break;
        } catch (err) {
          if (!(err instanceof SyscallError && err.code === 'EBUSY') || i === 49) {
            process.stderr.write(`cleanup: remove ${name}: ${String(err)}\n`);
            break;
          }
          await sleep(100);
        }
      }
    }
    for (const l of loops) {
      const bound = existsSync(`/sys/block/loop${l.number}/loop`) &&
        readFileSync(`/sys/block/loop${l.number}/loop/backing_file`, 'utf8').startsWith(dir);
      if (bound || l.fd !== undefined) await detachLoop(l).catch((err: unknown) => process.stderr.write(`cleanup: detach loop${l.number}: ${String(err)}\n`));
    }
    await dm.closeControl();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
