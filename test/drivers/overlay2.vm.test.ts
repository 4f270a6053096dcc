// overlay2.vm.test.ts: overlay2 on the VM's Debian 6.1 kernel, where the host cannot test it
// (a VM suite: test/run.mjs boots the VM and runs it there; on the host every test skips).
// 6.1 has no fsconfig `lowerdir+`, so every mount goes through mount(2) with a `lowerdir=`
// string, and chains whose absolute paths do not fit in one page are mounted with relative
// paths from a native thread chdir'd into l/ (mount/apply.ts). And the guest has XFS with
// quotas, so overlay2's size limits (XFS project quotas) run for real. What runs here:
//  - the conformance suite with homes on VM_SCRATCH (ext4 on a real disk; the 9p project tree
//    refuses whiteouts and trusted.* xattrs), and the driver's status saying mount(2) is used;
//  - a chain grown until create refuses it, read through its top: deep enough that only the
//    relative form fits, which mountinfo shows the kernel was given;
//  - overlay2-quota.test.js run in a child with GRAPHDRIVER_TEST_XFS_PRJQUOTA on a loop-device
//    XFS mounted with prjquota, its real-quota test required to run and pass.
// Every directory made here is named graphdriver-test-* in VM_SCRATCH and is unmounted and
// removed (the loop device detached) even when a test fails.
import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants as fsc, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { Driver } from '../../lib/driver';
import { MountLimitError } from '../../lib/errors';
import { getDriver } from '../../lib/index';
import { overlayFeatures } from '../../lib/drivers/overlay2/check';
import { LINK_FILE, LOWER_FILE, Overlay2Layout } from '../../lib/drivers/overlay2/layout';
import { layerMount, parseLinkFile, parseLowerFile } from '../../lib/drivers/overlay2/mounts';
import { MOUNT_DATA_MAX, mountsAt, overlayMethod, readMountInfo, relativeForm } from '../../lib/mount/apply';
import { mountData } from '../../lib/mount/spec';
import { mount } from '../../lib/native';
import { runDriverSuite } from '../conformance/suite';
import { type TarEntry, file, makeTar, whiteout } from '../helpers/tar';
import { mountsUnder, unmountAllUnder } from '../helpers/tmp';

const vmSkip = process.env['GRAPHDRIVER_VM'] === '1' ? false : 'runs inside the VM (node test/run.mjs --vm-only overlay2 boots it)';
const inVm = { skip: vmSkip };

/** What test/run.mjs's leak check looks for: every dir made here carries it. */
const MARK = 'graphdriver-test-';

function scratch(): string {
  const dir = process.env['VM_SCRATCH'];
  assert.ok(dir !== undefined && dir !== '', 'VM_SCRATCH is set');
  return dir;
}

/** A fresh VM_SCRATCH/graphdriver-test-<prefix>* dir, realpath'd (mountinfo shows real paths). */
async function makeScratchDir(prefix: string): Promise<string> {
  return fsp.realpath(await fsp.mkdtemp(path.join(scratch(), `${MARK}${prefix}`)));
}

