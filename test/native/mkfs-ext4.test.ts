// mkfs-ext4.test.ts: the in-process ext4 formatter (native/mkfs_ext4.cc) against e2fsprogs as
// the oracle. Every filesystem it makes must pass `e2fsck -fn`, show in `dumpe2fs -h` what was
// asked for, match mkfs.ext4's superblock field for field on the same size, and mount and work
// (files written and read back, lost+found, a root of 0755 root:root, the free space mkfs.ext4's
// gives). Errors: bad options throw before anything is touched; errno failures are SyscallError;
// libext2fs's own codes are MkfsError. Tests spawn e2fsck/dumpe2fs/mkfs.ext4/losetup as oracles
// (the library never does); loop devices and mounts are always undone in finally.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants as fsc, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { MkfsError, SyscallError } from '../../lib/errors';
import { EXT4_DEFAULT_FEATURES, mkfsExt4, MS, mount, statfs, umount2, type StatfsResult } from '../../lib/native';
import { isRoot } from '../helpers/requires-root';
import { makeSparseFile, withTmpDir, type TmpDir } from '../helpers/tmp';

const GiB = 1024 * 1024 * 1024;
const UUID = '6c7a1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b';

function findTool(tool: string): string | undefined {
  for (const d of [...(process.env.PATH ?? '').split(':').filter((x) => x !== ''), '/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
    try {
      accessSync(`${d}/${tool}`, fsc.X_OK);
      return `${d}/${tool}`;
    } catch {
      // not there
    }
  }
  return undefined;
}

const E2FSCK = findTool('e2fsck');
const DUMPE2FS = findTool('dumpe2fs');
const MKFS_EXT4 = findTool('mkfs.ext4');
const LOSETUP = findTool('losetup');
const noOracle = E2FSCK === undefined || DUMPE2FS === undefined ? 'e2fsck/dumpe2fs not found (install e2fsprogs)' : false;
const noMount = !isRoot() ? 'needs root: loop devices and mount(2)'
  : LOSETUP === undefined ? 'losetup not found (install util-linux)' : noOracle;

function sparseFile(tmp: TmpDir, name: string, size: number): Promise<string> {
  return makeSparseFile(tmp.join(name), size);
}

/** `e2fsck -fn dev` must exit 0; its output is in the assertion message otherwise. Returns the output. */
function fsckClean(dev: string): string {
  const r = spawnSync(E2FSCK!, ['-fn', dev], { encoding: 'utf8' });
  assert.equal(r.status, 0, `e2fsck -fn ${dev} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout + r.stderr;
}

/** `dumpe2fs -h dev` as key -> value. */
function superblock(dev: string): Map<string, string> {
  const r = spawnSync(DUMPE2FS!, ['-h', dev], { encoding: 'utf8' });
  assert.equal(r.status, 0, `dumpe2fs -h ${dev}: ${r.stderr}`);
  const m = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

function features(sb: Map<string, string>): string[] {
  return (sb.get('Filesystem features') ?? '').split(/\s+/).filter((x) => x !== '').sort();
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Attaches `image` to a loop device, runs fn, and always detaches (and unmounts `mp` if mounted). */
async function withLoop<T>(image: string, fn: (dev: string) => Promise<T>): Promise<T> {
  const dev = run(LOSETUP!, ['--find', '--show', image]);
  try {
    return await fn(dev);
  } finally {
    run(LOSETUP!, ['-d', dev]);
  }
}

/** Mounts `dev` (ext4, -o discard) on a fresh dir of tmp, runs fn, and always unmounts. */
async function withMount<T>(tmp: TmpDir, name: string, dev: string, fn: (mp: string) => Promise<T>): Promise<T> {
  const mp = await tmp.mkdir(name);
  await mount(dev, mp, 'ext4', 0, 'discard');
  try {
    return await fn(mp);
  } finally {
    try {
      await umount2(mp, 0);
    } catch {
      await umount2(mp, MS.MNT_DETACH);
    }
  }
}

// Fields that differ between two formats of the same parameters by nature.
const VOLATILE = new Set(['Directory Hash Seed', 'Checksum', 'Filesystem created', 'Last write time', 'Last mount time',
  'Last checked', 'Journal checksum']);

test('a sparse 1 GiB file: e2fsck clean, dumpe2fs shows what was asked, mkfs.ext4 would write the same superblock',
  { skip: noOracle }, async () => {
    await withTmpDir(async (tmp) => {
      const img = await sparseFile(tmp, 'a.img', GiB);
      const r = await mkfsExt4(img, { label: 'gd-base', uuid: UUID, discard: false });
      assert.equal(r.blockSize, 4096);
      assert.equal(r.blocks, GiB / 4096);
      assert.equal(r.uuid, UUID);
      assert.equal(r.journalBlocks, 8192); // mke2fs's default for 1 GiB: 32 MiB
      assert.deepEqual([...r.features].sort(), [...EXT4_DEFAULT_FEATURES].sort());
      const out = fsckClean(img);
      assert.match(out, /gd-base: 11\/65536 files/);
      const sb = superblock(img);
      assert.equal(sb.get('Filesystem volume name'), 'gd-base');
      assert.equal(sb.get('Filesystem UUID'), UUID);
      assert.equal(sb.get('Block size'), '4096');
      assert.equal(sb.get('Inode size'), '256');
      assert.equal(sb.get('Block count'), String(r.blocks));
      assert.equal(sb.get('Inode count'), String(r.inodes));
      assert.equal(sb.get('Free blocks'), String(r.freeBlocks));
      assert.equal(sb.get('Filesystem state'), 'clean');
      assert.equal(sb.get('Checksum type'), 'crc32c');
      assert.deepEqual(features(sb), ['64bit', 'dir_index', 'dir_nlink', 'ext_attr', 'extent', 'extra_isize', 'filetype', 'flex_bg',
        'has_journal', 'huge_file', 'large_file', 'metadata_csum', 'resize_inode', 'sparse_super']);

      if (MKFS_EXT4 === undefined) return;
      const peer = await sparseFile(tmp, 'peer.img', GiB);
      run(MKFS_EXT4, ['-q', '-F', '-L', 'gd-base', '-U', UUID, '-E', 'nodiscard', peer]);
      const want = superblock(peer);
      const diffs: string[] = [];
      for (const k of new Set([...want.keys(), ...sb.keys()])) {
        if (!VOLATILE.has(k) && want.get(k) !== sb.get(k)) diffs.push(`${k}: ours ${String(sb.get(k))}, mkfs.ext4 ${String(want.get(k))}`);
      }
      assert.deepEqual(diffs, []);
    });
  });

test('a sparse 10 GiB file, loop-mounted with -o discard: files, lost+found, root 0755 0:0, free space as mkfs.ext4',
  { skip: noMount }, async () => {
    await withTmpDir(async (tmp) => {
      const img = await sparseFile(tmp, 'ten.img', 10 * GiB);
      const r = await mkfsExt4(img, { label: 'ten' });
      assert.equal(r.blocks, 10 * GiB / 4096);
      assert.equal(r.journalBlocks, 16384);
      assert.ok(r.discarded && r.itableZeroed, 'a regular file is punched, so the inode tables need no zeroing');
      fsckClean(img);
      const sb = superblock(img);
      assert.equal(sb.get('Filesystem volume name'), 'ten');
      assert.equal(sb.get('Total journal blocks'), '16384');

      let ours: StatfsResult | undefined;
      await withLoop(img, async (dev) => {
        // A mounted device is never formatted (the device and its backing file alike).
        await withMount(tmp, 'mnt', dev, async (mp) => {
          await assert.rejects(mkfsExt4(dev), (e: unknown) => e instanceof SyscallError && e.code === 'EBUSY' && e.path === dev);
          await assert.rejects(mkfsExt4(img), (e: unknown) => e instanceof SyscallError && e.code === 'EBUSY');
          const lf = await fsp.stat(path.join(mp, 'lost+found'));
          assert.ok(lf.isDirectory());
          assert.equal(lf.mode & 0o7777, 0o700);
          assert.equal(lf.size, 16384, 'lost+found is grown to 16 KiB, as mke2fs does');
          const root = await fsp.stat(mp);
          assert.equal(root.mode & 0o7777, 0o755);
          assert.equal(root.uid, 0);
          assert.equal(root.gid, 0);
          assert.deepEqual(await fsp.readdir(mp), ['lost+found']);
          ours = await statfs(mp);
          assert.equal(ours.f_type, 0xef53);
          // Files: small, 8 MiB, many in a directory; read back after a sync.
          const big = Buffer.alloc(8 * 1024 * 1024);
          for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i ^ 0x9e3779b9) >>> 0, i);
          await fsp.writeFile(path.join(mp, 'big'), big);
          await fsp.mkdir(path.join(mp, 'd'));
          for (let i = 0; i < 500; i++) await fsp.writeFile(path.join(mp, 'd', `f${i}`), `file ${i}\n`);
          const fh = await fsp.open(path.join(mp, 'big'), 'r');
          await fh.sync();
          await fh.close();
          assert.ok((await fsp.readFile(path.join(mp, 'big'))).equals(big));
          assert.equal((await fsp.readdir(path.join(mp, 'd'))).length, 500);
          assert.equal(await fsp.readFile(path.join(mp, 'd', 'f499'), 'utf8'), 'file 499\n');
          await fsp.rm(path.join(mp, 'd'), { recursive: true });
        });
        fsckClean(dev);
        // The block device itself, as the devicemapper driver formats its thin device: size from
        // BLKGETSIZE64, BLKDISCARD (a loop device's discard does not promise zeroes: lazy tables).
        const rd = await mkfsExt4(dev, { label: 'ten-dev' });
        assert.equal(rd.blocks, 10 * GiB / 4096);
        assert.ok(rd.discarded && !rd.itableZeroed, JSON.stringify(rd));
        fsckClean(dev);
        await withMount(tmp, 'mnt2', dev, async (mp) => {
          await fsp.writeFile(path.join(mp, 'x'), 'x');
          assert.deepEqual((await fsp.readdir(mp)).sort(), ['lost+found', 'x']);
        });
        fsckClean(dev);
      });

      if (MKFS_EXT4 === undefined) return;
      const peer = await sparseFile(tmp, 'peer.img', 10 * GiB);
      run(MKFS_EXT4, ['-q', '-F', peer]);
      await withLoop(peer, (dev) => withMount(tmp, 'peer-mnt', dev, async (mp) => {
        const theirs = await statfs(mp);
        const o = ours!;
        for (const k of ['f_blocks', 'f_bfree', 'f_bavail', 'f_files', 'f_ffree'] as const) {
          const rel = Math.abs(o[k] - theirs[k]) / theirs[k];
          assert.ok(rel <= 0.02, `${k}: ours ${o[k]}, mkfs.ext4 ${theirs[k]} (${(rel * 100).toFixed(2)}% apart)`);
        }
        assert.equal(o.f_bsize, theirs.f_bsize);
      }));
    });
  });

test('no journal: has_journal absent, e2fsck clean', { skip: noOracle }, async () => {
  await withTmpDir(async (tmp) => {
    const img = await sparseFile(tmp, 'nj.img', GiB);
    const r = await mkfsExt4(img, { journal: false });
    assert.equal(r.journalBlocks, 0);
    assert.ok(!r.features.includes('has_journal'));
    fsckClean(img);
    assert.ok(!features(superblock(img)).includes('has_journal'));
    // The same through the feature list.
    const r2 = await mkfsExt4(img, { features: ['^has_journal'] });
    assert.ok(!r2.features.includes('has_journal'));
    fsckClean(img);
  });
});

test('blockSize 1024, inodes, inodeSize 128, reservedPercent, journalBlocks: as asked, e2fsck clean', { skip: noOracle }, async () => {
  await withTmpDir(async (tmp) => {
    const img = await sparseFile(tmp, 'o.img', GiB);
    const r = await mkfsExt4(img, { blockSize: 1024, inodes: 100000, inodeSize: 128, reservedPercent: 1, journalBlocks: 8192 });
    fsckClean(img);
    const sb = superblock(img);
    assert.equal(sb.get('Block size'), '1024');
    assert.equal(sb.get('Block count'), String(GiB / 1024));
    assert.equal(sb.get('Inode size'), '128');
    assert.ok(r.inodes >= 100000 && r.inodes < 110000, `inodes ${r.inodes}`);
    assert.equal(sb.get('Inode count'), String(r.inodes));
    assert.equal(sb.get('Reserved block count'), String(Math.floor(GiB / 1024 / 100)));
    assert.equal(sb.get('Total journal blocks'), '8192');
  });
});

test('other feature sets are e2fsck clean too: uninit_bg, ext2-like, metadata_csum_seed, no resize_inode, eager inode tables',
  { skip: noOracle }, async () => {
    await withTmpDir(async (tmp) => {
      const img = await sparseFile(tmp, 'f.img', 2 * GiB);
      const variants: Array<[string, Parameters<typeof mkfsExt4>[1]]> = [
        ['uninit_bg', { features: ['^metadata_csum', 'uninit_bg'] }],
        ['ext2-like', { features: ['^has_journal', '^extent', '^64bit', '^flex_bg', '^metadata_csum', '^huge_file', '^dir_nlink', '^extra_isize'] }],
        ['metadata_csum_seed', { features: ['metadata_csum_seed'] }],
        ['no resize_inode', { features: ['^resize_inode'] }],
        ['eager inode tables, no discard', { discard: false, lazyItableInit: false }],
        ['lazy journal', { lazyJournalInit: true, discard: false }],
        ['first 300 MiB only', { sizeBytes: 300 * 1024 * 1024 }],
      ];
      for (const [name, opts] of variants) {
        const r = await mkfsExt4(img, opts);
        try {
          fsckClean(img);
        } catch (err) {
          throw new Error(`${name}: ${(err as Error).message}`);
        }
        const sb = superblock(img);
        assert.deepEqual(features(sb), [...r.features].sort(), name);
        assert.equal(sb.get('Block count'), String(r.blocks), name);
      }
    });
  });

test('bad options throw before the device is touched', async () => {
  await withTmpDir(async (tmp) => {
    const img = await sparseFile(tmp, 'x.img', 64 * 1024 * 1024);
    const bad: Array<[string, unknown, string]> = [
      ['label of 17 bytes', { label: 'abcdefghijklmnopq' }, 'ERR_INVALID_ARG_VALUE'],
      ['label of 9 two-byte characters', { label: 'éééééééé\u00e9' }, 'ERR_INVALID_ARG_VALUE'],
      ['an unknown feature', { features: ['bigalloc'] }, 'ERR_INVALID_ARG_VALUE'],
      ['a feature misspelt', { features: ['^has_jounral'] }, 'ERR_INVALID_ARG_VALUE'],
      ['an unknown option', { blocksize: 4096 }, 'ERR_INVALID_ARG_VALUE'],
      ['blockSize 8192', { blockSize: 8192 }, 'ERR_INVALID_ARG_VALUE'],
      ['inodeSize 512', { inodeSize: 512 }, 'ERR_INVALID_ARG_VALUE'],
      ['reservedPercent 51', { reservedPercent: 51 }, 'ERR_INVALID_ARG_VALUE'],
      ['a malformed uuid', { uuid: 'random' }, 'ERR_INVALID_ARG_VALUE'],
      ['journalBlocks without a journal', { journal: false, journalBlocks: 2048 }, 'ERR_INVALID_ARG_VALUE'],
      ['journalBlocks under 1024', { journalBlocks: 1000 }, 'ERR_INVALID_ARG_VALUE'],
      ['a string blockSize', { blockSize: '4096' }, 'ERR_INVALID_ARG_TYPE'],
      ['features not an array', { features: 'metadata_csum' }, 'ERR_INVALID_ARG_TYPE'],
    ];
    const call = mkfsExt4 as (p: string, o: unknown) => Promise<unknown>;
    for (const [what, opts, code] of bad) {
      await assert.rejects(call(img, opts), (e: unknown) => {
        assert.ok(e instanceof TypeError || e instanceof RangeError, `${what}: ${String(e)}`);
        assert.equal((e as { code?: string }).code, code, `${what}: ${(e as Error).message}`);
        return true;
      }, what);
    }
    assert.match(await call(img, { features: ['bigalloc'] }).then(() => '', (e: Error) => e.message), /bigalloc.*supported: has_journal/);
    const st = await fsp.stat(img);
    assert.equal(st.blocks, 0, 'nothing was written');
  });
});

test('a missing path rejects with ENOENT and the path', async () => {
  const p = '/nonexistent/graphdriver-test/dev.img';
  await assert.rejects(mkfsExt4(p), (e: unknown) =>
    e instanceof SyscallError && e.code === 'ENOENT' && e.errno === -2 && e.syscall === 'open' && e.path === p);
});

test('a directory is refused with MkfsError', async () => {
  await withTmpDir(async (tmp) => {
    await assert.rejects(mkfsExt4(tmp.path), (e: unknown) =>
      e instanceof MkfsError && e.code === 'ERR_GRAPHDRIVER_MKFS' && e.path === tmp.path && /not a block device or a regular file/.test(e.message));
  });
});

test('a too small device (64 KiB) rejects with MkfsError EXT2_ET_TOOSMALL from ext2fs_initialize', async () => {
  await withTmpDir(async (tmp) => {
    const img = await sparseFile(tmp, 'tiny.img', 64 * 1024);
    const e = await mkfsExt4(img).then(() => undefined, (err: unknown) => err);
    assert.ok(e instanceof MkfsError, String(e));
    assert.equal(e.code, 'ERR_GRAPHDRIVER_MKFS');
    assert.equal(e.ext2Code, 'EXT2_ET_TOOSMALL');
    assert.equal(e.syscall, 'ext2fs_initialize');
    assert.equal(e.path, img);
    assert.match(e.message, /Not enough space to build proposed filesystem/);
    assert.match(e.stack ?? '', /mkfs-ext4\.test/, 'the stack is the caller\'s');
    // 1 KiB blocks: initialize succeeds but fewer inodes than the reserved ones fit.
    await assert.rejects(mkfsExt4(img, { blockSize: 1024 }), (err: unknown) =>
      err instanceof MkfsError && err.ext2Code === 'EXT2_ET_TOOSMALL' && /reserved/.test(err.message));
    // Nothing at all.
    const empty = await sparseFile(tmp, 'empty.img', 0);
    await assert.rejects(mkfsExt4(empty), (err: unknown) => err instanceof MkfsError && err.ext2Code === 'EXT2_ET_TOOSMALL');
  });
});

test('size checks against the device: sizeBytes beyond it, a journal too big, too many inodes', async () => {
  await withTmpDir(async (tmp) => {
    const img = await sparseFile(tmp, 's.img', 256 * 1024 * 1024);
    await assert.rejects(mkfsExt4(img, { sizeBytes: 512 * 1024 * 1024 }), (e: unknown) =>
      e instanceof MkfsError && e.syscall === 'mkfsExt4' && /exceeds the device/.test(e.message));
    await assert.rejects(mkfsExt4(img, { journalBlocks: 60000 }), (e: unknown) =>
      e instanceof MkfsError && /journal size too big/.test(e.message));
    await assert.rejects(mkfsExt4(img, { inodes: 2_000_000 }), (e: unknown) =>
      e instanceof MkfsError && (e.ext2Code === 'EXT2_ET_TOO_MANY_INODES' || /too big/.test(e.message)));
  });
});
