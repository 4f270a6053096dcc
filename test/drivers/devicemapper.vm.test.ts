// devicemapper.vm.test.ts: the devicemapper driver on a real kernel with device-mapper (a VM
// suite: test/run.mjs runs it in the qemu guest of test/vm/). Roots live in VM_SCRATCH (a real
// ext4 disk; the pool's loop files are sparse there), with small pools so cases are quick.
// Covered: the conformance suite; the base device and a written layer pass e2fsck -fn; a
// 20-layer chain; pool and metadata surviving cleanup (pool removed, loops gone) and a fresh
// getDriver; an open transaction rolled back at init; deferred removal and deletion of a busy
// device (and the EBUSY without them); status() against the pool's own status line; an
// external pool (dm.thinpooldev) used and left in place, and refused when it holds foreign data.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp, mkdtempSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dm, loop, splitDev } from '../../lib/devmapper';
import { DeviceNames } from '../../lib/drivers/devicemapper/layout';
import { type Driver, ThinPoolError, getDriver } from '../../lib/index';
import * as native from '../../lib/native';
import { bytesToHuman } from '../../lib/util/units';
import { type Variant, runDriverSuite } from '../conformance/suite';
import { removeDmDevicesOf, withDriverRoot } from '../helpers/driver-root';
import { makeTar } from '../helpers/hostile-tar';

const IN_VM = process.env['GRAPHDRIVER_VM'] === '1';
const vmOnly = { skip: IN_VM ? false : 'runs inside the VM (node test/run.mjs --vm-only boots it)', timeout: 600_000 };
const MARK = 'graphdriver-test-dm-';
/** Small and sparse: quick to make, plenty for the tests. */
const SMALL = ['dm.basesize=512M', 'dm.loopdatasize=8G', 'dm.loopmetadatasize=128M'];

function scratch(): string {
  const dir = process.env['VM_SCRATCH'];
  if (dir === undefined || dir === '') throw new Error('VM_SCRATCH is not set');
  return dir;
}

/** A fresh root in VM_SCRATCH, removed (mounts and dm devices under it too) after `fn`. */
function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  return withDriverRoot('devicemapper', (root) => fn(root), 'dm-');
}

/** The dm names of a root's home. */
async function namesOf(root: string): Promise<DeviceNames> {
  const st = await fsp.stat(path.join(root, 'devicemapper'), { bigint: true });
  return new DeviceNames(splitDev(st.dev), st.ino);
}

async function open(root: string, extra: string[] = []): Promise<Driver> {
  return getDriver('devicemapper', root, [...SMALL, ...extra]);
}

/** Runs `fn` with a driver on a fresh root; the driver is cleaned up after, even on failure. */
async function withDriver(fn: (d: Driver, root: string) => Promise<void>, extra: string[] = []): Promise<void> {
  await withRoot(async (root) => {
    const d = await open(root, extra);
    try {
      await fn(d, root);
    } finally {
      await d.cleanup();
    }
  });
}