/** Detaches whatever is still mounted below `dir`, then removes it. */
async function removeScratchDir(dir: string): Promise<void> {
  await unmountAllUnder(dir);
  await fsp.rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Runs `fn` on a driver whose root is a fresh scratch dir; cleans up and removes it whatever happens. */
async function withScratchDriver(prefix: string, fn: (d: Driver, home: string) => Promise<void>): Promise<void> {
  const dir = await makeScratchDir(prefix);
  try {
    const d = await getDriver('overlay2', dir, []);
    try {
      await fn(d, path.join(dir, 'overlay2'));
    } finally {
      await d.cleanup();
    }
  } finally {
    await removeScratchDir(dir);
  }
}

// 1. The conformance suite, every case's root a fresh dir on the scratch disk.
runDriverSuite('overlay2', [{
  label: 'VM scratch, mount(2) fallback',
  options: [],
  skip: vmSkip,
  makeRoot: async () => {
    const root = await makeScratchDir('overlay2-vm-');
    return { root, teardown: () => removeScratchDir(root) };
  },
}]);

test('on this kernel overlay2 mounts with mount(2) and a lowerdir= string (no fsconfig lowerdir+)', inVm, async () => {
  await withScratchDriver('overlay2-status-', async (d, home) => {
    const status = Object.fromEntries(await d.status());
    assert.equal(status['Mount Method'], 'mount(2) with lowerdir=');
    assert.equal(status['Layer Limit'], 'as many as fit in one page of mount data');
    // The probe the status reports, asked directly (cached per process: the driver's answer).
    assert.equal(await overlayMethod(path.join(home, 'l')), 'mount-data');
  });
});

// 2. The relative-path mount. A layer's own file, plus (every tenth layer) a whiteout of its
// parent's file.
function layerEntries(i: number): TarEntry[] {
  const entries = [file(`f-${i}`, `content of ${i}\n`)];
  if (i > 0 && i % 10 === 0) entries.push(whiteout(`f-${i - 1}`));
  return entries;
}

/** The names the merged tree of layer `top` shows: every layer's file but the whited-out ones. */
function expectedNames(top: number): string[] {
  const names: string[] = [];
  for (let i = 0; i <= top; i++) {
    const hiddenByChild = i + 1 <= top && (i + 1) % 10 === 0;
    if (!hiddenByChild) names.push(`f-${i}`);
  }
  return names.sort();
}

/** The overlay super options mountinfo shows for `target` (exactly one mount there). */
async function overlayOptionsAt(target: string): Promise<Map<string, string>> {
  const found = await mountsAt(target);
  assert.equal(found.length, 1, `one mount at ${target}`);
  assert.equal(found[0]!.fsType, 'overlay');
  const options = new Map<string, string>();
  for (const o of found[0]!.superOptions.split(',')) {
    const eq = o.indexOf('=');
    options.set(eq < 0 ? o : o.slice(0, eq), eq < 0 ? '' : o.slice(eq + 1));
  }
  return options;
}

test('a chain grown until create refuses it mounts from relative paths and reads right through its top', { ...inVm, timeout: 1_200_000 }, async (t) => {
  await withScratchDriver('overlay2-chain-', async (d, home) => {
    // Relative entries are 27 bytes (`<26 chars>:`), so a page holds about 150; the kernel's
    // 500 and the driver's own 500 are far above. Stop long before them if nothing refuses.
    const safetyCap = 400;
    let refused: MountLimitError | undefined;
    let count = 0;
    for (; count < safetyCap; count++) {
      const id = `layer-${count}`;
      const parent = count === 0 ? '' : `layer-${count - 1}`;
      try {
        await d.create(id, parent);
      } catch (err) {
        if (!(err instanceof MountLimitError)) throw err;
        refused = err;
        break;
      }
      await d.applyDiff(id, parent, Readable.from([await makeTar(layerEntries(count))]));
    }
    assert.ok(refused !== undefined, `create never refused a chain (stopped at ${safetyCap} layers)`);
    assert.match(refused.message, /even with relative paths/);
    assert.equal(await d.exists(`layer-${count}`), false, 'the refused layer was not made');

    const top = count - 1;
    const topId = `layer-${top}`;
    const layout = new Overlay2Layout(home);
    const rec = {
      id: topId,
      short: parseLinkFile(await fsp.readFile(path.join(layout.layer(topId), LINK_FILE), 'utf8')),
      lowers: parseLowerFile(await fsp.readFile(path.join(layout.layer(topId), LOWER_FILE), 'utf8')),
      committed: false,
    };
    assert.equal(rec.lowers.length, top);
    // The top's mount does not fit in a page with absolute paths: only the relative form can mount it.
    const spec = layerMount(home, rec, overlayFeatures());
    assert.ok(spec !== null);
    assert.ok(Buffer.byteLength(mountData(spec)) > MOUNT_DATA_MAX, `absolute data of ${Buffer.byteLength(mountData(spec))} bytes fits in a page`);
    const relative = relativeForm(spec);
    assert.ok(relative !== undefined && Buffer.byteLength(relative.data) <= MOUNT_DATA_MAX);
    assert.equal(relative.dir, layout.linksDir);
    t.diagnostic(`create refused layer ${count + 1}; the top mounts ${top} lowers: ${Buffer.byteLength(mountData(spec))} bytes ` +
      `of mount data as absolute paths, ${Buffer.byteLength(relative.data)} relative to ${relative.dir}`);

    const merged = await d.get(topId);
    try {
      // The kernel keeps the lowerdir= string as given: relative names of l/, not absolute paths.
      const options = await overlayOptionsAt(merged);
      const lowerEntries = (options.get('lowerdir') ?? '').split(':');
      assert.equal(lowerEntries.length, top);
      assert.deepEqual(lowerEntries, rec.lowers.map((l) => path.basename(l)));
      assert.equal(options.get('upperdir'), `../layers/${topId}/diff`);
      assert.deepEqual(await fsp.readdir(merged).then((n) => n.sort()), expectedNames(top));
      for (const i of [0, 1, Math.floor(top / 2), top - 1, top]) {
        if (!expectedNames(top).includes(`f-${i}`)) continue;
        assert.equal(await fsp.readFile(path.join(merged, `f-${i}`), 'utf8'), `content of ${i}\n`);
      }
      // A whiteout in layer 10 hides layer 9's file, which is still in layer 9's own diff.
      await assert.rejects(fsp.stat(path.join(merged, 'f-9')), { code: 'ENOENT' });
      assert.equal(await fsp.readFile(path.join(layout.diff('layer-9'), 'f-9'), 'utf8'), 'content of 9\n');
      // The mount is writable through the upper dir.
      await fsp.writeFile(path.join(merged, 'written-on-top'), 'top');
      assert.equal(await fsp.readFile(path.join(layout.diff(topId), 'written-on-top'), 'utf8'), 'top');
    } finally {
      await d.put(topId);
    }

    // The top's parent, committed: its own diff over its lowers, as many as the top mounts.
    const committedId = `layer-${top - 1}`;
    const committed = await d.get(committedId);
    try {
      const options = await overlayOptionsAt(committed);
      assert.ok(options.has('ro'), 'a committed layer mounts read-only');
      assert.equal((options.get('lowerdir') ?? '').split(':').length, top);
      assert.deepEqual(await fsp.readdir(committed).then((n) => n.sort()), expectedNames(top - 1));
      await assert.rejects(fsp.writeFile(path.join(committed, 'x'), 'x'), { code: 'EROFS' });
    } finally {
      await d.put(committedId);
    }
    assert.deepEqual(mountsUnder(home), []);
  });
});

// 3. XFS project quotas for real.
/** A tool from the host's /usr the guest shares (PATH in the guest may be minimal). */
function tool(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = path.join(dir, name);
    try {
      accessSync(p, fsc.X_OK);
      return p;
    } catch {
      // not in this dir
    }
  }
  return name;
}

