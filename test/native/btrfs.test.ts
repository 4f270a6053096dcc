// btrfs.test.ts: the btrfs ioctl facade (native/btrfs.cc) against a real loop-device btrfs.
// Results are checked through independent views (stat inode numbers, EROFS on a read-only
// snapshot, the quota tree's own items), and errors through Node's fs error fields, with the
// ioctl's name as `syscall`.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { SyscallError } from '../../lib/errors';
import * as native from '../../lib/native';
import { BTRFS, C } from '../../lib/native';
import { btrfsUnavailable, withBtrfs } from '../helpers/btrfs-fs';
import { withTmpDir } from '../helpers/tmp';

const skip = btrfsUnavailable() ?? false;
const U64_MAX = (1n << 64n) - 1n;

async function withFd<T>(p: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = await native.open(p, C.O_RDONLY | C.O_DIRECTORY, 0);
  try {
    return await fn(fd);
  } finally {
    native.closeSync(fd);
  }
}

/** The quota tree items of one key type for qgroup 0/<id>, or [] when there is no quota tree. */
async function qgroupItems(fd: number, type: number, id: number): Promise<native.BtrfsSearchItem[]> {
  try {
    return await native.btrfsTreeSearch(fd, {
      treeId: BigInt(BTRFS.BTRFS_QUOTA_TREE_OBJECTID), minObjectid: 0n, maxObjectid: 0n, minType: type, maxType: type,
      minOffset: BigInt(id), maxOffset: BigInt(id), maxItems: 16,
    });
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return [];
    throw err;
  }
}

test('constants have the kernel values', () => {
  assert.equal(BTRFS.BTRFS_FIRST_FREE_OBJECTID, 256);
  assert.equal(BTRFS.BTRFS_QUOTA_TREE_OBJECTID, 8);
  assert.equal(BTRFS.BTRFS_QGROUP_STATUS_KEY, 240);
  assert.equal(BTRFS.BTRFS_QGROUP_INFO_KEY, 242);
  assert.equal(BTRFS.BTRFS_QGROUP_LIMIT_KEY, 244);
});

test('subvolume create, snapshot (writable and read-only), tree ids, destroy by name and by id', { skip }, async () => {
  await withBtrfs(async (b) => {
    await withFd(b.mountpoint, async (top) => {
      await native.btrfsSubvolCreate(top, 'a');
      const st = await fsp.stat(path.join(b.mountpoint, 'a'), { bigint: true });
      assert.equal(st.ino, 256n, 'a subvolume root has inode 256');
      await fsp.writeFile(path.join(b.mountpoint, 'a', 'f'), 'in a');
      const aId = await withFd(path.join(b.mountpoint, 'a'), (fd) => native.btrfsInoLookup(fd));
      assert.equal(await native.btrfsInoLookup(top), 5, 'the top-level subvolume is tree 5');
      assert.ok(aId >= 256);

      await withFd(path.join(b.mountpoint, 'a'), async (src) => {
        await native.btrfsSnapCreate(top, 'rw', src, false);
        await native.btrfsSnapCreate(top, 'ro', src, true);
      });
      assert.equal(await fsp.readFile(path.join(b.mountpoint, 'rw', 'f'), 'utf8'), 'in a');
      await fsp.writeFile(path.join(b.mountpoint, 'rw', 'f'), 'changed in rw');
      assert.equal(await fsp.readFile(path.join(b.mountpoint, 'a', 'f'), 'utf8'), 'in a', 'the source is untouched');
      await assert.rejects(fsp.writeFile(path.join(b.mountpoint, 'ro', 'g'), 'x'), { code: 'EROFS' });
      const rwId = await withFd(path.join(b.mountpoint, 'rw'), (fd) => native.btrfsInoLookup(fd));
      const roId = await withFd(path.join(b.mountpoint, 'ro'), (fd) => native.btrfsInoLookup(fd));
      assert.equal(new Set([aId, rwId, roId]).size, 3);

      await native.btrfsSnapDestroy(top, 'rw');
      await native.btrfsSnapDestroy(top, 'ro');
      await native.btrfsSnapDestroyById(top, aId);
      assert.deepEqual(await fsp.readdir(b.mountpoint), []);
    });
  });
});

test('errors: Node-shaped, the ioctl as syscall, the call in the message, the caller in the stack', { skip }, async () => {
  await withBtrfs(async (b) => {
    await withFd(b.mountpoint, async (top) => {
      await native.btrfsSubvolCreate(top, 'a');
      let caught: unknown;
      try {
        await native.btrfsSubvolCreate(top, 'a');
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof SyscallError, String(caught));
      assert.equal(caught.code, 'EEXIST');
      assert.equal(caught.errno, -os.constants.errno.EEXIST);
      assert.equal(caught.syscall, 'BTRFS_IOC_SUBVOL_CREATE');
      assert.ok(caught.message.includes("BTRFS_IOC_SUBVOL_CREATE, 'a'"), caught.message);
      assert.ok((caught.stack ?? '').includes('btrfs.test'), caught.stack);

      await withFd(path.join(b.mountpoint, 'a'), (a) => native.btrfsSubvolCreate(a, 'nested'));
      await assert.rejects(native.btrfsSnapDestroy(top, 'a'), { code: 'ENOTEMPTY', syscall: 'BTRFS_IOC_SNAP_DESTROY' });
      await assert.rejects(native.btrfsSnapDestroy(top, 'missing'), { code: 'ENOENT', syscall: 'BTRFS_IOC_SNAP_DESTROY' });
      await assert.rejects(native.btrfsSubvolCreate(top, 'x'.repeat(5000)), { code: 'ENAMETOOLONG' });
      // The kernel reports a source fd that is not open as EINVAL (older ones as EBADF).
      await assert.rejects(native.btrfsSnapCreate(top, 's', 99999, false), (e: unknown) =>
        e instanceof SyscallError && ['EINVAL', 'EBADF'].includes(e.code) && e.syscall === 'BTRFS_IOC_SNAP_CREATE_V2');
      await assert.rejects(native.btrfsQgroupLimit(top, 256, 1024), { code: 'ENOTCONN', syscall: 'BTRFS_IOC_QGROUP_LIMIT' });
    });
  });
});

