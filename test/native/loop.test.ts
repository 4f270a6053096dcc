// loop.test.ts: the loop and block ioctls (native/loop.cc) and lib/devmapper/loop.ts against
// real loop devices on sparse files in a temp dir. Results are checked through independent
// views: sysfs (/sys/block/loopN/...), fs.stat of the backing file (size, allocated blocks,
// inode), and the kernel's own errors. Every device is detached in a finally, so a failed
// assertion leaves nothing bound (test/run.mjs fails the run on a leaked loop device).
import * as assert from 'node:assert/strict';
import { constants as fsc, existsSync, promises as fsp, readFileSync, statSync } from 'node:fs';
import { test } from 'node:test';
import { SyscallError } from '../../lib/errors';
import { blockDeviceNode, sameDev, splitDev } from '../../lib/devmapper/devno';
import { attachLoop, detachLoop, findLoopFor, getStatus, loopNode, setCapacity } from '../../lib/devmapper/loop';
import type { LoopDevice } from '../../lib/devmapper/loop';
import * as native from '../../lib/native';
import { LOOP } from '../../lib/native';
import { rejectsWithCode } from '../helpers/assert-code';
import { isRoot } from '../helpers/requires-root';
import { makeSparseFile, withTmpDir } from '../helpers/tmp';
import type { TmpDir } from '../helpers/tmp';

const MiB = 1024 * 1024;
const skip = !isRoot() ? 'needs root: loop devices' : !existsSync('/dev/loop-control') ? 'no /dev/loop-control' : false;

function sparseFile(tmp: TmpDir, name: string, size: number): Promise<string> {
  return makeSparseFile(tmp.join(name), size);
}

/** Whether the kernel shows loopN bound (its sysfs loop/ directory exists only then). */
function bound(n: number): boolean {
  return existsSync(`/sys/block/loop${n}/loop`);
}

/** The unbind happens at the device's last close; give the kernel a moment when it is async. */
async function waitUnbound(n: number): Promise<void> {
  for (let i = 0; i < 100 && bound(n); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(bound(n), false, `loop${n} still bound`);
}

/** Runs fn with an attached device and always detaches it (and closes a kept fd). */
async function withLoop<T>(file: string, opts: Parameters<typeof attachLoop>[1], fn: (l: LoopDevice) => Promise<T>): Promise<T> {
  const l = await attachLoop(file, opts);
  try {
    return await fn(l);
  } finally {
    await detachLoop(l).catch((err: unknown) => {
      if (!(err instanceof SyscallError && err.code === 'ENXIO')) throw err;
    });
    await waitUnbound(l.number);
  }
}

test('constants have the kernel values', () => {
  assert.equal(LOOP.LO_FLAGS_READ_ONLY, 1);
  assert.equal(LOOP.LO_FLAGS_AUTOCLEAR, 4);
  assert.equal(LOOP.LO_FLAGS_PARTSCAN, 8);
  assert.equal(LOOP.LO_FLAGS_DIRECT_IO, 16);
  assert.equal(LOOP.LOOP_MAJOR, 7);
});

test('attach (LOOP_CONFIGURE, autoclear): size, status, capacity, discard, find, detach', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const file = await sparseFile(tmp, 'image', 64 * MiB);
    // 4 MiB of data at 8 MiB, on disk, so a discard has blocks to free.
    const fh = await fsp.open(file, 'r+');
    await fh.write(Buffer.alloc(4 * MiB, 0xab), 0, 4 * MiB, 8 * MiB);
    await fh.sync();
    await fh.close();
    const fst = await fsp.stat(file, { bigint: true });

    let number = -1;
    await withLoop(file, { autoclear: true }, async (l) => {
      number = l.number;
      assert.equal(l.method, 'LOOP_CONFIGURE');
      assert.equal(typeof l.fd, 'number', 'autoclear keeps the device open');
      assert.equal(l.path, `/dev/loop${l.number}`);
      const st = await fsp.stat(l.path, { bigint: true });
      assert.ok(sameDev(splitDev(st.rdev), l.dev), 'dev is the node\'s rdev');
      assert.equal(readFileSync(`/sys/block/loop${l.number}/loop/backing_file`, 'utf8').trim(), file);
      assert.equal(readFileSync(`/sys/block/loop${l.number}/loop/autoclear`, 'utf8').trim(), '1');

      assert.equal(await native.blkGetSize64(l.path), 64 * MiB);
      assert.equal(await native.blkGetSize64(l.fd!), 64 * MiB, 'by fd too');
      assert.equal(await native.blkSszGet(l.path), 512);

      const s = await getStatus(l);
      assert.equal(s.number, l.number);
      assert.equal(s.fileName, file.slice(0, LOOP.LO_NAME_SIZE - 1));
      assert.deepEqual(s.flags, { readOnly: false, autoclear: true, partscan: false, directIo: false });
      assert.equal(s.rawFlags, LOOP.LO_FLAGS_AUTOCLEAR);
      assert.equal(s.offset, 0);
      assert.equal(s.sizeLimit, 0);
      assert.equal(s.backing.inode, fst.ino);
      assert.ok(sameDev(s.backing.dev, splitDev(fst.dev)), `backing dev ${JSON.stringify(s.backing.dev)}`);

      // Grow the file: the device keeps its size until LOOP_SET_CAPACITY.
      await fsp.truncate(file, 96 * MiB);
      assert.equal(await native.blkGetSize64(l.path), 64 * MiB);
      await setCapacity(l.path);
      assert.equal(await native.blkGetSize64(l.path), 96 * MiB);

      // BLKDISCARD through the loop device punches the range out of the backing file.
      const before = statSync(file).blocks;
      await native.blkDiscard(l.path, 8 * MiB, 4 * MiB);
      const after = statSync(file).blocks;
      assert.ok(before - after >= (4 * MiB) / 512 - 64, `allocated 512-byte blocks ${before} -> ${after}`);
      const back = Buffer.alloc(4096);
      const rh = await fsp.open(file, 'r');
      await rh.read(back, 0, 4096, 9 * MiB);
      await rh.close();
      assert.ok(back.every((b) => b === 0), 'the discarded range reads as zeroes');

      const found = await findLoopFor(file);
      assert.ok(found !== null);
      assert.equal(found.number, l.number);
      assert.equal(found.path, l.path);
      assert.equal(await findLoopFor(await sparseFile(tmp, 'other', MiB)), null, 'an unattached file has none');
    });
    await rejectsWithCode(() => native.loopGetStatus64(`/dev/loop${number}`), 'ENXIO', 'status after detach');
  }, 'loop-');
});