/** An XFS on a loop device over a sparse file in VM_SCRATCH, mounted with prjquota. */
interface LoopXfs {
  mountpoint: string;
  device: string;
}

/**
 * Makes the XFS, runs `fn` on it, and always unmounts it (and anything left mounted below),
 * detaches the loop device and removes the image, also when making it failed half-way.
 */
async function withPrjquotaXfs(fn: (fs: LoopXfs) => Promise<void>): Promise<void> {
  const dir = await makeScratchDir('overlay2-xfs-');
  const image = path.join(dir, 'xfs.img');
  const mountpoint = path.join(dir, 'mnt');
  let device: string | undefined;
  try {
    const fh = await fsp.open(image, 'w', 0o600);
    try {
      await fh.truncate(512 * 1024 * 1024); // xfsprogs refuses filesystems under 300 MiB
    } finally {
      await fh.close();
    }
    device = execFileSync(tool('losetup'), ['--find', '--show', image], { encoding: 'utf8', stdio: 'pipe' }).trim();
    execFileSync(tool('mkfs.xfs'), ['-q', '-f', device], { stdio: 'pipe' });
    await fsp.mkdir(mountpoint, { mode: 0o755 });
    await mount(device, mountpoint, 'xfs', 0, 'prjquota');
    const info = (await readMountInfo()).find((m) => m.mountPoint === mountpoint);
    assert.ok(info !== undefined && info.fsType === 'xfs', `xfs mounted at ${mountpoint}`);
    assert.match(info.superOptions, /(^|,)(prjquota|pquota)(,|$)/, 'mounted with project quota accounting and enforcement');
    await fn({ mountpoint, device });
  } finally {
    // Every step is tried even when an earlier one failed. Overlay mounts a failed test left on
    // the XFS go first, then the XFS itself, then the loop device, then the image.
    try {
      await unmountAllUnder(mountpoint);
    } finally {
      try {
        if (device !== undefined) execFileSync(tool('losetup'), ['--detach', device], { stdio: 'pipe' });
      } finally {
        await fsp.rm(dir, { recursive: true, force: true, maxRetries: 3 });
      }
    }
  }
}

/** Runs node with `args`, resolving its exit status and combined output (never rejects on a status). */
function runNode(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let output = '';
    child.stdout.on('data', (b: Buffer) => { output += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { output += b.toString(); });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

const REAL_QUOTA_TEST = 'real XFS project quota';

test('overlay2-quota.test.js on a real XFS with prjquota: its real-quota test runs and passes', { ...inVm, timeout: 900_000 }, async () => {
  await withPrjquotaXfs(async ({ mountpoint }) => {
    const quotaTests = path.join(__dirname, 'overlay2-quota.test.js');
    const env: NodeJS.ProcessEnv = { ...process.env, GRAPHDRIVER_TEST_XFS_PRJQUOTA: mountpoint };
    // Inherited from our own runner, it would make the child's runner speak its parent protocol, not TAP.
    delete env['NODE_TEST_CONTEXT'];
    const { status, output } = await runNode(['--test', '--test-reporter=tap', quotaTests], env, 600_000);
    const context = `\n--- output of node --test ${quotaTests} ---\n${output}`;
    assert.equal(status, 0, `the quota tests failed${context}`);
    // The real test's own result line (top level, so no indent): passed, and not as a skip.
    const lines = output.split('\n').filter((l) => /^(not )?ok \d+ - /.test(l) && l.includes(REAL_QUOTA_TEST));
    assert.equal(lines.length, 1, `one result line for the real-quota test${context}`);
    assert.match(lines[0]!, /^ok \d+ - /, context);
    assert.doesNotMatch(lines[0]!, /#\s*(SKIP|TODO)/i, `the real-quota test was skipped${context}`);
    assert.match(output, /^# fail 0$/m, context);
    // It cleaned up after itself on the XFS.
    assert.deepEqual(await fsp.readdir(mountpoint), []);
  });
});
