// kernel.ts: the guest kernel. Debian's linux-image-6.1.0-*-amd64 package is fetched with
// `apt-get download` (apt verifies it against the signed package lists), unpacked with
// `dpkg-deb -x` (never installed), and kept in the cache as an uncompressed vmlinux plus the
// modules the guest loads. qemu boots the ELF vmlinux through its PVH entry point, which is much
// faster under TCG than letting the bzImage decompress itself in emulation.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { newBuildDir, publish } from './cache';
import { GUEST_MODULES, resolveModuleOrder } from './modules';
import { HarnessError, run, which } from './tools';

/** A kernel entry in the cache, complete. */
export interface Kernel {
  /** Debian package, e.g. linux-image-6.1.0-57-amd64. */
  package: string;
  /** Debian version, e.g. 6.1.192-3. */
  version: string;
  /** uname -r in the guest, e.g. 6.1.0-57-amd64. */
  release: string;
  /** The cache directory holding vmlinux, modules/ and modules.list. */
  dir: string;
}

/** The package asked for: `$GRAPHDRIVER_VM_KERNEL_PACKAGE`, else Debian's amd64 meta package. */
function wantedPackage(): string {
  const pinned = process.env['GRAPHDRIVER_VM_KERNEL_PACKAGE'];
  return pinned !== undefined && pinned !== '' ? pinned : 'linux-image-amd64';
}

/**
 * A fingerprint of apt's package lists: asking apt-cache costs most of a second, so the answer
 * is reused until `apt-get update` changes the lists.
 */
function aptListsStamp(): string | undefined {
  const dir = '/var/lib/apt/lists';
  if (!existsSync(dir)) return undefined;
  const h = createHash('sha256').update(wantedPackage());
  for (const name of readdirSync(dir).sort()) {
    if (!name.includes('Packages')) continue;
    const st = statSync(path.join(dir, name));
    h.update(`${name} ${st.size} ${st.mtimeMs}\n`);
  }
  return h.digest('hex');
}

interface Choice {
  package: string;
  version: string;
}

/** Asks apt which kernel package and version the wanted name stands for. */
function askApt(): Choice {
  if (which('apt-cache') === undefined || which('apt-get') === undefined) {
    throw new HarnessError('cannot fetch the guest kernel: apt-get/apt-cache not found (the harness needs a Debian host)');
  }
  const name = wantedPackage();
  let text: string;
  try {
    text = run('apt-cache', ['show', '--no-all-versions', name]).toString();
  } catch (err) {
    throw new HarnessError(`cannot find the kernel package ${name} (run \`apt-get update\` first?): ${(err as Error).message}`);
  }
  const field = (f: string): string | undefined => new RegExp(`^${f}: (.*)$`, 'm').exec(text)?.[1];
  // A meta package (linux-image-amd64) depends on exactly one versioned image; follow it.
  const image = /\b(linux-image-[0-9][^\s,(]*) \(= ([^)\s]+)\)/.exec(field('Depends') ?? '');
  if (image !== null) return { package: image[1]!, version: image[2]! };
  const version = field('Version');
  if (version === undefined) throw new HarnessError(`apt-cache show ${name}: no Version field`);
  return { package: name, version };
}

