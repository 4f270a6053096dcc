// overlay2-quota.test.ts: overlay2's size limits (XFS project quotas, lib/drivers/overlay2/quota.ts
// and native/quota.cc). Pure tests of the quota record codec, project-id allocation and dev_t
// split; the addon's quota calls on this machine's filesystems (ext4 /tmp, tmpfs) failing with
// clean Node-shaped errors; the probe refusing a size with its reason (also when told the
// filesystem is xfs, so the mknod / FS_IOC_FSSETXATTR path runs); and the real quota test
// (limits set and enforced through merged/ and on diff/, a copy-up charged to the layer's
// project), which needs XFS with prjquota and runs only where GRAPHDRIVER_TEST_XFS_PRJQUOTA
// names a directory on such a filesystem (overlay2.vm.test.ts makes one in the VM).
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { getDriver } from '../../lib/index';
import { InvalidOptionError, SyscallError } from '../../lib/errors';
import { FsMagic } from '../../lib/fsmagic';
import { BACKING_FS_BLOCK_DEV, Overlay2Layout, QUOTA_FILE } from '../../lib/drivers/overlay2/layout';
import {
  MAX_PROJECT_ID, QuotaControl, devMajorMinor, effectiveSize, formatQuotaRecord, nextProjectId, parseQuotaRecord,
  readQuotaRecord, writeQuotaRecord,
} from '../../lib/drivers/overlay2/quota';
import * as native from '../../lib/native';
import { C } from '../../lib/native';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

const root = { skip: skipUnlessRoot('mknod and FS_IOC_FSSETXATTR') };
const XFS_HOME = process.env['GRAPHDRIVER_TEST_XFS_PRJQUOTA'];
const NO_XFS_REASON = "needs XFS with prjquota (this kernel has no XFS quota; runs in the devicemapper issue's VM harness)";

/** A Node-shaped error from the addon: SyscallError with code, negative errno, syscall and the call in the message. */
function nodeShaped(syscall: string, codes: string[], call: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof SyscallError, `not a SyscallError: ${String(e)}`);
    const err = e as SyscallError & { code: string; errno: number; syscall: string };
    assert.equal(err.syscall, syscall);
    assert.ok(codes.includes(err.code), `unexpected code ${err.code}: ${err.message}`);
    assert.ok(err.errno < 0);
    assert.match(err.message, call);
    return true;
  };
}

async function withDirFd<T>(dir: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = await native.open(dir, C.O_RDONLY | C.O_DIRECTORY, 0);
  try {
    return await fn(fd);
  } finally {
    native.closeSync(fd);
  }
}

test('quota record: format/parse round trip; malformed records refused', () => {
  assert.equal(formatQuotaRecord({ projid: 7, size: 1048576 }), 'projid=7\nsize=1048576\n');
  assert.deepEqual(parseQuotaRecord('projid=7\nsize=1048576\n'), { projid: 7, size: 1048576 });
  assert.deepEqual(parseQuotaRecord(formatQuotaRecord({ projid: MAX_PROJECT_ID, size: 0 })), { projid: MAX_PROJECT_ID, size: 0 });
  assert.throws(() => parseQuotaRecord('projid=7\n'), /size missing/);
  assert.throws(() => parseQuotaRecord('projid=x\nsize=1\n'), /projid missing or not a number/);
  assert.throws(() => parseQuotaRecord('projid=0\nsize=1\n'), RangeError);
  assert.throws(() => parseQuotaRecord(`projid=${MAX_PROJECT_ID + 1}\nsize=1\n`), RangeError);
  assert.throws(() => parseQuotaRecord('garbage\n'), /malformed quota record/);
  assert.throws(() => formatQuotaRecord({ projid: 1, size: -1 }), RangeError);
});

test('project ids: one above the floor and above every id in use; exhaustion is an error', () => {
  assert.equal(nextProjectId([], 1), 1);
  assert.equal(nextProjectId([], 0), 1);
  assert.equal(nextProjectId([0, 0], 1), 1);
  assert.equal(nextProjectId([3, 9, 4], 1), 10);
  assert.equal(nextProjectId([3, 9, 4], 20), 20);
  assert.equal(nextProjectId([MAX_PROJECT_ID - 1], 1), MAX_PROJECT_ID);
  assert.throws(() => nextProjectId([MAX_PROJECT_ID], 1), /exhausted/);
});

test('sizes: the layer size wins over the default; dev_t split as glibc major()/minor()', () => {
  assert.equal(effectiveSize(undefined, 0), 0);
  assert.equal(effectiveSize(undefined, 1 << 20), 1 << 20);
  assert.equal(effectiveSize(5 << 20, 1 << 20), 5 << 20);
  assert.deepEqual(devMajorMinor(0x0803), { major: 8, minor: 3 });
  assert.deepEqual(devMajorMinor(0xfd00), { major: 253, minor: 0 });
  // major 259, minor 0x12345: minor's high bits above bit 8 live at bit 20.
  const dev = (0x12345 & 0xff) | ((259 & 0xfff) << 8) | ((0x12345 & ~0xff) << 12);
  assert.deepEqual(devMajorMinor(dev), { major: 259, minor: 0x12345 });
});

