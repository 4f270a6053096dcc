// boot.ts: one run of a command in the VM. Makes a private host temp dir (the control share
// and the scratch disk image), boots qemu's microvm under TCG on the cached kernel and
// initramfs, forwards the command's console output, and returns the exit status the guest wrote
// to the control share. qemu is always killed and the temp dir always removed: on exit, on
// SIGINT/SIGTERM/SIGHUP, on the overall timeout and when the guest hangs while booting (then
// the boot is retried once: nothing of the command has run yet).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConsoleSplitter } from './console';
import { type Image, prepareImage } from './image';
import { EXIT, HarnessError, run, which } from './tools';

export interface VmOptions {
  /** The command and its arguments, run with the guest's PATH. */
  command: string[];
  /** Guest RAM. */
  memMiB: number;
  /** Size of the scratch disk (sparse); 0 puts VM_SCRATCH on a tmpfs instead. */
  diskGiB: number;
  /** Overall limit, boot included; then qemu is killed and the run fails. */
  timeoutSec: number;
  /** A guest that has not started the command by then is taken as hung and booted again. */
  bootTimeoutSec: number;
  /** Extra environment for the command. */
  env: Record<string, string>;
  /** Forward kernel and init messages (to stderr) instead of keeping them for error reports. */
  verbose: boolean;
  /** Host directory the command starts in; shared at the same path. */
  cwd: string;
  /** Progress and error lines (stderr). */
  log: (line: string) => void;
}

/** Where the guest mounts the scratch disk; it is also VM_SCRATCH. */
export const GUEST_SCRATCH = '/scratch';

/** The reason the VM cannot run on this host, or undefined when it can. */
export function vmUnavailableReason(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `the VM harness needs an x86-64 Linux host (this is ${process.platform}/${process.arch})`;
  if (which('qemu-system-x86_64') === undefined) return 'qemu-system-x86_64 not found (apt-get install qemu-system-x86)';
  if (which('busybox') === undefined) return 'busybox not found (apt-get install busybox-static)';
  return undefined;
}

/** The project tree: the directory holding test/vm (from dist/test/vm or test/vm). */
export function projectRoot(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'test', 'vm'))) return realpathSync(dir);
  }
  throw new HarnessError(`cannot find the project root above ${__dirname}`);
}

interface Share {
  hostPath: string;
  guestPath: string;
  readOnly: boolean;
}

function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** Quotes a string for a POSIX shell. */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** What the guest shares from the host, and the merged-/usr symlinks it recreates. */
function hostLayout(cwd: string): { shares: Share[]; links: Array<[string, string]>; extraPath: string[] } {
  const shares: Share[] = [
    { hostPath: '/usr', guestPath: '/usr', readOnly: true },
    // ld.so.cache, passwd/group, mke2fs.conf, ...: the host's, so the host's programs behave alike.
    { hostPath: '/etc', guestPath: '/etc', readOnly: true },
  ];
  const links: Array<[string, string]> = [];
  for (const name of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
    const p = `/${name}`;
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) links.push([p, readlinkSync(p)]);
    else if (st.isDirectory()) shares.push({ hostPath: p, guestPath: p, readOnly: true });
  }
  const extraPath: string[] = [];
  const shareIfNeeded = (dir: string, readOnly: boolean): void => {
    if (!shares.some((s) => isUnder(dir, s.hostPath))) shares.push({ hostPath: dir, guestPath: dir, readOnly });
  };
  shareIfNeeded(projectRoot(), false);
  const realCwd = realpathSync(cwd);
  // The guest's own directories cannot be replaced by the host's (/ has nothing to share).
  if (['/tmp', '/run', GUEST_SCRATCH].includes(realCwd) || ['/dev', '/proc', '/sys', '/.vm'].some((d) => isUnder(realCwd, d))) {
    throw new HarnessError(`cannot run in ${realCwd}: the guest has its own; cd elsewhere first`, EXIT.usage);
  }
  if (realCwd !== '/') shareIfNeeded(realCwd, false);
  // A node outside /usr (nvm, a CI tool cache) comes along, first on PATH.
  const nodePrefix = path.dirname(path.dirname(realpathSync(process.execPath)));
  if (!isUnder(realpathSync(process.execPath), '/usr')) {
    shareIfNeeded(nodePrefix, true);
    extraPath.push(path.dirname(realpathSync(process.execPath)));
  }
  for (const s of shares) {
    if (/[\n\0]/.test(s.guestPath) || s.guestPath.split('/').some((c) => c === '..')) throw new HarnessError(`cannot share ${JSON.stringify(s.hostPath)}`);
  }
  // Parents before children, so a child mount is not hidden by its parent's.
  shares.sort((a, b) => a.guestPath.split('/').length - b.guestPath.split('/').length);
  return { shares, links, extraPath };
}

