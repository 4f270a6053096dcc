// mount-api.test.ts: the new mount API facade (fsopen/fsconfig/fsmount/move_mount, fsReadLog)
// against the real kernel, in temp dirs. A refused fs_context leaves the kernel's own message
// in its log, readable from the fsopen fd; errors carry Node's fields and the call itself.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { SyscallError } from '../../lib/errors';
import * as native from '../../lib/native';
import { C, MOUNT_API } from '../../lib/native';
import { skipUnlessRoot } from '../helpers/requires-root';
import { mountsUnder, withTmpDir } from '../helpers/tmp';

const root = { skip: skipUnlessRoot('fsopen(2) needs CAP_SYS_ADMIN') };

test('mount API constants have the kernel values', () => {
  assert.deepEqual([MOUNT_API.FSOPEN_CLOEXEC, MOUNT_API.FSCONFIG_SET_FLAG, MOUNT_API.FSCONFIG_SET_STRING, MOUNT_API.FSCONFIG_CMD_CREATE,
    MOUNT_API.MOUNT_ATTR_RDONLY, MOUNT_API.MOVE_MOUNT_F_EMPTY_PATH], [1, 0, 1, 6, 1, 4]);
});

test('fsopen + fsconfig lowerdir+ (one per layer) + fsmount + move_mount mounts an overlay', root, async () => {
  await withTmpDir(async (tmp) => {
    const [l1, l2, mp] = await Promise.all(['l1', 'l2', 'mp'].map((n) => tmp.mkdir(n)));
    await fsp.writeFile(path.join(l1!, 'from-l1'), '1');
    await fsp.writeFile(path.join(l2!, 'from-l2'), '2');
    const fd = await native.fsopen('overlay', MOUNT_API.FSOPEN_CLOEXEC);
    try {
      await native.fsconfigSetString(fd, 'source', 'overlay');
      await native.fsconfigSetStrings(fd, 'lowerdir+', [l1!, l2!]);
      await native.fsconfigCreate(fd);
      const mfd = await native.fsmount(fd, MOUNT_API.FSMOUNT_CLOEXEC, MOUNT_API.MOUNT_ATTR_RDONLY);
      try {
        await native.moveMount(mfd, '', C.AT_FDCWD, mp!, MOUNT_API.MOVE_MOUNT_F_EMPTY_PATH);
      } finally {
        native.closeSync(mfd);
      }
    } finally {
      native.closeSync(fd);
    }
    assert.deepEqual(mountsUnder(tmp.path), [mp]);
    assert.deepEqual((await fsp.readdir(mp!)).sort(), ['from-l1', 'from-l2']);
    await native.umount2(mp!, 0);
  });
});

test('a refused parameter: SyscallError naming the call, and the kernel\'s message in fsReadLog', root, async () => {
  const fd = await native.fsopen('overlay', MOUNT_API.FSOPEN_CLOEXEC);
  try {
    const err = await native.fsconfigSetString(fd, 'no_such_option', 'x').then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof SyscallError);
    assert.equal(err.code, 'EINVAL');
    assert.equal(err.syscall, 'fsconfig');
    assert.match(err.message, /fsconfig\(\d+, FSCONFIG_SET_STRING, 'no_such_option', 'x', 0\)/);
    const log = native.fsReadLog(fd);
    assert.ok(log.some((m) => m.includes("Unknown parameter 'no_such_option'")), JSON.stringify(log));
    assert.deepEqual(native.fsReadLog(fd), [], 'reading drains the log');
    const batch = await native.fsconfigSetStrings(fd, 'lowerdir+', ['/', '/nonexistent-dir-xyz']).then(() => undefined, (e: unknown) => e);
    assert.equal((batch as { opIndex?: number }).opIndex, 1);
    assert.equal((batch as { code?: string }).code, 'ENOENT');
  } finally {
    native.closeSync(fd);
  }
  await assert.rejects(native.fsopen('no-such-fs-type', 0), { code: 'ENODEV', syscall: 'fsopen' });
});