function e2fsck(node: string): string {
  try {
    return execFileSync('e2fsck', ['-fn', node], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    throw new Error(`e2fsck -fn ${node} exited ${e.status}:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** Activates thin device `thinId` of the pool under a scratch name, runs `fn` on its node, removes it. */
async function withThin<T>(pool: string, thinId: number, sizeBytes: number, fn: (node: string) => Promise<T>): Promise<T> {
  const name = `${MARK}check-${process.pid}-${thinId}`;
  const poolInfo = await dm.info(pool);
  assert.ok(poolInfo !== null, `pool ${pool} is active`);
  await dm.createDevice(name);
  try {
    await dm.loadTable(name, [{ start: 0, length: sizeBytes / 512, type: 'thin', params: dm.thinTable(poolInfo.dev, thinId) }]);
    const info = await dm.resume(name);
    return await fn(await dm.deviceNode(info.dev));
  } finally {
    await dm.removeDevice(name);
  }
}

async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await fsp.readFile(file, 'utf8')) as T;
}

function statusMap(s: Array<[string, string]>): Map<string, string> {
  return new Map(s);
}

if (IN_VM) {
  const variant: Variant = {
    label: 'loopback pool',
    options: SMALL,
    makeRoot: async () => {
      const root = mkdtempSync(path.join(scratch(), MARK));
      return { root, teardown: async () => { await removeDmDevicesOf(root); rmSync(root, { recursive: true, force: true }); } };
    },
  };
  runDriverSuite('devicemapper', [variant]);
}

describe('devicemapper on a real device-mapper', vmOnly, () => {
  test('the base device and a layer written through the driver pass e2fsck -fn', async () => {
    await withDriver(async (d, root) => {
      const home = path.join(root, 'devicemapper');
      const base = await readJson<{ device_id: number; size: number; initialized: boolean }>(path.join(home, 'metadata/base'));
      assert.equal(base.initialized, true);
      assert.equal(base.size, 512 * 1024 ** 2);
      const pool = statusMap(await d.status()).get('Pool Name')!;
      const out = await withThin(pool, base.device_id, base.size, async (node) => e2fsck(node));
      assert.match(out, /Pass 5/);
      await d.create('w');
      const p = await d.get('w');
      await fsp.mkdir(path.join(p, 'dir'));
      for (let i = 0; i < 200; i++) await fsp.writeFile(path.join(p, 'dir', `f${i}`), Buffer.alloc(i * 100, i));
      await fsp.symlink('dir/f1', path.join(p, 'link'));
      await d.put('w');
      const rec = await readJson<{ device_id: number; size: number }>(path.join(home, 'metadata/layers/w'));
      await withThin(pool, rec.device_id, rec.size, async (node) => { e2fsck(node); });
    });
  });

  test('a 20-layer chain: each layer sees its ancestors\' files and its own deletions', async () => {
    await withDriver(async (d) => {
      let parent = '';
      for (let i = 0; i < 20; i++) {
        const id = `c${i}`;
        await d.create(id, parent);
        const entries = [{ name: `f${i}`, data: `layer ${i}` }];
        if (i > 0 && i % 5 === 0) entries.push({ name: `.wh.f${i - 1}`, data: '' });
        await d.applyDiff(id, parent, Readable.from([makeTar(entries)]));
        parent = id;
      }
      const p = await d.get('c19');
      try {
        const names = (await fsp.readdir(p)).sort();
        const expected = Array.from({ length: 20 }, (_, i) => `f${i}`).filter((n) => !['f4', 'f9', 'f14'].includes(n)).sort();
        assert.deepEqual(names, expected);
        assert.equal(await fsp.readFile(path.join(p, 'f0'), 'utf8'), 'layer 0');
      } finally {
        await d.put('c19');
      }
      const changes = await d.changes('c15', 'c14');
      assert.deepEqual(changes.map((c) => `${c.kind} ${c.path}`).sort(), ['1 /f15', '2 /f14']);
      for (let i = 19; i >= 0; i--) await d.remove(`c${i}`);
      assert.equal(statusMap(await d.status()).get('Layers'), '0');
    });
  });

  test('pool and metadata survive cleanup (pool removed, loops gone) and a fresh getDriver', async () => {
    await withRoot(async (root) => {
      const d1 = await open(root);
      await d1.create('keep');
      const p = await d1.get('keep');
      await fsp.writeFile(path.join(p, 'data'), 'kept across restarts');
      await d1.put('keep');
      await d1.create('child', 'keep');
      await d1.cleanup();
      const names = await namesOf(root);
      assert.deepEqual((await dm.listDevices()).filter((x) => x.name.startsWith(names.prefix)), [], 'cleanup left dm devices');
      assert.equal(await loop.findLoopFor(path.join(root, 'devicemapper/devicemapper/data')), null, 'the data loop outlived the pool');
      const d2 = await open(root);
      try {
        assert.equal(await d2.exists('keep'), true);
        assert.equal(await d2.exists('child'), true);
        const q = await d2.get('child');
        assert.equal(await fsp.readFile(path.join(q, 'data'), 'utf8'), 'kept across restarts');
        await d2.put('child');
        await d2.create('more', 'child');
        assert.equal(statusMap(await d2.status()).get('Layers'), '3');
      } finally {
        await d2.cleanup();
      }
    });
  });

  test('a transaction a crash left open is rolled back at init: the device deleted, its record removed', async () => {
    await withRoot(async (root) => {
      const home = path.join(root, 'devicemapper');
      const d1 = await open(root);
      await d1.create('real');
      const pool = statusMap(await d1.status()).get('Pool Name')!;
      // What a process killed between create_snap and set_transaction_id leaves behind.
      const st = dm.parseThinPoolStatus((await dm.tableStatus(pool)).targets[0]!.params)!;
      const ghostId = 4242;
      await fsp.writeFile(path.join(home, 'metadata/transaction-metadata'),
        JSON.stringify({ open_transaction_id: st.transactionId + 1, device_hash: 'ghost', device_id: ghostId }));
      await dm.createThin(pool, ghostId);
      await fsp.writeFile(path.join(home, 'metadata/layers/ghost'),
        JSON.stringify({ device_id: ghostId, size: 512 * 1024 ** 2, transaction_id: st.transactionId + 1, initialized: true, deferred_deleted: false }));
      assert.equal(await d1.exists('ghost'), true);
      await d1.cleanup();
      const d2 = await open(root);
      try {
        assert.equal(await d2.exists('ghost'), false);
        assert.equal(await d2.exists('real'), true);
        await assert.rejects(fsp.stat(path.join(home, 'metadata/layers/ghost')), { code: 'ENOENT' });
        // The thin id is free again: the pool deleted the device.
        await dm.createThin(pool, ghostId);
        await dm.deleteThin(pool, ghostId);
        await d2.create('after', 'real');
        // A create that picked a thin id the pool already had (refused with EEXIST, or killed
        // before sending it): the rollback must not delete the device another layer owns.
        const real = await readJson<{ device_id: number }>(path.join(home, 'metadata/layers/real'));
        const tid = dm.parseThinPoolStatus((await dm.tableStatus(pool)).targets[0]!.params)!.transactionId;
        await fsp.writeFile(path.join(home, 'metadata/transaction-metadata'),
          JSON.stringify({ open_transaction_id: tid + 1, device_hash: 'other', device_id: real.device_id }));
      } finally {
        await d2.cleanup();
      }
      const d3 = await open(root);
      try {
        const p = await d3.get('real');
        assert.deepEqual(await fsp.readdir(p), []);
        await d3.put('real');
        await d3.create('child-of-real', 'real');
      } finally {
        await d3.cleanup();
      }
    });
  });

  test('deferred removal and deletion: a busy device goes when its last user closes it', async () => {
    await withDriver(async (d, root) => {
      const names = await namesOf(root);
      await d.create('busy');
      const p = await d.get('busy');
      await fsp.writeFile(path.join(p, 'held'), 'open while removed');
      const fh = await fsp.open(path.join(p, 'held'), 'r');
      let closed = false;
      try {
        await d.put('busy'); // lazily unmounted; the open file keeps the device busy: removal deferred
        const info = await dm.info(names.layer('busy'));
        assert.ok(info !== null && info.flags.deferredRemove, 'the busy device is marked for deferred removal');
        await d.remove('busy'); // the thin device cannot be deleted yet: deferred deletion
        assert.equal(await d.exists('busy'), false);
        assert.equal(statusMap(await d.status()).get('Deferred Deleted Device Count'), '1');
        assert.equal((await fh.readFile('utf8')), 'open while removed');
        await fh.close();
        closed = true;
        for (let i = 0; i < 50 && (await dm.info(names.layer('busy'))) !== null; i++) await sleep(100);
        assert.equal(await dm.info(names.layer('busy')), null, 'the device outlived its last user');
      } finally {
        if (!closed) await fh.close();
      }
      // The deferred deletion completes at the next cleanup or init.
      await d.cleanup();
      const again = await open(root, ['dm.use_deferred_removal=true', 'dm.use_deferred_deletion=true']);
      try {
        assert.equal(statusMap(await again.status()).get('Deferred Deleted Device Count'), '0');
        await again.create('busy'); // the id is free again
      } finally {
        await again.cleanup();
      }
    }, ['dm.use_deferred_removal=true', 'dm.use_deferred_deletion=true']);
  });

  test('without deferred removal a put of a busy device fails with EBUSY and the layer stays whole', async () => {
    await withDriver(async (d) => {
      await d.create('busy');
      const p = await d.get('busy');
      await fsp.writeFile(path.join(p, 'held'), 'x');
      const fh = await fsp.open(path.join(p, 'held'), 'r');
      try {
        await assert.rejects(d.put('busy'), { code: 'EBUSY', syscall: 'DM_DEV_REMOVE' });
      } finally {
        await fh.close();
      }
      await d.put('busy'); // still counted: the failed put did not drop the get
      await d.remove('busy');
      assert.equal(await d.exists('busy'), false);
    });
  });

  test('status() reports the pool\'s own usage, and min_free_space refuses a create', async () => {
    await withDriver(async (d) => {
      await d.create('big');
      const p = await d.get('big');
      await fsp.writeFile(path.join(p, 'blob'), Buffer.alloc(64 * 1024 ** 2, 7));
      await d.put('big'); // unmounted: written out
      const s = statusMap(await d.status());
      const pool = s.get('Pool Name')!;
      const st = dm.parseThinPoolStatus((await dm.tableStatus(pool)).targets[0]!.params)!;
      const block = 64 * 1024;
      assert.ok(st.usedDataBlocks * block >= 64 * 1024 ** 2, `the pool shows ${st.usedDataBlocks} blocks used`);
      assert.equal(s.get('Data Space Used'), bytesToHuman(st.usedDataBlocks * block));
      assert.equal(s.get('Data Space Total'), bytesToHuman(st.totalDataBlocks * block));
      assert.equal(s.get('Data Space Available'), bytesToHuman((st.totalDataBlocks - st.usedDataBlocks) * block));
      assert.equal(s.get('Metadata Space Used'), bytesToHuman(st.usedMetadataBlocks * 4096));
      assert.equal(s.get('Metadata Space Total'), bytesToHuman(st.totalMetadataBlocks * 4096));
      assert.equal(s.get('Pool Blocksize'), '64KiB');
      assert.equal(s.get('Base Device Size'), '512MiB');
      assert.equal(s.get('Backing Filesystem'), 'ext4');
      assert.match(s.get('Data file') ?? '', /^\/dev\/loop\d+$/);
      assert.match(s.get('Data loop file') ?? '', /devicemapper\/devicemapper\/data$/);
      assert.match(s.get('Metadata loop file') ?? '', /devicemapper\/devicemapper\/metadata$/);
      assert.equal(s.get('Deferred Removal Enabled'), 'false');
    });
    // A 1 GiB pool that must keep 80% free: the 300 MiB written leave too little data space.
    await withDriver(async (d) => {
      await d.create('a');
      const p = await d.get('a');
      await fsp.writeFile(path.join(p, 'blob'), Buffer.alloc(300 * 1024 ** 2, 7));
      await d.put('a');
      await assert.rejects(d.create('b', 'a'), (err: unknown) => err instanceof ThinPoolError && /free data blocks.*dm\.min_free_space=80%/.test((err as Error).message));
      assert.equal(await d.exists('b'), false);
    }, ['dm.loopdatasize=1G', 'dm.min_free_space=80%']);
  });

  test('an external pool (dm.thinpooldev) is used and left in place; one holding foreign data is refused', async () => {
    await withRoot(async (root) => {
      const files = { data: path.join(root, 'ext-data'), meta: path.join(root, 'ext-meta') };
      await fsp.writeFile(files.data, '');
      await fsp.truncate(files.data, 2 * 1024 ** 3);
      await fsp.writeFile(files.meta, '');
      await fsp.truncate(files.meta, 64 * 1024 ** 2);
      const data = await loop.attachLoop(files.data, { autoclear: true });
      const meta = await loop.attachLoop(files.meta, { autoclear: true });
      const pool = `${MARK}ext-pool-${process.pid}`;
      try {
        await dm.createDevice(pool);
        await dm.loadTable(pool, [{ start: 0, length: (2 * 1024 ** 3) / 512, type: 'thin-pool', params: dm.thinPoolTable(meta.dev, data.dev, 128, 1024, ['skip_block_zeroing']) }]);
        await dm.resume(pool);
        const storeRoot = path.join(root, 'store');
        await fsp.mkdir(storeRoot);
        const d = await getDriver('devicemapper', storeRoot, ['dm.basesize=256M', `dm.thinpooldev=/dev/mapper/${pool}`]);
        try {
          await d.create('x');
          const s = statusMap(await d.status());
          assert.equal(s.get('Pool Name'), pool);
          assert.equal(s.has('Data loop file'), false);
          assert.equal(s.get('Data file'), data.path);
        } finally {
          await d.cleanup();
        }
        assert.notEqual(await dm.info(pool), null, 'cleanup removed a pool it did not make');
        // Another home on the same pool, which now holds the first home's data: refused.
        const other = path.join(root, 'other');
        await fsp.mkdir(other);
        await assert.rejects(getDriver('devicemapper', other, ['dm.basesize=256M', `dm.thinpooldev=${pool}`]),
          (err: unknown) => err instanceof ThinPoolError && /already holds data/.test((err as Error).message));
      } finally {
        await removeDmDevicesOf(path.join(root, 'store'));
        await dm.removeDevice(pool).catch(() => undefined);
        for (const l of [data, meta]) if (l.fd !== undefined) native.closeSync(l.fd);
      }
    });
  });
});

describe('devicemapper when the pool fills up', vmOnly, () => {
  test('applyDiff into a full pool fails (ENOSPC/EIO), the layer is left incomplete and removable, the others intact', async () => {
    // A 128 MiB pool under 1 GiB layers: the second 100 MiB file cannot fit.
    await withDriver(async (d) => {
      await d.create('keep');
      await d.applyDiff('keep', '', Readable.from([makeTar([{ name: 'kept', data: 'still here' }])]));
      await d.create('fill', 'keep');
      const big = 'Z'.repeat(100 * 1024 ** 2);
      const tar = makeTar([{ name: 'a.bin', data: big }, { name: 'b.bin', data: big }]);
      const started = Date.now();
      await assert.rejects(d.applyDiff('fill', 'keep', Readable.from([tar])), (err: unknown) => {
        const code = (err as { code?: string }).code;
        assert.ok(code === 'ENOSPC' || code === 'EIO', `unexpected error ${String(err)}`);
        return true;
      });
      // error_if_no_space: no 60 s queueing before the error.
      assert.ok(Date.now() - started < 50_000, `the failing apply took ${Date.now() - started} ms`);
      assert.equal(await d.exists('fill'), false, 'a layer whose apply failed looks complete');
      await assert.rejects(d.create('child', 'fill'), { code: 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND' });
      await d.remove('fill');
      // The space is back (the layer's blocks were discarded and its device deleted).
      const pool = statusMap(await d.status()).get('Pool Name')!;
      const st = dm.parseThinPoolStatus((await dm.tableStatus(pool)).targets[0]!.params)!;
      assert.equal(st.mode, 'rw');
      assert.ok(st.usedDataBlocks < st.totalDataBlocks / 2, `${st.usedDataBlocks}/${st.totalDataBlocks} blocks still used`);
      const p = await d.get('keep');
      try {
        assert.equal(await fsp.readFile(path.join(p, 'kept'), 'utf8'), 'still here');
      } finally {
        await d.put('keep');
      }
      await d.create('again', 'keep');
    }, ['dm.basesize=1G', 'dm.loopdatasize=128M', 'dm.min_free_space=0%']);
  });
});