test('quota record file: written atomically, read back; absent or malformed reads as undefined', async () => {
  await withTmpDir(async (tmp) => {
    const dir = await tmp.mkdir('layer');
    assert.equal(await readQuotaRecord(dir), undefined);
    await writeQuotaRecord(dir, { projid: 42, size: 10 << 20 });
    assert.deepEqual(await readQuotaRecord(dir), { projid: 42, size: 10 << 20 });
    assert.deepEqual((await fsp.readdir(dir)).sort(), [QUOTA_FILE]);
    await fsp.writeFile(path.join(dir, QUOTA_FILE), 'nonsense');
    assert.equal(await readQuotaRecord(dir), undefined);
  });
});

test('native: FS_IOC_FSGETXATTR answers here; FS_IOC_FSSETXATTR and quotactl fail Node-shaped', root, async () => {
  await withTmpDir(async (tmp) => {
    const dir = await tmp.mkdir('d');
    const fsx = await withDirFd(dir, (fd) => native.fsGetXattrFd(fd));
    for (const k of ['xflags', 'extsize', 'nextents', 'projid', 'cowextsize'] as const) assert.equal(typeof fsx[k], 'number');
    assert.equal(fsx.projid, 0);
    // ext4 without the project feature (and tmpfs) refuse a project id.
    await assert.rejects(withDirFd(dir, (fd) => native.fsSetProjectFd(fd, 7, true)),
      nodeShaped('ioctl', ['ENOTSUP', 'EOPNOTSUPP', 'ENOTTY', 'EINVAL'], /ioctl\(\d+, FS_IOC_FSSETXATTR, \{projid: 7, .*PROJINHERIT/));
    // A bad fd.
    await assert.rejects(native.fsGetXattrFd(-1), nodeShaped('ioctl', ['EBADF'], /ioctl\(-1, FS_IOC_FSGETXATTR\)/));
    // quotactl on a path that is not a block device, and on a missing one.
    await assert.rejects(native.xfsGetProjectQuota(dir, 1),
      nodeShaped('quotactl', ['ENOTBLK', 'ENODEV', 'ESRCH', 'ENOSYS'], /quotactl\(QCMD\(Q_XGETQUOTA, PRJQUOTA\), '.*', 1\)/));
    await assert.rejects(native.xfsSetProjectLimit(tmp.join('missing'), 1, 1 << 20),
      nodeShaped('quotactl', ['ENOENT'], /quotactl\(QCMD\(Q_XSETQLIM, PRJQUOTA\), '.*missing', 1, \{FS_DQ_BHARD\|FS_DQ_BSOFT: 2048 blocks of 512\}\)/));
    // This machine's block device for /tmp, made as the driver makes it: no project quota on it.
    // EACCES where /tmp is mounted nodev (the VM's tmpfs): quotactl refuses to use the node.
    const { major, minor } = devMajorMinor((await fsp.stat(dir)).dev);
    const node = tmp.join('dev');
    await native.mknod(node, C.S_IFBLK | 0o600, major, minor);
    await assert.rejects(native.xfsGetProjectQuota(node, 1),
      nodeShaped('quotactl', ['ESRCH', 'ENOSYS', 'ENOTTY', 'EINVAL', 'ENODEV', 'ENXIO', 'ENOTBLK', 'EACCES'], /Q_XGETQUOTA/));
    await assert.rejects(native.fsSetProjectFd(0, 2 ** 32, true), RangeError);
  });
});

test('probe: a size is refused with the reason on a filesystem without XFS project quota', root, async () => {
  await withTmpDir(async (tmp) => {
    const layout = new Overlay2Layout(await tmp.mkdir('home', 0o700));
    await fsp.mkdir(layout.layersDir);
    await fsp.mkdir(layout.stagingDir);
    const magic = (await native.statfs(layout.home)).f_type;
    if (magic !== FsMagic.Xfs) {
      await assert.rejects(QuotaControl.probe(layout, magic), (e: unknown) =>
        e instanceof InvalidOptionError && /needs xfs with project quotas; .* is on /.test(e.message));
    }
    // Told it is xfs, the probe goes on: the device node is made, then setting a project id fails.
    await assert.rejects(QuotaControl.probe(layout, FsMagic.Xfs), (e: unknown) =>
      e instanceof InvalidOptionError && /needs xfs with project quotas; (cannot set a project id|project quotas are not enabled)/.test(e.message) &&
      /ENOTSUP|EOPNOTSUPP|ESRCH|ENOTTY/.test(e.message));
    assert.ok((await fsp.lstat(path.join(layout.home, BACKING_FS_BLOCK_DEV))).isBlockDevice());
    assert.deepEqual(await fsp.readdir(layout.stagingDir), [], 'the probe dir is removed');
  });
});

test('driver: overlay2.size and storageOpt size refused with the reason; nothing is created', root, async () => {
  await withTmpDir(async (tmp) => {
    const r = await tmp.mkdir('root', 0o700);
    await assert.rejects(getDriver('overlay2', r, ['overlay2.size=1G']), (e: unknown) =>
      e instanceof InvalidOptionError && /xfs with project quotas; .* is on (ext4|tmpfs|\w+)/.test(e.message));
    const d = await getDriver('overlay2', r, []);
    try {
      await d.create('plain', '');
      await assert.rejects(d.create('q', '', { storageOpt: { size: '10M' } }), InvalidOptionError);
      await assert.rejects(d.create('q', 'plain', { storageOpt: { size: '10M' } }), /xfs with project quotas/);
      assert.equal(await d.exists('q'), false);
      assert.equal(await d.exists('plain'), true);
      await d.create('q', 'plain', { storageOpt: { size: '0' } });
      assert.equal(await d.exists('q'), true);
    } finally {
      await d.cleanup();
    }
  });
});

test('real XFS project quota: limits enforced on diff/ and through merged/', { skip: XFS_HOME === undefined ? NO_XFS_REASON : false }, async () => {
  const base = XFS_HOME as string;
  const home = await fsp.mkdtemp(path.join(base, 'graphdriver-quota-'));
  const d = await getDriver('overlay2', home, ['overlay2.size=4M']);
  try {
    await d.create('base', '');
    // A file in base for 'small' to copy up (base has no parent: get is its diff/, unmounted).
    const basePath = await d.get('base');
    try {
      await fsp.writeFile(path.join(basePath, 'lower-file'), Buffer.alloc(256 << 10, 1));
    } finally {
      await d.put('base');
    }
    await d.create('small', 'base', { storageOpt: { size: '1M' } });
    const layout = new Overlay2Layout(path.join(home, 'overlay2'));
    const homeOf = async (id: string): Promise<string> => {
      for (const h of [layout, new Overlay2Layout(home)]) {
        if (await fsp.stat(h.layer(id)).then(() => true, () => false)) return h.layer(id);
      }
      throw new Error(`no layer dir for ${id}`);
    };
    const baseRec = await readQuotaRecord(await homeOf('base'));
    const smallRec = await readQuotaRecord(await homeOf('small'));
    assert.equal(baseRec?.size, 4 << 20);
    assert.equal(smallRec?.size, 1 << 20);
    assert.ok(baseRec !== undefined && smallRec !== undefined && smallRec.projid > baseRec.projid);
    const diffFsx = await withDirFd(path.join(await homeOf('small'), 'diff'), (fd) => native.fsGetXattrFd(fd));
    assert.equal(diffFsx.projid, smallRec.projid);
    assert.ok((diffFsx.xflags & native.QUOTA.FS_XFLAG_PROJINHERIT) !== 0);
    const dev = path.join(path.dirname(path.dirname(await homeOf('small'))), BACKING_FS_BLOCK_DEV);
    const q = await native.xfsGetProjectQuota(dev, smallRec.projid);
    assert.equal(q.blockHardLimitBytes, 1 << 20);
    const used = async (): Promise<number> => (await native.xfsGetProjectQuota(dev, smallRec.projid)).usedBytes;
    const merged = await d.get('small');
    try {
      // A copy-up is made in work/ and renamed into diff/: both in the layer's project, so the
      // rename works (XFS refuses one across projects with EXDEV) and the copy is charged here.
      const beforeCopyUp = await used();
      await fsp.appendFile(path.join(merged, 'lower-file'), 'appended');
      assert.equal((await fsp.stat(path.join(await homeOf('small'), 'diff', 'lower-file'))).size, (256 << 10) + 'appended'.length);
      assert.ok(await used() >= beforeCopyUp + (256 << 10), 'the copied-up file is charged to the layer\'s project');
      await fsp.writeFile(path.join(merged, 'fits'), Buffer.alloc(256 << 10));
      await assert.rejects(fsp.writeFile(path.join(merged, 'too-big'), Buffer.alloc(2 << 20)), /EDQUOT|ENOSPC/);
      assert.ok(await used() <= 1 << 20, 'usage stays within the limit');
      // Written straight into diff/ (new files inherit the project), the limit holds too.
      await assert.rejects(fsp.writeFile(path.join(await homeOf('small'), 'diff', 'direct'), Buffer.alloc(1 << 20)), /EDQUOT|ENOSPC/);
    } finally {
      await d.put('small');
    }
  } finally {
    await d.cleanup();
    await fsp.rm(home, { recursive: true, force: true });
  }
});