test('attach the pre-5.8 way (LOOP_SET_FD + LOOP_SET_STATUS64): read-only, autoclear, file name', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const file = await sparseFile(tmp, 'image', 16 * MiB);
    await withLoop(file, { legacy: true, readOnly: true, autoclear: true }, async (l) => {
      assert.equal(l.method, 'LOOP_SET_FD');
      const s = await getStatus(l.path);
      assert.deepEqual(s.flags, { readOnly: true, autoclear: true, partscan: false, directIo: false });
      assert.equal(s.fileName, file.slice(0, LOOP.LO_NAME_SIZE - 1));
      assert.equal(readFileSync(`/sys/block/loop${l.number}/ro`, 'utf8').trim(), '1');
      assert.equal(await native.blkGetSize64(l.path), 16 * MiB);
    });
    // Without autoclear nothing is kept open, and detach by path unbinds.
    await withLoop(file, { legacy: true }, async (l) => {
      assert.equal(l.fd, undefined);
      assert.equal((await getStatus(l)).flags.autoclear, false);
      assert.equal((await getStatus(l)).flags.readOnly, false);
    });
  }, 'loop-');
});

test('direct I/O and a 4 KiB block size, both ways of binding', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const file = await sparseFile(tmp, 'image', 4 * MiB);
    // Without O_DIRECT on the backing filesystem (tmpfs) the kernel keeps buffered I/O.
    const odirect = await fsp.open(file, fsc.O_RDONLY | fsc.O_DIRECT).then(async (h) => { await h.close(); return true; }, () => false);
    for (const legacy of [false, true]) {
      if (legacy && !odirect) {
        // LOOP_SET_DIRECT_IO refuses what LOOP_CONFIGURE quietly drops; loopSetFd unbinds again.
        const e = await rejectsWithCode(() => attachLoop(file, { legacy, directIo: true }), 'EINVAL', 'direct I/O on tmpfs, the old way');
        assert.equal((e as SyscallError).syscall, 'LOOP_SET_DIRECT_IO');
        assert.equal(await findLoopFor(file), null, 'undone: nothing left bound to the file');
        continue;
      }
      await withLoop(file, { legacy, directIo: true, blockSize: 4096 }, async (l) => {
        assert.equal((await getStatus(l)).flags.directIo, odirect, `${l.method}: LO_FLAGS_DIRECT_IO`);
        assert.equal(readFileSync(`/sys/block/loop${l.number}/loop/dio`, 'utf8').trim(), odirect ? '1' : '0');
        assert.equal(await native.blkSszGet(l.path), 4096);
      });
    }
  }, 'loop-');
});

test('binding an already bound device: EBUSY from both ways (what attachLoop retries on)', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const a = await sparseFile(tmp, 'a', 8 * MiB);
    const b = await sparseFile(tmp, 'b', 8 * MiB);
    await withLoop(a, {}, async (l) => {
      const e1 = await rejectsWithCode(() => native.loopConfigure(l.path, b, 0, 0, false), 'EBUSY', 'LOOP_CONFIGURE');
      assert.equal((e1 as SyscallError).syscall, 'LOOP_CONFIGURE');
      assert.equal((e1 as SyscallError).path, l.path);
      const e2 = await rejectsWithCode(() => native.loopSetFd(l.path, b, 0, 0, false), 'EBUSY', 'LOOP_SET_FD');
      assert.equal((e2 as SyscallError).syscall, 'LOOP_SET_FD');
      assert.equal(readFileSync(`/sys/block/loop${l.number}/loop/backing_file`, 'utf8').trim(), a, 'still bound to a');
    });
  }, 'loop-');
});

