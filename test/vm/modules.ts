// modules.ts: which kernel modules the guest loads, and in what order. Debian's 6.1 kernel builds
// device-mapper, loop, ext4, xfs, overlay, 9p and even virtio as modules, and kmod's depmod may
// not be installed on the host, so dependencies are read straight from each module's ELF
// `.modinfo` section (`depends=`, `softdep=`) and ordered here; the guest then insmods the list
// as is (busybox insmod, no modprobe, no modules.dep in the guest).
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';

/**
 * What the guest needs, in the order it should come up (dependencies are pulled in before each).
 * virtio_mmio (microvm's transport) must be loaded before 9pnet_virtio and virtio_blk, or
 * their devices never probe. crc32c_generic is a soft dependency (`softdep=pre: crc32c`) of
 * libcrc32c and ext4 that busybox modprobe would skip; without it their crc32c lookups fail.
 */
export const GUEST_MODULES: readonly string[] = [
  'virtio_mmio', 'virtio_blk',
  'crc32c_generic',
  '9pnet_virtio', '9p',
  'dm_mod', 'dm_thin_pool',
  'loop', 'ext4', 'xfs', 'overlay',
];

/**
 * Soft dependencies name a crypto algorithm, not a module; this says which module provides it.
 * Unknown soft dependencies are ignored, as modprobe does when nothing provides them.
 */
const SOFTDEP_PROVIDERS: Readonly<Record<string, string>> = { crc32c: 'crc32c_generic' };

/** Module names are compared with '-' and '_' equal, as the kernel does. */
export function moduleKey(name: string): string {
  return name.replace(/-/g, '_');
}

/** The key=value strings of a module's `.modinfo` ELF section (ELF64 little-endian only). */
export function readModinfo(ko: Buffer): Map<string, string[]> {
  if (ko.readUInt32BE(0) !== 0x7f454c46 || ko[4] !== 2 || ko[5] !== 1) throw new Error('not an ELF64 little-endian object');
  const sectionTable = Number(ko.readBigUInt64LE(0x28));
  const entrySize = ko.readUInt16LE(0x3a);
  const count = ko.readUInt16LE(0x3c);
  const namesIndex = ko.readUInt16LE(0x3e);
  const section = (i: number): { name: number; offset: number; size: number } => {
    const at = sectionTable + i * entrySize;
    return { name: ko.readUInt32LE(at), offset: Number(ko.readBigUInt64LE(at + 0x18)), size: Number(ko.readBigUInt64LE(at + 0x20)) };
  };
  const names = section(namesIndex);
  const info = new Map<string, string[]>();
  for (let i = 0; i < count; i++) {
    const s = section(i);
    const nameEnd = ko.indexOf(0, names.offset + s.name);
    if (ko.toString('latin1', names.offset + s.name, nameEnd) !== '.modinfo') continue;
    for (const entry of ko.toString('latin1', s.offset, s.offset + s.size).split('\0')) {
      const eq = entry.indexOf('=');
      if (eq <= 0) continue;
      const key = entry.slice(0, eq);
      info.set(key, [...(info.get(key) ?? []), entry.slice(eq + 1)]);
    }
    return info;
  }
  throw new Error('no .modinfo section');
}

/** Every `*.ko` under `dir`, by module key. */
function indexModules(dir: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (d: string): void => {
    for (const ent of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.name.endsWith('.ko')) found.set(moduleKey(ent.name.slice(0, -3)), p);
    }
  };
  walk(dir);
  return found;
}

/** The names in a modules.builtin file (`kernel/fs/ext4/ext4.ko` lines), by module key. */
export function parseBuiltin(text: string): Set<string> {
  return new Set(text.split('\n').filter((l) => l.endsWith('.ko')).map((l) => moduleKey(path.basename(l, '.ko'))));
}

export interface OrderedModule {
  /** Module key (underscores). */
  name: string;
  /** Absolute path of the .ko in the unpacked tree. */
  file: string;
}

/**
 * The modules to insmod, dependencies first, for `wanted` (in its order) in the unpacked module
 * tree `moduleDir` (…/lib/modules/<release>). Built-in modules are left out. Throws if a wanted
 * module or a hard dependency is neither a module file nor built in.
 */
export function resolveModuleOrder(moduleDir: string, wanted: readonly string[] = GUEST_MODULES): OrderedModule[] {
  const files = indexModules(path.join(moduleDir, 'kernel'));
  const builtin = parseBuiltin(readFileSync(path.join(moduleDir, 'modules.builtin'), 'utf8'));
  const order: OrderedModule[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]): void => {
    const key = moduleKey(name);
    if (state.get(key) === 'done' || builtin.has(key)) return;
    if (state.get(key) === 'visiting') throw new Error(`module dependency cycle: ${[...chain, key].join(' -> ')}`);
    const file = files.get(key);
    if (file === undefined) throw new Error(`kernel module ${key} (${chain.join(' -> ') || 'wanted'}) is neither in ${moduleDir} nor built in`);
    state.set(key, 'visiting');
    const info = readModinfo(readFileSync(file));
    for (const soft of info.get('softdep') ?? []) {
      // "pre: a b post: c": only the pre part must be loaded first.
      const pre = /pre:\s*([^:]*?)(?:\s+post:|$)/.exec(soft)?.[1] ?? '';
      for (const alg of pre.split(/\s+/).filter(Boolean)) {
        const provider = files.has(moduleKey(alg)) ? alg : SOFTDEP_PROVIDERS[alg];
        if (provider !== undefined) visit(provider, [...chain, key]);
      }
    }
    for (const dep of (info.get('depends') ?? []).flatMap((d) => d.split(',')).filter(Boolean)) visit(dep, [...chain, key]);
    state.set(key, 'done');
    order.push({ name: key, file });
  };
  for (const name of wanted) visit(name, []);
  return order;
}