/** Environment variables passed from the caller as they are (terminal and locale). */
const PASSED_ENV = ['TERM', 'NO_COLOR', 'FORCE_COLOR', 'CI', 'LANG', 'LC_ALL', 'TZ'];

/** The script the guest runs (with `env -i`): environment, cwd, then exec of the command. */
function commandScript(opts: VmOptions, image: Image, scratch: string, extraPath: string[]): string {
  const env: Record<string, string> = {
    PATH: [...extraPath, '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':'),
    HOME: '/root',
    USER: 'root',
    LOGNAME: 'root',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
    TERM: process.stdout.isTTY === true ? 'xterm-256color' : 'dumb',
    GRAPHDRIVER_VM: '1',
    GRAPHDRIVER_VM_KERNEL: image.kernel.release,
    VM_SCRATCH: scratch,
    // No udev in the guest: libdevmapper (dmsetup) then makes /dev/mapper nodes itself.
    DM_DISABLE_UDEV: '1',
  };
  for (const name of PASSED_ENV) {
    const v = process.env[name];
    if (v !== undefined) env[name] = v;
  }
  Object.assign(env, opts.env);
  return [
    '# written by test/vm/run for one run',
    'umask 022',
    ...Object.entries(env).map(([k, v]) => `export ${k}=${shQuote(v)}`),
    `cd ${shQuote(realpathSync(opts.cwd))} || exit 125`,
    `exec ${opts.command.map(shQuote).join(' ')}`,
    '',
  ].join('\n');
}

/** Makes the sparse scratch disk and formats it on the host (faster than under emulation). */
function makeScratchDisk(file: string, sizeGiB: number): boolean {
  const mkfs = which('mkfs.ext4');
  if (mkfs === undefined) return false;
  closeSync(openSync(file, 'w'));
  // truncate(2) makes it sparse; lazy_journal_init keeps it so (mke2fs punches the rest).
  spawnSync('truncate', ['-s', `${sizeGiB}G`, file]);
  run(mkfs, ['-q', '-F', '-m', '0', '-L', 'vm-scratch', '-E', 'lazy_journal_init=1', file]);
  return true;
}

function qemuArgs(opts: VmOptions, image: Image, tmp: string, shares: Share[], disk: string | undefined): string[] {
  const cmdline = [
    'console=ttyS0', 'panic=-1', 'rdinit=/init',
    // Without pit=on (below) and a fixed TSC, about one boot in four hangs under TCG.
    'tsc_early_khz=2100000', 'tsc=reliable',
    ...(opts.verbose ? ['loglevel=7'] : ['quiet', 'loglevel=1']),
  ];
  const args = [
    '-M', 'microvm,pit=on,rtc=on', '-accel', 'tcg,thread=multi', '-cpu', 'max', '-smp', '1', '-m', String(opts.memMiB),
    '-nodefaults', '-nographic', '-no-reboot', '-serial', 'stdio',
    '-kernel', image.vmlinux, '-initrd', image.initramfs, '-append', cmdline.join(' '),
  ];
  const share = (tag: string, hostPath: string, readOnly: boolean): void => {
    args.push('-fsdev', `local,id=${tag},path=${hostPath.replace(/,/g, ',,')},security_model=none,multidevs=remap${readOnly ? ',readonly=on' : ''}`);
    args.push('-device', `virtio-9p-device,fsdev=${tag},mount_tag=${tag}`);
  };
  share('gdctl', path.join(tmp, 'ctl'), false);
  shares.forEach((s, i) => share(`gd${i}`, s.hostPath, s.readOnly));
  if (disk !== undefined) {
    args.push('-drive', `file=${disk.replace(/,/g, ',,')},format=raw,if=none,id=scratch,cache=unsafe,discard=unmap`);
    args.push('-device', 'virtio-blk-device,drive=scratch');
  }
  return args;
}

/**
 * Removes the temp dirs of harness runs that were SIGKILLed (nothing else can leave one: every
 * other end removes its own). The name holds the owner's pid; a live owner, or one we may not
 * signal (another user's), keeps its dir.
 */
function removeOrphanedTempDirs(): void {
  for (const name of readdirSync(os.tmpdir())) {
    const owner = /^graphdriver-vm-(\d+)-/.exec(name);
    if (owner === null || Number(owner[1]) === process.pid) continue;
    try {
      process.kill(Number(owner[1]), 0);
      continue;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    try {
      rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
    } catch {
      // Not ours to remove after all; leave it.
    }
  }
}

type BootOutcome =
  | { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null }
  | { kind: 'boot-timeout' }
  | { kind: 'timeout' }
  | { kind: 'interrupted'; signal: NodeJS.Signals };

const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

/** Boots, runs `opts.command`, returns its exit status. See the file comment for the rest. */
export async function runInVm(opts: VmOptions): Promise<number> {
  const unavailable = vmUnavailableReason();
  if (unavailable !== undefined) throw new HarnessError(unavailable, EXIT.unavailable);
  const deadline = Date.now() + opts.timeoutSec * 1000;
  const image = prepareImage(opts.log);
  removeOrphanedTempDirs();
  const tmp = mkdtempSync(path.join(os.tmpdir(), `graphdriver-vm-${process.pid}-`));
  let qemu: ChildProcess | undefined;
  let interrupted: NodeJS.Signals | undefined;
  const killQemu = (): void => {
    if (qemu !== undefined && qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
  };
  // Last resort if something throws past the finally below (process.exit from elsewhere).
  const onExit = (): void => {
    killQemu();
    rmSync(tmp, { recursive: true, force: true });
  };
  // Ends the boot in progress, if any, with the given outcome.
  let settleCurrent: ((o: BootOutcome) => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted = signal;
    settleCurrent?.({ kind: 'interrupted', signal });
  };
  process.on('exit', onExit);
  for (const s of Object.keys(SIGNAL_EXIT) as NodeJS.Signals[]) process.on(s, onSignal);
  try {
    const ctl = path.join(tmp, 'ctl');
    mkdirSync(ctl);
    const layout = hostLayout(opts.cwd);
    let disk: string | undefined = path.join(tmp, 'scratch.img');
    if (opts.diskGiB <= 0 || !makeScratchDisk(disk, opts.diskGiB)) {
      if (opts.diskGiB > 0) opts.log('mkfs.ext4 not found on the host: VM_SCRATCH is on a tmpfs');
      disk = undefined;
    }
    const mark = `graphdriver-vm-${randomBytes(12).toString('hex')}`;
    const tty = process.stdout.isTTY === true;
    writeFileSync(path.join(ctl, 'settings'), [
      `VM_MARK=${mark}`,
      `VM_TTY=${tty ? 1 : 0}`,
      // A pty may report 0 x 0 (script(1)); stty refuses that.
      `VM_COLS=${tty && process.stdout.columns > 0 ? process.stdout.columns : 80}`,
      `VM_ROWS=${tty && process.stdout.rows > 0 ? process.stdout.rows : 24}`,
      `VM_SCRATCH=${shQuote(GUEST_SCRATCH)}`,
      `VM_SCRATCH_FS=${disk !== undefined ? 'ext4' : 'tmpfs'}`,
      '',
    ].join('\n'));
    writeFileSync(path.join(ctl, 'mounts'), layout.shares.map((s, i) => `gd${i} ${s.readOnly ? 'ro' : 'rw'} ${s.guestPath}\n`).join(''));
    writeFileSync(path.join(ctl, 'links'), layout.links.map(([l, t]) => `${l} ${t}\n`).join(''));
    writeFileSync(path.join(ctl, 'command'), commandScript(opts, image, GUEST_SCRATCH, layout.extraPath));
    const qemuBin = which('qemu-system-x86_64')!;
    const args = qemuArgs(opts, image, tmp, layout.shares, disk);
    // qemu dies with us even if we are SIGKILLed (the parent-death signal), when setpriv can.
    const setpriv = which('setpriv');
    const withPdeathsig = setpriv !== undefined && spawnSync(setpriv, ['--pdeathsig', 'KILL', 'true']).status === 0;
    const [program, argv] = withPdeathsig ? [setpriv!, ['--pdeathsig', 'KILL', '--', qemuBin, ...args]] : [qemuBin, args];

    for (let attempt = 1; ; attempt++) {
      if (interrupted !== undefined) return SIGNAL_EXIT[interrupted] ?? 130;
      const bootStart = Date.now();
      let commandStart = 0;
      const splitter = new ConsoleSplitter(mark, (b) => process.stdout.write(b), opts.verbose ? (b) => process.stderr.write(b) : undefined);
      const outcome = await new Promise<BootOutcome>((resolve) => {
        const child = spawn(program, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
        qemu = child;
        let settled: BootOutcome | undefined;
        const settle = (o: BootOutcome): void => {
          settled ??= o;
          killQemu();
        };
        settleCurrent = settle;
        // Only when it comes before the overall deadline: that one says "timed out".
        const bootTimer = opts.bootTimeoutSec * 1000 < deadline - Date.now()
          ? setTimeout(() => {
            if (splitter.phase === 'boot') settle({ kind: 'boot-timeout' });
          }, opts.bootTimeoutSec * 1000)
          : undefined;
        const overallTimer = setTimeout(() => settle({ kind: 'timeout' }), Math.max(0, deadline - Date.now()));
        child.stdout!.on('data', (b: Buffer) => {
          splitter.push(b);
          if (commandStart === 0 && splitter.phase !== 'boot') commandStart = Date.now();
        });
        child.stderr!.on('data', (b: Buffer) => process.stderr.write(b));
        child.on('error', (err) => {
          settled ??= { kind: 'exited', code: null, signal: null };
          opts.log(`cannot start qemu: ${err.message}`);
        });
        child.on('close', (code, signal) => {
          clearTimeout(bootTimer);
          clearTimeout(overallTimer);
          settleCurrent = undefined;
          resolve(settled ?? { kind: 'exited', code, signal });
        });
      });
      qemu = undefined;
      if (opts.verbose && commandStart !== 0) {
        opts.log(`timing: command started ${((commandStart - bootStart) / 1000).toFixed(2)} s after qemu did; qemu ran ${((Date.now() - bootStart) / 1000).toFixed(2)} s`);
      }
      if (outcome.kind === 'interrupted') return SIGNAL_EXIT[outcome.signal] ?? 130;
      if (outcome.kind === 'timeout') {
        throw new HarnessError(`timed out after ${opts.timeoutSec} s (--timeout); the VM was killed${splitter.phase === 'boot' ? ' before the command started' : ''}`, EXIT.timeout);
      }
      if (outcome.kind === 'boot-timeout') {
        if (attempt < 2) {
          opts.log(`the guest did not start the command within ${opts.bootTimeoutSec} s (a boot hang?); booting again`);
          continue;
        }
        throw new HarnessError(`the guest did not start the command within ${opts.bootTimeoutSec} s, twice. Console output:\n${splitter.bootLog()}`);
      }
      if (splitter.phase === 'boot') {
        const how = outcome.signal !== null ? `killed by ${outcome.signal}` : `exit status ${outcome.code}`;
        throw new HarnessError(`the guest stopped before running the command (qemu ${how}). Console output:\n${splitter.bootLog()}`);
      }
      const statusFile = path.join(ctl, 'status');
      const written = existsSync(statusFile) ? readFileSync(statusFile, 'utf8').trim() : '';
      if (/^\d+$/.test(written)) return Number(written);
      if (splitter.endStatus !== undefined) return splitter.endStatus;
      throw new HarnessError(`the guest stopped without reporting the command's exit status (qemu exit ${outcome.code ?? outcome.signal}). Console output after the command:\n${splitter.bootLog()}`);
    }
  } finally {
    killQemu();
    rmSync(tmp, { recursive: true, force: true });
    process.off('exit', onExit);
    for (const s of Object.keys(SIGNAL_EXIT) as NodeJS.Signals[]) process.off(s, onSignal);
  }
}
