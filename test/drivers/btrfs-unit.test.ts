// btrfs-unit.test.ts: what is btrfs-specific beyond the conformance suite, on real loop-device
// btrfs filesystems: layers are subvolumes (inode 256) and snapshots; nested subvolumes made
// inside a layer are deleted with it; a qgroup size limit refuses writes with EDQUOT, is
// persisted and re-applied on get, and its qgroup goes away with the layer; a crash's staging
// leftovers are deleted at init; init elsewhere than btrfs is a PrerequisitesError that
// newDriver skips. Kernel views are read independently (btrfs-progs, the quota tree's items).
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants as fsc, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import type { Driver } from '../../lib/driver';
import { InvalidOptionError, LayerNotFoundError, PrerequisitesError } from '../../lib/errors';
import { getDriver, newDriver } from '../../lib/index';
import * as native from '../../lib/native';
import { BTRFS, C, MS } from '../../lib/native';
import { type BtrfsFs, btrfsUnavailable, withBtrfs } from '../helpers/btrfs-fs';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

const skip = btrfsUnavailable() ?? false;
const MiB = 1024 * 1024;

/** A btrfs with a driver rooted on it; the driver is cleaned up and the filesystem torn down even on failure. */
async function withDriver(options: string[], fn: (d: Driver, fs: BtrfsFs, home: string) => Promise<void>): Promise<void> {
  await withBtrfs(async (fs) => {
    const root = path.join(fs.mountpoint, 'root');
    const d = await getDriver('btrfs', root, options);
    try {
      await fn(d, fs, path.join(root, 'btrfs'));
    } finally {
      await d.cleanup();
    }
  });
}

async function withFd<T>(p: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = await native.open(p, C.O_RDONLY | C.O_DIRECTORY, 0);
  try {
    return await fn(fd);
  } finally {
    native.closeSync(fd);
  }
}

/** Paths of the live subvolumes of the filesystem, as btrfs-progs lists them (independent of the driver). */
function listSubvolumes(mountpoint: string): string[] {
  const out = execFileSync('btrfs', ['subvolume', 'list', mountpoint], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim() !== '').map((l) => l.replace(/^.* path /, ''));
}

/** The quota tree item of `type` for qgroup 0/<id> (undefined if none), read by BTRFS_IOC_TREE_SEARCH. */
async function qgroupItem(mountpoint: string, type: number, id: number): Promise<native.BtrfsSearchItem | undefined> {
  return withFd(mountpoint, async (fd) => (await native.btrfsTreeSearch(fd, {
    treeId: BigInt(BTRFS.BTRFS_QUOTA_TREE_OBJECTID), minObjectid: 0n, maxObjectid: 0n, minType: type, maxType: type,
    minOffset: BigInt(id), maxOffset: BigInt(id), maxItems: 1,
  }))[0]);
}

/** max_rfer of qgroup 0/<id> when its MAX_RFER flag is set, else undefined. */
async function maxRfer(mountpoint: string, id: number): Promise<number | undefined> {
  const item = await qgroupItem(mountpoint, BTRFS.BTRFS_QGROUP_LIMIT_KEY, id);
  if (item === undefined || (item.data.readBigUInt64LE(0) & 1n) === 0n) return undefined;
  return Number(item.data.readBigUInt64LE(8));
}