test('concurrent attaches race for the same free device and all win one (EBUSY retried)', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const files = await Promise.all(Array.from({ length: 8 }, (_, i) => sparseFile(tmp, `f${i}`, MiB)));
    const settled = await Promise.allSettled(files.map((f, i) => attachLoop(f, { legacy: i % 2 === 1 })));
    const attached = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    try {
      for (const r of settled) if (r.status === 'rejected') throw r.reason;
      assert.equal(new Set(attached.map((l) => l.number)).size, 8, 'eight distinct devices');
      for (const [i, l] of attached.entries()) {
        assert.equal(readFileSync(`/sys/block/loop${l.number}/loop/backing_file`, 'utf8').trim(), files[i]);
      }
    } finally {
      for (const l of attached) {
        await detachLoop(l);
        await waitUnbound(l.number);
      }
    }
  }, 'loop-');
});

/** ST_NODEV in statfs f_flags: device nodes on that mount cannot be opened (EACCES). */
const ST_NODEV = 4;

test('a node made with mknod in a caller dir works like /dev/loopN (no udev)', { skip }, async (t) => {
  await withTmpDir(async (tmp) => {
    const file = await sparseFile(tmp, 'image', 8 * MiB);
    // The node dir must be on a mount without nodev (the test VM's /tmp is nodev; its
    // $VM_SCRATCH is not). The node is only a name for the device: where it lives is the caller's.
    let nodes = await tmp.mkdir('nodes');
    if ((await native.statfs(nodes)).f_flags & ST_NODEV) {
      const scratch = process.env['VM_SCRATCH'];
      if (scratch === undefined || (await native.statfs(scratch)).f_flags & ST_NODEV) {
        t.skip('the temp dir is on a nodev mount and there is no $VM_SCRATCH without nodev');
        return;
      }
      nodes = await fsp.mkdtemp(`${scratch}/graphdriver-test-nodes-`);
      t.after(() => fsp.rm(nodes, { recursive: true, force: true }));
    }
    const n = await native.loopCtlGetFree(null);
    const { dev } = await loopNode(n);
    const p = await blockDeviceNode(dev, { name: 'graphdriver-no-such-node', nodeDir: nodes });
    assert.equal(p, `${nodes}/graphdriver-no-such-node`);
    assert.ok(sameDev(splitDev((await fsp.stat(p, { bigint: true })).rdev), dev));
    assert.equal(await blockDeviceNode(dev, { name: 'graphdriver-no-such-node', nodeDir: nodes }), p, 'found again, not remade');
    const b = await native.loopConfigure(p, file, 0, 0, false);
    try {
      assert.equal(b.fd, null);
      assert.ok(sameDev(b.dev, dev));
      assert.equal(readFileSync(`/sys/block/loop${n}/loop/backing_file`, 'utf8').trim(), file);
      assert.equal(await native.blkGetSize64(p), 8 * MiB);
    } finally {
      await native.loopClrFd(p);
      await waitUnbound(n);
    }
    await rejectsWithCode(() => blockDeviceNode(dev, { name: 'graphdriver-no-such-node' }), 'ENOENT', 'no node and no nodeDir');
  }, 'loop-');
});

test('errors: missing file, unbound device, not a block device, bad block size', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const missing = tmp.join('missing');
    const e = await rejectsWithCode(() => attachLoop(missing), 'ENOENT', 'attach a missing file');
    assert.ok(e instanceof SyscallError);
    assert.equal(e.syscall, 'open');
    assert.equal(e.path, missing);
    assert.match(e.stack ?? '', /loop\.test/, 'the stack is the caller\'s');

    const n = await native.loopCtlGetFree(null);
    const { path: free } = await loopNode(n);
    const c = await rejectsWithCode(() => detachLoop(free), 'ENXIO', 'LOOP_CLR_FD on an unbound device');
    assert.equal((c as SyscallError).syscall, 'LOOP_CLR_FD');
    assert.equal((c as SyscallError).path, free);
    await rejectsWithCode(() => getStatus(free), 'ENXIO', 'status of an unbound device');

    const file = await sparseFile(tmp, 'plain', MiB);
    const g = await rejectsWithCode(() => native.blkGetSize64(file), 'ENOTTY', 'BLKGETSIZE64 on a regular file');
    assert.equal((g as SyscallError).syscall, 'BLKGETSIZE64');
    await rejectsWithCode(() => native.loopConfigure(file, file, 0, 0, false), 'ENOTBLK', 'a regular file as the device');
    await assert.rejects(attachLoop(file, { blockSize: 3000 }), { code: 'ERR_GRAPHDRIVER_INVALID_ARGUMENT' });
  }, 'loop-');
});
