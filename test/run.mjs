// run.mjs: the runner `npm test` calls after tsc. Finds every compiled test file
// (dist/test/**/*.test.js) and runs them with node:test, one file at a time (tests mount and
// unmount, so files never run concurrently). Prints nothing of its own on success, so the
// node:test summary ("# pass N", "# fail N", ...) closes the output; exits with node's code.
//
// Files named *.vm.test.js are VM suites: they need a kernel with device-mapper, so they run in
// a qemu VM (test/vm/run, see test/vm/README.md). On the host, after the other files, the
// runner boots the VM and runs `node test/run.mjs --vm-only <filters>` in it, which runs just
// the VM suites there with its own leak check. `--vm-only` on the host skips the host phase.
// When qemu is missing the VM phase prints `# skipped VM suites: <reason>` and does not fail.
// Inside the VM (GRAPHDRIVER_VM=1) the runner never boots another one.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(repo, 'dist', 'test');
const inGuest = process.env.GRAPHDRIVER_VM === '1';
/** test/vm/run's status when the VM cannot run on this machine (no qemu, ...). */
const VM_UNAVAILABLE = 77;

/** Every *.test.js under `d`, sorted, as absolute paths. */
function findTests(d) {
  const out = [];
  for (const ent of readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, ent.name);
    if (ent.isDirectory()) out.push(...findTests(p));
    else if (ent.isFile() && ent.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

if (!existsSync(dir)) {
  process.stderr.write(`test/run.mjs: ${dir} does not exist; run \`npx tsc -p .\` first\n`);
  process.exit(1);
}
// Optional filter: `node test/run.mjs registry native/` runs files whose path contains any word.
const args = process.argv.slice(2);
const vmOnly = args.includes('--vm-only');
const filters = args.filter((a) => a !== '--vm-only');
const selected = findTests(dir).filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)));
const isVmSuite = (f) => f.endsWith('.vm.test.js');
const hostFiles = vmOnly ? [] : selected.filter((f) => !isVmSuite(f));
const vmFiles = inGuest && !vmOnly ? [] : selected.filter(isVmSuite);
if (hostFiles.length === 0 && vmFiles.length === 0) {
  process.stderr.write(`test/run.mjs: no ${vmOnly ? 'VM ' : ''}test files found under ${dir}${filters.length > 0 ? ` matching ${filters.join(' ')}` : ''}\n`);
  process.exit(1);
}

// What the tests leave behind on the machine: mounts, loop devices, device-mapper devices and
// temp dirs of theirs. On the host only those marked as a test's (other things run there too);
// in the VM nothing else runs, so every new mount, loop or dm device counts.
const MARK = 'graphdriver-test-';
function leftovers() {
  const mine = (s) => inGuest || s.includes(MARK);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4]).filter((mp) => mp !== undefined && mine(mp));
  const loops = [];
  const dms = [];
  for (const dev of existsSync('/sys/block') ? readdirSync('/sys/block') : []) {
    const backingFile = `/sys/block/${dev}/loop/backing_file`;
    if (dev.startsWith('loop') && existsSync(backingFile)) {
      const backing = readFileSync(backingFile, 'utf8').trim();
      if (mine(backing)) loops.push(`/dev/${dev} -> ${backing}`);
    }
    // A driver names its devices after its home (a hash), not the marker: every dm device counts.
    const dmName = `/sys/block/${dev}/dm/name`;
    if (dev.startsWith('dm-') && existsSync(dmName)) dms.push(`/dev/${dev} (${readFileSync(dmName, 'utf8').trim()})`);
  }
  const tmpDirs = [os.tmpdir(), ...(inGuest && process.env.VM_SCRATCH ? [process.env.VM_SCRATCH] : [])];
  const dirs = tmpDirs.filter((d) => existsSync(d))
    .flatMap((d) => readdirSync(d).filter((n) => n.startsWith(MARK)).map((n) => path.join(d, n)));
  return { mounts, loops, dms, dirs };
}

/** Runs `files` with node --test, then the leak check; returns the exit status. */
function runHere(files) {
  const before = leftovers();
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit', cwd: repo });
  if (r.error) {
    process.stderr.write(`test/run.mjs: ${r.error.message}\n`);
    return 1;
  }
  // The leak check fails the run; it prints only on failure (to stderr), so the node:test
  // summary stays the closing lines of the output.
  const after = leftovers();
  const fresh = (k) => after[k].filter((x) => !before[k].includes(x));
  const leaked = [...fresh('mounts').map((m) => `mount ${m}`), ...fresh('loops').map((l) => `loop ${l}`),
    ...fresh('dms').map((d) => `device-mapper ${d}`), ...fresh('dirs').map((d) => `dir ${d}`)];
  if (leaked.length > 0) {
    process.stderr.write(`test/run.mjs: the tests left these behind${inGuest ? ' in the VM' : ''}:\n  ${leaked.join('\n  ')}\n`);
    return r.status === 0 ? 1 : (r.status ?? 1);
  }
  return r.status ?? 1;
}

/** Runs a program, forwarding its stderr as it comes, and keeps both outputs. */
function runCapturing(program, argv) {
  return new Promise((resolve) => {
    const child = spawn(program, argv, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => { stdout += b; });
    child.stderr.on('data', (b) => { stderr += b; process.stderr.write(b); });
    child.on('error', (err) => resolve({ status: null, stdout, stderr: `${stderr}${err.message}\n` }));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Boots the VM and runs the selected VM suites in it; returns the exit status. */
async function runInVm() {
  const harness = path.join(repo, 'test', 'vm', 'run');
  // Fetches and builds the kernel and initramfs on first use, and names the guest kernel.
  const prepared = await runCapturing(harness, ['--prepare']);
  if (prepared.status === VM_UNAVAILABLE) {
    const reason = prepared.stderr.trim().split('\n').pop().replace(/^test\/vm\/run: /, '');
    process.stdout.write(`# skipped VM suites: ${reason}\n`);
    return 0;
  }
  if (prepared.status !== 0) {
    process.stderr.write(`test/run.mjs: test/vm/run --prepare failed (status ${prepared.status})\n`);
    return 1;
  }
  const [release, pkg, version] = prepared.stdout.trim().split(' ');
  process.stdout.write(`# VM suites (guest kernel ${release}, ${pkg} ${version}):\n`);
  const r = spawnSync(harness, ['--', 'node', 'test/run.mjs', '--vm-only', ...filters], { stdio: 'inherit', cwd: repo });
  if (r.error) {
    process.stderr.write(`test/run.mjs: ${r.error.message}\n`);
    return 1;
  }
  if (r.status === VM_UNAVAILABLE) {
    process.stdout.write('# skipped VM suites: test/vm/run says the VM cannot run here (see above)\n');
    return 0;
  }
  return r.status ?? 1;
}

let status = 0;
if (hostFiles.length > 0) status = runHere(hostFiles);
if (vmFiles.length > 0) {
  const vmStatus = inGuest ? runHere(vmFiles) : await runInVm();
  if (status === 0) status = vmStatus;
}
process.exit(status);
