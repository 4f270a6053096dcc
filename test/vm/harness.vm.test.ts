// harness.vm.test.ts: the VM smoke suite. Runs inside the guest (test/run.mjs boots the VM for
// *.vm.test.js files) and checks that the guest is what the VM suites rely on: the Debian 6.1
// kernel rather than the host's, device-mapper with thin provisioning, the filesystems the
// drivers use, a scratch directory on a real block-device filesystem (9p refuses whiteouts and
// trusted.* xattrs) and working loop devices.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

const inVm = { skip: process.env['GRAPHDRIVER_VM'] === '1' ? false : 'runs inside the VM (node test/run.mjs --vm-only boots it)' };

const EXT4_SUPER_MAGIC = 0xef53;
const TMPFS_MAGIC = 0x01021994;

/**
 * The filesystem type of the mount holding `p`, from /proc/self/mountinfo. statfs cannot tell:
 * on 9p (9P2000.L) f_type is the host filesystem's magic.
 */
function mountedFsType(p: string): string {
  const real = realpathSync(p);
  let best: { mountPoint: string; fsType: string } | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const mountPoint = fields[4];
    const fsType = fields[fields.indexOf('-') + 1];
    if (mountPoint === undefined || fsType === undefined) continue;
    const under = real === mountPoint || real.startsWith(mountPoint === '/' ? '/' : `${mountPoint}/`);
    // The last of equally long matches is the one on top.
    if (under && (best === undefined || mountPoint.length >= best.mountPoint.length)) best = { mountPoint, fsType };
  }
  assert.ok(best !== undefined, `a mount holds ${p}`);
  return best.fsType;
}

function scratch(): string {
  const dir = process.env['VM_SCRATCH'];
  assert.ok(dir !== undefined && dir !== '', 'VM_SCRATCH is set');
  return dir;
}

test('the kernel is the guest\'s Debian 6.1, as the harness says', inVm, () => {
  assert.match(os.release(), /^6\.1\./);
  assert.equal(os.release(), process.env['GRAPHDRIVER_VM_KERNEL']);
  assert.match(readFileSync('/proc/version', 'utf8'), /Debian/);
});

test('device-mapper is up: /dev/mapper/control, /proc/misc, thin-pool loaded', inVm, () => {
  assert.ok(statSync('/dev/mapper/control').isCharacterDevice());
  assert.match(readFileSync('/proc/misc', 'utf8'), /^\s*\d+ device-mapper$/m);
  const modules = readFileSync('/proc/modules', 'utf8').split('\n').map((l) => l.split(' ')[0]);
  for (const m of ['dm_mod', 'dm_thin_pool', 'dm_persistent_data', 'dm_bufio', 'loop']) assert.ok(modules.includes(m), m);
});

test('/proc/filesystems has overlay, ext4 and xfs', inVm, () => {
  const names = readFileSync('/proc/filesystems', 'utf8').split('\n').map((l) => l.split('\t').pop());
  for (const fs of ['overlay', 'ext4', 'xfs', 'tmpfs']) assert.ok(names.includes(fs), fs);
});

test('the project tree is shared at its host path, TMPDIR is a tmpfs', inVm, () => {
  assert.ok(existsSync(path.join(process.cwd(), 'package.json')));
  assert.equal(mountedFsType(process.cwd()), '9p');
  assert.equal(os.tmpdir(), '/tmp');
  assert.equal(mountedFsType(os.tmpdir()), 'tmpfs');
  assert.equal(statfsSync(os.tmpdir()).type, TMPFS_MAGIC);
});

test('VM_SCRATCH is writable and on ext4 (the virtio disk), not 9p: whiteouts can be made there', inVm, () => {
  // ext4 on the virtio disk; a tmpfs when the harness ran with --disk 0.
  const fsType = mountedFsType(scratch());
  assert.ok(fsType === 'ext4' || fsType === 'tmpfs', fsType);
  assert.equal(statfsSync(scratch()).type, fsType === 'ext4' ? EXT4_SUPER_MAGIC : TMPFS_MAGIC);
  const dir = mkdtempSync(path.join(scratch(), 'graphdriver-test-vm-'));
  try {
    writeFileSync(path.join(dir, 'file'), 'written in the guest');
    assert.equal(readFileSync(path.join(dir, 'file'), 'utf8'), 'written in the guest');
    // An overlay whiteout is a 0/0 character device; 9p refuses to make one.
    execFileSync('mknod', [path.join(dir, 'whiteout'), 'c', '0', '0']);
    const st = statSync(path.join(dir, 'whiteout'));
    assert.ok(st.isCharacterDevice() && st.rdev === 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a loop device attaches to a file in VM_SCRATCH and detaches', inVm, () => {
  const dir = mkdtempSync(path.join(scratch(), 'graphdriver-test-vm-'));
  try {
    const file = path.join(dir, 'loop.img');
    writeFileSync(file, '');
    execFileSync('truncate', ['-s', '64M', file]);
    const dev = execFileSync('losetup', ['--find', '--show', file], { encoding: 'utf8' }).trim();
    const name = path.basename(dev);
    try {
      assert.match(dev, /^\/dev\/loop\d+$/);
      assert.equal(readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim(), realpathSync(file));
      assert.equal(Number(readFileSync(`/sys/block/${name}/size`, 'utf8')), (64 * 1024 * 1024) / 512);
    } finally {
      execFileSync('losetup', ['--detach', dev]);
    }
    assert.ok(!existsSync(`/sys/block/${name}/loop/backing_file`), 'detached');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
