// harness.test.ts: the VM harness from the host. The console splitter and the cpio writer are
// checked without a VM; then test/vm/run itself: the command's output comes through alone and
// its exit status is passed back, the overall timeout kills the VM, SIGTERM of the harness
// leaves no qemu and no temp dir behind, and after a SIGKILL qemu still dies and the next run
// removes the temp dir. The VM tests skip, with the reason, when qemu (or
// busybox-static) is missing, and inside the VM.
import * as assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { projectRoot, vmUnavailableReason } from './boot';
import { ConsoleSplitter } from './console';
import { CpioWriter } from './cpio';
import { which } from './tools';

const vm = { skip: process.env['GRAPHDRIVER_VM'] === '1' ? 'already inside the VM' : (vmUnavailableReason() ?? false) };
const harness = (): string => path.join(projectRoot(), 'test', 'vm', 'run');

/** Feeds `console` to a splitter in chunks of `size` bytes; returns what it forwarded. */
function split(mark: string, console: string, size: number): { output: string; splitter: ConsoleSplitter } {
  const out: Buffer[] = [];
  const splitter = new ConsoleSplitter(mark, (b) => out.push(Buffer.from(b)));
  const bytes = Buffer.from(console);
  for (let i = 0; i < bytes.length; i += size) splitter.push(bytes.subarray(i, i + size));
  return { output: Buffer.concat(out).toString(), splitter };
}

test('console splitter: only the command\'s bytes come through, whatever the chunking', () => {
  const mark = 'graphdriver-vm-0123abcd';
  const transcript = `[    1.2] booting\r\ninit says hi\n${mark}:start\nline 1\nno newline at the end\x01${mark}:end:7\n[    3.1] reboot: Power down\r\n`;
  for (const size of [1, 2, 3, 7, 64, transcript.length]) {
    const { output, splitter } = split(mark, transcript, size);
    assert.equal(output, 'line 1\nno newline at the end', `chunks of ${size}`);
    assert.equal(splitter.endStatus, 7);
    assert.equal(splitter.phase, 'done');
    assert.match(splitter.bootLog(), /init says hi/);
    assert.match(splitter.bootLog(), /Power down/);
  }
  // Output that ends with a newline keeps it; text that merely looks like a marker stays output.
  const { output } = split(mark, `${mark}:start\nok\n\x01graphdriver-vm-other:end:1\n\x01${mark}:end:0\n`, 5);
  assert.equal(output, 'ok\n\x01graphdriver-vm-other:end:1\n');
  // Nothing is held back at the end of a line (the consumer sees it complete right away).
  const forwarded: string[] = [];
  const live = new ConsoleSplitter(mark, (b) => forwarded.push(b.toString()));
  live.push(Buffer.from(`${mark}:start\nready\n`));
  assert.deepEqual(forwarded, ['ready\n']);
});

test('console splitter: a guest that never starts the command forwards nothing', () => {
  const { output, splitter } = split('m', 'Kernel panic - not syncing\n', 4);
  assert.equal(output, '');
  assert.equal(splitter.phase, 'boot');
  assert.match(splitter.bootLog(), /Kernel panic/);
});

test('cpio writer: newc archive that busybox cpio lists and extracts', { skip: which('busybox') === undefined ? 'busybox not found' : false }, () => {
  const cpio = new CpioWriter();
  cpio.dir('d');
  cpio.file('d/odd', Buffer.from('12345'), 0o600);
  cpio.symlink('d/link', 'odd');
  cpio.charDevice('console', 5, 1);
  const archive = cpio.finish();
  assert.equal(archive.length % 4, 0);
  const r = spawnSync(which('busybox')!, ['cpio', '-t', '-v'], { input: archive, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^drwxr-xr-x .* d$/);
  assert.match(lines[1]!, /^-rw------- .* 5 .* d\/odd$/);
  assert.match(lines[2]!, /^lrwxrwxrwx .* d\/link -> odd$/);
  assert.match(lines[3]!, /^crw------- .* console$/);
});

test('test/vm/run: the command\'s output streams through alone, its exit status comes back', vm, () => {
  const r = spawnSync(harness(), ['--', 'sh', '-c', 'echo hello; exit 7'], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.stdout, 'hello\n', `stderr: ${r.stderr}`);
  assert.equal(r.status, 7, `stderr: ${r.stderr}`);
});

test('test/vm/run: --timeout kills the VM and exits 124', vm, () => {
  const r = spawnSync(harness(), ['--timeout', '1', '--', 'sleep', '600'], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 124, `stderr: ${r.stderr}`);
  assert.match(r.stderr, /timed out after 1 s/);
});

/** Pids whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).flatMap((n) => {
    try {
      // The parent pid is the second field after the parenthesised command name.
      const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid ? [Number(n)] : [];
    } catch {
      return [];
    }
  });
}

interface RunningVm {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: () => string;
  qemuPid: number;
  /** The harness's host temp dir (control share, scratch disk). */
  tmpDir: string;
}

/** Starts test/vm/run on a command that prints `ready` and sleeps; resolves once it printed. */
async function startSleepingVm(): Promise<RunningVm> {
  const child = spawn(harness(), ['--', 'sh', '-c', 'echo ready; sleep 600'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  let stdout = '';
  await new Promise<void>((resolve, reject) => {
    // The serial console delivers a few bytes at a time.
    child.stdout!.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (stdout.includes('ready\n')) resolve();
    });
    child.on('close', () => reject(new Error(`the harness ended before the command started: ${stderr}`)));
  });
  const qemuPids = childrenOf(child.pid!);
  assert.equal(qemuPids.length, 1, 'one qemu');
  const cmdline = readFileSync(`/proc/${qemuPids[0]}/cmdline`, 'utf8').split('\0');
  // The control share, -fsdev local,id=gdctl,path=<temp dir>/ctl,...
  const tmpDir = cmdline.map((a) => /path=(.*\/graphdriver-vm-[^/,]+)\/ctl,/.exec(a)?.[1]).find((d) => d !== undefined);
  assert.ok(tmpDir !== undefined && existsSync(tmpDir), `temp dir in ${cmdline.join(' ')}`);
  return { child, exited, stderr: () => stderr, qemuPid: qemuPids[0]!, tmpDir };
}

/** True once `pid` has exited (gone, or a zombie its new parent has not reaped yet). */
async function waitGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 250; i++) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return true;
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

test('test/vm/run: SIGTERM kills qemu, removes the temp dir and exits 143', vm, async () => {
  const run = await startSleepingVm();
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 143, run.stderr());
  assert.ok(await waitGone(run.qemuPid), 'qemu is gone');
  assert.ok(!existsSync(run.tmpDir), 'temp dir removed');
});

test('test/vm/run: SIGKILLed, qemu dies with it (parent-death signal); the next run removes its temp dir', vm, async () => {
  const run = await startSleepingVm();
  run.child.kill('SIGKILL');
  await run.exited;
  assert.ok(await waitGone(run.qemuPid), 'qemu is gone');
  assert.ok(existsSync(run.tmpDir), 'nobody could remove the temp dir yet');
  const next = spawnSync(harness(), ['--timeout', '1', '--', 'true'], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(next.status, 124, next.stderr);
  assert.ok(!existsSync(run.tmpDir), 'the orphaned temp dir was removed');
});