test('not btrfs: ENOTTY; bad arguments: TypeError before any ioctl', async (t) => {
  await withTmpDir(async (tmp) => {
    if ((await native.statfs(tmp.path)).f_type === 0x9123683e) {
      t.skip('the temp dir is on btrfs');
      return;
    }
    await withFd(tmp.path, async (fd) => {
      await assert.rejects(native.btrfsSubvolCreate(fd, 'a'), { code: 'ENOTTY', syscall: 'BTRFS_IOC_SUBVOL_CREATE' });
      await assert.rejects(native.btrfsInoLookup(fd), { code: 'ENOTTY', syscall: 'BTRFS_IOC_INO_LOOKUP' });
    });
    assert.deepEqual(await fsp.readdir(tmp.path), []);
  });
  await assert.rejects(async () => native.btrfsSubvolCreate('3' as unknown as number, 'a'), TypeError);
  await assert.rejects(async () => native.btrfsQgroupLimit(3, -1, 5), TypeError);
});

test('quota: status item, enable (simple, else full), qgroup limit item, create/destroy, rescan wait', { skip }, async () => {
  await withBtrfs(async (b) => {
    await withFd(b.mountpoint, async (top) => {
      await native.btrfsSubvolCreate(top, 'a');
      const aId = await withFd(path.join(b.mountpoint, 'a'), (fd) => native.btrfsInoLookup(fd));
      await assert.rejects(native.btrfsTreeSearch(top, {
        treeId: BigInt(BTRFS.BTRFS_QUOTA_TREE_OBJECTID), minObjectid: 0n, maxObjectid: 0n, minType: 240, maxType: 240,
        minOffset: 0n, maxOffset: 0n, maxItems: 1,
      }), { code: 'ENOENT', syscall: 'BTRFS_IOC_TREE_SEARCH' }, 'no quota tree before quota is enabled');

      let simple = true;
      await native.btrfsQuotaEnableSimple(top).catch((err: unknown) => {
        if ((err as { code?: string }).code !== 'EINVAL') throw err;
        simple = false;
      });
      if (!simple) await native.btrfsQuotaEnable(top);
      await native.btrfsQuotaRescanWait(top);
      const [status] = await native.btrfsTreeSearch(top, {
        treeId: BigInt(BTRFS.BTRFS_QUOTA_TREE_OBJECTID), minObjectid: 0n, maxObjectid: 0n, minType: 240, maxType: 240,
        minOffset: 0n, maxOffset: 0n, maxItems: 1,
      });
      assert.ok(status !== undefined && status.type === 240 && status.data.length >= 32);
      const flags = status.data.readBigUInt64LE(16);
      assert.equal(flags & BigInt(BTRFS.BTRFS_QGROUP_STATUS_FLAG_ON), 1n);
      assert.equal((flags & BigInt(BTRFS.BTRFS_QGROUP_STATUS_FLAG_SIMPLE_MODE)) !== 0n, simple);

      // Enabling made qgroup 0/<id> for the existing subvolume; the limit lands in its limit item.
      assert.equal((await qgroupItems(top, BTRFS.BTRFS_QGROUP_INFO_KEY, aId)).length, 1);
      await native.btrfsQgroupLimit(top, aId, 50 * 1024 * 1024);
      const [limit] = await qgroupItems(top, BTRFS.BTRFS_QGROUP_LIMIT_KEY, aId);
      assert.ok(limit !== undefined);
      // struct btrfs_qgroup_limit_item { le64 flags, max_rfer, ... }
      assert.equal(limit.data.readBigUInt64LE(0) & 1n, 1n, 'BTRFS_QGROUP_LIMIT_MAX_RFER');
      assert.equal(limit.data.readBigUInt64LE(8), 50n * 1024n * 1024n);
      // max_rfer 2^64-1 is the kernel's "clear": the MAX_RFER flag goes away.
      await native.btrfsQgroupLimit(top, aId, U64_MAX);
      const [cleared] = await qgroupItems(top, BTRFS.BTRFS_QGROUP_LIMIT_KEY, aId);
      assert.equal(cleared!.data.readBigUInt64LE(0) & 1n, 0n);

      // A level-1 qgroup (no subvolume behind it) can be made once and destroyed once, in both modes.
      const level1 = 2 ** 48 + 7;
      await native.btrfsQgroupCreate(top, level1);
      await assert.rejects(native.btrfsQgroupCreate(top, level1), { code: 'EEXIST', syscall: 'BTRFS_IOC_QGROUP_CREATE' });
      await native.btrfsQgroupDestroy(top, level1);
      await assert.rejects(native.btrfsQgroupDestroy(top, level1), { code: 'ENOENT', syscall: 'BTRFS_IOC_QGROUP_CREATE' });
    });
  });
});