/** Writes `mib` MiB of data to `file` and fsyncs; resolves to the error that stopped it, if any. */
async function writeMiB(file: string, mib: number): Promise<NodeJS.ErrnoException | undefined> {
  const fh = await fsp.open(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, 0o644);
  const chunk = Buffer.alloc(MiB, 0x5a);
  try {
    for (let i = 0; i < mib; i++) await fh.write(chunk, 0, chunk.length);
    await fh.sync();
    return undefined;
  } catch (err) {
    return err as NodeJS.ErrnoException;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

test('layers are subvolumes: root 0755 0:0 at inode 256, children are writable snapshots; status', { skip }, async () => {
  await withDriver([], async (d, fs, home) => {
    await d.create('base');
    const base = await d.get('base');
    assert.equal(base, path.join(home, 'subvolumes', 'base'));
    const st = await fsp.lstat(base, { bigint: true });
    assert.equal(st.ino, 256n);
    assert.equal(Number(st.mode) & 0o7777, 0o755);
    assert.deepEqual([st.uid, st.gid], [0n, 0n]);
    await fsp.writeFile(path.join(base, 'f'), 'base');
    await d.put('base');
    await d.create('child', 'base');
    const child = await d.get('child');
    assert.equal((await fsp.lstat(child, { bigint: true })).ino, 256n);
    assert.equal(await fsp.readFile(path.join(child, 'f'), 'utf8'), 'base');
    await d.put('child');
    assert.deepEqual(listSubvolumes(fs.mountpoint).sort(), ['root/btrfs/subvolumes/base', 'root/btrfs/subvolumes/child']);
    const status = Object.fromEntries(await d.status());
    assert.equal(status['Backing Filesystem'], 'btrfs');
    assert.equal(status['Quota Enabled'], 'false');
    assert.equal(status['Subvolumes'], '2');
    // A parent can be removed under its children: snapshots are independent.
    await d.remove('base');
    assert.equal(await fsp.readFile(path.join(await d.get('child'), 'f'), 'utf8'), 'base');
    await d.put('child');
    assert.deepEqual(listSubvolumes(fs.mountpoint), ['root/btrfs/subvolumes/child']);
  });
});

test('remove deletes subvolumes nested inside the layer, depth-first; nothing is left', { skip }, async () => {
  await withDriver([], async (d, fs, home) => {
    await d.create('l');
    const p = await d.get('l');
    await fsp.mkdir(path.join(p, 'a', 'b'), { recursive: true });
    await withFd(path.join(p, 'a', 'b'), (fd) => native.btrfsSubvolCreate(fd, 'nested'));
    await fsp.writeFile(path.join(p, 'a', 'b', 'nested', 'data'), 'in nested');
    await withFd(path.join(p, 'a', 'b', 'nested'), (fd) => native.btrfsSubvolCreate(fd, 'deeper'));
    await withFd(p, (fd) => native.btrfsSubvolCreate(fd, 'top-level-nested'));
    await d.put('l');
    assert.equal(listSubvolumes(fs.mountpoint).length, 4);
    await d.remove('l');
    assert.equal(await d.exists('l'), false);
    assert.deepEqual(listSubvolumes(fs.mountpoint), []);
    assert.deepEqual(await fsp.readdir(path.join(home, 'subvolumes')), []);
    assert.deepEqual(await fsp.readdir(path.join(home, 'staging')), []);
  });
});

test('quota: a 50 MiB limit lets 25 MiB through and refuses a further 50 MiB with EDQUOT', { skip }, async () => {
  await withDriver([], async (d, fs, home) => {
    await d.create('base');
    await d.create('q', 'base', { storageOpt: { size: '50M' } });
    assert.equal(await fsp.readFile(path.join(home, 'quotas', 'q'), 'utf8'), String(50 * MiB));
    const qgroup = await withFd(path.join(home, 'subvolumes', 'q'), (fd) => native.btrfsInoLookup(fd));
    assert.equal(await maxRfer(fs.mountpoint, qgroup), 50 * MiB, 'the limit is in force from create on, before any get');
    const p = await d.get('q');
    assert.equal(Object.fromEntries(await d.status())['Quota Enabled'], 'true');

    assert.equal(await writeMiB(path.join(p, 'first'), 25), undefined, '25 MiB fits under 50 MiB');
    // Commit, so the 25 MiB are accounted to the qgroup before the next write is checked against it.
    await withFd(p, (fd) => native.syncfs(fd));
    const err = await writeMiB(path.join(p, 'second'), 50);
    assert.ok(err !== undefined, 'a further 50 MiB went through a 50 MiB limit');
    assert.equal(err.errno, -os.constants.errno.EDQUOT, `expected EDQUOT, got ${err.code} (${err.message})`);
    await d.put('q');

    // A layer without size has no limit; a size below btrfs.min_space is refused before anything is made.
    await d.create('free', 'base');
    assert.equal(await maxRfer(fs.mountpoint, await withFd(path.join(home, 'subvolumes', 'free'), (fd) => native.btrfsInoLookup(fd))), undefined);
  });
});

test('quota: the limit is persisted and re-applied on get; remove destroys the qgroup; cleanup keeps quota on', { skip }, async () => {
  await withDriver([], async (d, fs, home) => {
    await d.create('q', '', { storageOpt: { size: '64M' } });
    const qgroup = await withFd(path.join(home, 'subvolumes', 'q'), (fd) => native.btrfsInoLookup(fd));
    // Lose the limit in the kernel (as a quota disable/enable would); the next first get restores it.
    await withFd(fs.mountpoint, (fd) => native.btrfsQgroupLimit(fd, qgroup, (1n << 64n) - 1n));
    assert.equal(await maxRfer(fs.mountpoint, qgroup), undefined);
    await d.get('q');
    assert.equal(await maxRfer(fs.mountpoint, qgroup), 64 * MiB);
    await d.put('q');

    await d.remove('q');
    assert.deepEqual(await fsp.readdir(path.join(home, 'quotas')), []);
    // Right after remove the qgroup is either destroyed or recorded for a retry: never forgotten.
    const pending = Object.fromEntries(await d.status())['Pending Qgroup Removals'];
    const stillThere = (await qgroupItem(fs.mountpoint, BTRFS.BTRFS_QGROUP_INFO_KEY, qgroup)) !== undefined;
    assert.equal(pending, stillThere ? '1' : '0', `qgroup 0/${qgroup} present: ${stillThere}, pending: ${pending}`);
    // The kernel refuses to destroy a qgroup while the cleaner still drops the subvolume (EBUSY);
    // the driver then retries at cleanup. Wait for the cleaner, so the retry must succeed.
    execFileSync('btrfs', ['subvolume', 'sync', fs.mountpoint], { stdio: 'pipe' });
    await d.cleanup();
    assert.equal(await qgroupItem(fs.mountpoint, BTRFS.BTRFS_QGROUP_INFO_KEY, qgroup), undefined, 'the qgroup is gone');
    const status = Object.fromEntries(await d.status());
    assert.equal(status['Pending Qgroup Removals'], '0');
    assert.equal(status['Quota Enabled'], 'true', 'cleanup never turns quota off');
  });
});

test('btrfs.min_space: quota on at init, smaller sizes refused with InvalidOptionError', { skip }, async () => {
  await withDriver(['btrfs.min_space=100M'], async (d, _fs, home) => {
    const status = Object.fromEntries(await d.status());
    assert.equal(status['Quota Enabled'], 'true');
    assert.equal(status['Min Space'], '100MiB');
    await assert.rejects(d.create('small', '', { storageOpt: { size: '50M' } }), InvalidOptionError);
    await assert.rejects(d.create('typo', '', { storageOpt: { sizee: '1G' } }), /did you mean size\?/);
    assert.deepEqual(await fsp.readdir(path.join(home, 'subvolumes')), []);
    await d.create('big', '', { storageOpt: { size: '100M' } });
    assert.equal(await d.exists('big'), true);
  });
});

test('init deletes what a crash left in staging (nested subvolumes too); layers survive re-init', { skip }, async () => {
  await withBtrfs(async (fs) => {
    const root = path.join(fs.mountpoint, 'root');
    const d1 = await getDriver('btrfs', root, []);
    await d1.create('kept');
    await d1.cleanup();
    const staging = path.join(root, 'btrfs', 'staging');
    await withFd(staging, (fd) => native.btrfsSubvolCreate(fd, 'create-0123456789abcdef'));
    await withFd(path.join(staging, 'create-0123456789abcdef'), (fd) => native.btrfsSubvolCreate(fd, 'nested'));
    await fsp.mkdir(path.join(staging, 'remove-0123456789abcdef', 'plain'), { recursive: true });
    await fsp.writeFile(path.join(staging, 'quota-0123456789abcdef'), '123');
    const d2 = await getDriver('btrfs', root, []);
    try {
      assert.deepEqual(await fsp.readdir(staging), []);
      assert.deepEqual(listSubvolumes(fs.mountpoint), ['root/btrfs/subvolumes/kept']);
      assert.equal(await d2.exists('kept'), true);
      await assert.rejects(d2.get('create-0123456789abcdef'), LayerNotFoundError);
    } finally {
      await d2.cleanup();
    }
  });
});

test('init where home does not exist yet checks its nearest existing ancestor', { skip }, async () => {
  await withBtrfs(async (fs) => {
    const d = await getDriver('btrfs', path.join(fs.mountpoint, 'not', 'yet', 'there'), []);
    await d.create('x');
    assert.equal(await d.exists('x'), true);
    await d.cleanup();
  });
});

test('not on btrfs: PrerequisitesError, and newDriver skips to vfs', { skip: skipUnlessRoot('mounts tmpfs') }, async () => {
  await withTmpDir(async (tmp) => {
    const onDisk = await tmp.mkdir('disk');
    const tmpfs = await tmp.mkdir('tmpfs');
    await native.mount('tmpfs', tmpfs, 'tmpfs', MS.MS_NOSUID, 'size=16m');
    for (const root of [onDisk, tmpfs]) {
      if ((await native.statfs(root)).f_type === 0x9123683e) continue; // the temp dir itself is on btrfs
      await assert.rejects(getDriver('btrfs', root, []), (e: unknown) =>
        e instanceof PrerequisitesError && e.code === 'ERR_GRAPHDRIVER_PREREQUISITES' && /not btrfs/.test(e.message));
      assert.deepEqual(await fsp.readdir(root), [], 'a refused init makes nothing');
      const d = await newDriver(root, [], { priority: ['btrfs', 'vfs'] });
      assert.equal(d.name, 'vfs');
      await d.cleanup();
    }
  }, 'btrfs-prereq-');
});
