// image.ts: what qemu boots — the cached kernel (kernel.ts) and an initramfs made of the host's
// static busybox, guest-init.sh as /init and the kernel's modules. The initramfs is cached under
// a hash of everything in it, so a new kernel, a changed init script or module set, or an
// upgraded busybox makes a new one. Per-run settings never go into it: they travel through the
// control share (see boot.ts), so one image serves every run.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { cacheRoot, newBuildDir, publish } from './cache';
import { CpioWriter } from './cpio';
import { type Kernel, prepareKernel } from './kernel';
import { EXIT, HarnessError, run, which } from './tools';

/** Bumped when the initramfs layout below changes in a way its inputs do not show. */
const LAYOUT_VERSION = '1';

/** Cache entries unused for this long are removed (each kernel is ~80 MB). */
const UNUSED_ENTRY_MS = 14 * 24 * 3600 * 1000;

export interface Image {
  kernel: Kernel;
  /** The uncompressed ELF kernel qemu boots (PVH). */
  vmlinux: string;
  initramfs: string;
}

/** test/vm/guest-init.sh, found from dist/test/vm/ or from test/vm/ itself. */
export function guestInitPath(): string {
  const candidates = [path.resolve(__dirname, '../../../test/vm/guest-init.sh'), path.join(__dirname, 'guest-init.sh')];
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) throw new HarnessError(`guest-init.sh not found (looked at ${candidates.join(', ')})`);
  return found;
}

/** The host's busybox, which must be static: it runs before the host's /usr is mounted. */
function staticBusybox(): Buffer {
  const found = which('busybox');
  if (found === undefined) throw new HarnessError('busybox not found (install busybox-static)', EXIT.unavailable);
  const elf = readFileSync(found);
  if (hasInterpreter(elf)) throw new HarnessError(`${found} is dynamically linked; the VM needs busybox-static`, EXIT.unavailable);
  return elf;
}

/** True when an ELF64 executable names a program interpreter (PT_INTERP), i.e. is dynamic. */
function hasInterpreter(elf: Buffer): boolean {
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (elf.readUInt32LE(phoff + i * phentsize) === 3) return true;
  return false;
}

/** The kernel and initramfs, from the cache or built now. `log` reports slow steps. */
export function prepareImage(log: (line: string) => void): Image {
  const root = cacheRoot();
  const kernel = prepareKernel(root, log);
  const busybox = staticBusybox();
  const init = readFileSync(guestInitPath());
  const modulesList = readFileSync(path.join(kernel.dir, 'modules.list'), 'utf8');
  const key = createHash('sha256')
    .update(`${LAYOUT_VERSION}\0${path.basename(kernel.dir)}\0${modulesList}\0`)
    .update(init).update('\0').update(busybox)
    .digest('hex').slice(0, 16);
  const initramfs = path.join(root, 'initramfs', `${key}.cpio`);
  if (!existsSync(initramfs)) {
    const build = newBuildDir(root);
    try {
      const file = path.join(build, 'initramfs.cpio');
      writeFileSync(file, buildInitramfs(kernel, busybox, init, modulesList));
      publish(file, initramfs);
    } finally {
      rmSync(build, { recursive: true, force: true });
    }
  }
  const vmlinux = path.join(kernel.dir, 'vmlinux');
  const now = new Date();
  for (const used of [kernel.dir, initramfs]) utimesSync(used, now, now);
  removeUnused(root, [kernel.dir, initramfs]);
  return { kernel, vmlinux, initramfs };
}

function buildInitramfs(kernel: Kernel, busybox: Buffer, init: Buffer, modulesList: string): Buffer {
  const cpio = new CpioWriter();
  for (const d of ['dev', 'proc', 'sys', 'tmp', 'run', 'root', 'mnt', 'var', 'var/tmp', '.vm', '.vm/bin', '.vm/ctl', '.vm/modules']) {
    cpio.dir(d, d === 'tmp' || d === 'var/tmp' ? 0o1777 : d === 'root' ? 0o700 : 0o755);
  }
  // The kernel opens /dev/console for init before anything mounts devtmpfs.
  cpio.charDevice('dev/console', 5, 1);
  cpio.file('init', init, 0o755);
  cpio.file('.vm/busybox', busybox, 0o755);
  for (const applet of busyboxApplets()) cpio.symlink(`.vm/bin/${applet}`, '../busybox');
  for (const name of modulesList.split('\n').filter(Boolean)) {
    cpio.file(`.vm/modules/${name}`, readFileSync(path.join(kernel.dir, 'modules', name)));
  }
  cpio.file('.vm/modules.list', Buffer.from(modulesList));
  return cpio.finish();
}

/** The applet names of the host's busybox (`busybox --list`). */
function busyboxApplets(): string[] {
  const found = which('busybox');
  if (found === undefined) throw new HarnessError('busybox not found', EXIT.unavailable);
  return run(found, ['--list']).toString().split('\n').filter((a) => /^[\w.[-]+$/.test(a));
}

/** Removes kernels and initramfs images other than `keep` that were not used for a while. */
function removeUnused(root: string, keep: string[]): void {
  for (const sub of ['kernels', 'initramfs']) {
    const dir = path.join(root, sub);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      try {
        if (!keep.includes(p) && Date.now() - statSync(p).mtimeMs > UNUSED_ENTRY_MS) rmSync(p, { recursive: true, force: true });
      } catch {
        // Removed by another run meanwhile.
      }
    }
  }
}