/** The kernel to use: apt's answer (remembered per state of the package lists). */
function chooseKernel(root: string): Choice {
  const memo = path.join(root, 'kernel-choice.json');
  const stamp = aptListsStamp();
  if (stamp !== undefined && existsSync(memo)) {
    try {
      const saved = JSON.parse(readFileSync(memo, 'utf8')) as { stamp?: unknown; package?: unknown; version?: unknown };
      if (saved.stamp === stamp && typeof saved.package === 'string' && typeof saved.version === 'string') {
        return { package: saved.package, version: saved.version };
      }
    } catch {
      // Unreadable memo: ask again.
    }
  }
  const choice = askApt();
  if (stamp !== undefined) {
    mkdirSync(root, { recursive: true });
    const tmp = `${memo}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ stamp, ...choice }) + '\n');
    renameSync(tmp, memo);
  }
  return choice;
}

/** Identifies the module set, so changing GUEST_MODULES makes a new kernel entry. */
function moduleSetKey(): string {
  return createHash('sha256').update(GUEST_MODULES.join(',')).digest('hex').slice(0, 8);
}

/** The cached kernel, downloading and unpacking it first if needed. `log` reports progress. */
export function prepareKernel(root: string, log: (line: string) => void): Kernel {
  let choice: Choice;
  try {
    choice = chooseKernel(root);
  } catch (err) {
    // Offline, or no package lists: a kernel already in the cache will do.
    const cached = newestCachedKernel(root);
    if (cached === undefined) throw err;
    log(`${(err as Error).message.split('\n')[0]}; using the cached ${cached.package} ${cached.version}`);
    choice = cached;
  }
  const dir = path.join(root, 'kernels', `${choice.package}_${choice.version}_${moduleSetKey()}`);
  if (!existsSync(path.join(dir, 'kernel.json'))) {
    log(`fetching ${choice.package} ${choice.version} (first use; cached in ${root})`);
    buildKernel(root, choice, dir);
  }
  const info = JSON.parse(readFileSync(path.join(dir, 'kernel.json'), 'utf8')) as { release: string };
  return { ...choice, release: info.release, dir };
}

/** The most recently used complete kernel entry for the current module set, if any. */
function newestCachedKernel(root: string): Choice | undefined {
  const dir = path.join(root, 'kernels');
  if (!existsSync(dir)) return undefined;
  const entries = readdirSync(dir)
    // A pinned package falls back only to itself.
    .filter((n) => n.endsWith(`_${moduleSetKey()}`) && existsSync(path.join(dir, n, 'kernel.json')))
    .filter((n) => wantedPackage() === 'linux-image-amd64' || n.startsWith(`${wantedPackage()}_`))
    .map((n) => ({ n, used: statSync(path.join(dir, n)).mtimeMs }))
    .sort((a, b) => b.used - a.used);
  if (entries.length === 0) return undefined;
  const info = JSON.parse(readFileSync(path.join(dir, entries[0]!.n, 'kernel.json'), 'utf8')) as Choice;
  return { package: info.package, version: info.version };
}

function buildKernel(root: string, choice: Choice, final: string): void {
  const build = newBuildDir(root);
  try {
    buildKernelIn(build, choice, final);
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
}

function buildKernelIn(build: string, choice: Choice, final: string): void {
  const aptOpts = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
  run('apt-get', [...aptOpts, '-q', 'download', `${choice.package}=${choice.version}`], { cwd: build });
  const deb = readdirSync(build).find((n) => n.endsWith('.deb'));
  if (deb === undefined) throw new HarnessError(`apt-get download ${choice.package} left no .deb`);
  const unpacked = path.join(build, 'unpacked');
  run('dpkg-deb', ['-x', path.join(build, deb), unpacked]);

  const boot = path.join(unpacked, 'boot');
  const vmlinuz = readdirSync(boot).find((n) => n.startsWith('vmlinuz-'));
  if (vmlinuz === undefined) throw new HarnessError(`${deb} has no /boot/vmlinuz-*`);
  const release = vmlinuz.slice('vmlinuz-'.length);
  // Debian 12 keeps modules under /lib/modules; newer layouts under /usr/lib/modules.
  const moduleDir = [path.join(unpacked, 'lib/modules', release), path.join(unpacked, 'usr/lib/modules', release)].find((d) => existsSync(d));
  if (moduleDir === undefined) throw new HarnessError(`${deb} has no modules for ${release}`);

  const entry = path.join(build, 'kernel');
  mkdirSync(path.join(entry, 'modules'), { recursive: true });
  writeFileSync(path.join(entry, 'vmlinux'), extractVmlinux(readFileSync(path.join(boot, vmlinuz))));
  copyFileSync(path.join(boot, `config-${release}`), path.join(entry, 'config'));
  const order = resolveModuleOrder(moduleDir);
  for (const m of order) copyFileSync(m.file, path.join(entry, 'modules', `${m.name}.ko`));
  writeFileSync(path.join(entry, 'modules.list'), order.map((m) => `${m.name}.ko\n`).join(''));
  writeFileSync(path.join(entry, 'kernel.json'), JSON.stringify({ ...choice, release, modules: order.map((m) => m.name) }, null, 2) + '\n');
  publish(entry, final);
}

/**
 * The uncompressed ELF kernel inside a bzImage. The x86 boot header says where the compressed
 * payload is (payload_offset from the start of the protected-mode code, payload_length); its
 * magic says the format. For xz and zstd the build appends the uncompressed size (4 bytes, LE)
 * after the stream, which also checks the result.
 */
export function extractVmlinux(bzImage: Buffer): Buffer {
  if (bzImage.toString('latin1', 0x202, 0x206) !== 'HdrS' || bzImage.readUInt16LE(0x206) < 0x208) {
    throw new HarnessError('not a bzImage with boot protocol 2.08 or later');
  }
  const setupSectors = bzImage[0x1f1] === 0 ? 4 : bzImage[0x1f1]!;
  const start = (setupSectors + 1) * 512 + bzImage.readUInt32LE(0x248);
  const payload = bzImage.subarray(start, start + bzImage.readUInt32LE(0x24c));
  const startsWith = (magic: number[]): boolean => magic.every((b, i) => payload[i] === b);
  let elf: Buffer;
  let expectedSize: number | undefined;
  if (startsWith([0x1f, 0x8b])) {
    elf = gunzipSync(payload);
  } else if (startsWith([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) {
    expectedSize = payload.readUInt32LE(payload.length - 4);
    elf = decompressWithTool(payload.subarray(0, -4), 'xz', [
      ['xz', ['-dc']],
      // python3's lzma module handles the kernel's x86 BCJ filter; busybox xz does not.
      ['python3', ['-c', 'import lzma,sys; sys.stdout.buffer.write(lzma.decompress(sys.stdin.buffer.read()))']],
    ]);
  } else if (startsWith([0x28, 0xb5, 0x2f, 0xfd])) {
    expectedSize = payload.readUInt32LE(payload.length - 4);
    elf = decompressWithTool(payload.subarray(0, -4), 'zstd', [['zstd', ['-dcq']], ['unzstd', ['-cq']]]);
  } else {
    throw new HarnessError(`unsupported kernel compression (payload magic ${payload.subarray(0, 6).toString('hex')})`);
  }
  if (elf.readUInt32BE(0) !== 0x7f454c46) throw new HarnessError('the decompressed kernel is not an ELF file');
  if (expectedSize !== undefined && elf.length !== expectedSize) {
    throw new HarnessError(`the decompressed kernel has ${elf.length} bytes, the bzImage says ${expectedSize}`);
  }
  return elf;
}

function decompressWithTool(data: Buffer, format: string, candidates: Array<[string, string[]]>): Buffer {
  for (const [program, args] of candidates) {
    const found = which(program);
    if (found !== undefined) return run(found, args, { input: data });
  }
  throw new HarnessError(`the kernel is ${format}-compressed and none of ${candidates.map((c) => c[0]).join(', ')} is installed`);
}
