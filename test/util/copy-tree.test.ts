// copy-tree.test.ts: copyTree keeps every byte and every bit of metadata of a tree that holds
// every kind of inode Linux has, and never follows a symlink. Needs root (chown, mknod,
// trusted.* and security.capability xattrs). Each test works in its own temp dir, removed even
// when the test fails.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as native from '../../lib/native';
import { C } from '../../lib/native';
import { copyTree } from '../../lib/util/copy-tree';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

const skip = skipUnlessRoot('chown, mknod and trusted/security xattrs');

/** A v2 file capability blob: cap_net_raw+ep (magic 0x02000001 LE, permitted bit 13, rest 0). */
const CAP_NET_RAW_EP = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const BINARY_VALUE = Buffer.from([0x61, 0x00, 0x62, 0xff, 0x00]);

const sec = 1_000_000_000n;
function nsTime(ns: bigint): [number, number] {
  return [Number(ns / sec), Number(ns % sec)];
}
/** Sets atime and mtime (ns) without following a final symlink. */
async function setTimes(p: string, atimeNs: bigint, mtimeNs: bigint): Promise<void> {
  const [as, ans] = nsTime(atimeNs);
  const [ms, mns] = nsTime(mtimeNs);
  await native.utimensat(C.AT_FDCWD, p, as, ans, ms, mns, C.AT_SYMLINK_NOFOLLOW);
}

/** Builds the tree with every inode kind under `src`; `outside` is a directory beside it. */
async function buildTree(src: string, outside: string): Promise<{ big: Buffer; times: Map<string, bigint> }> {
  await fsp.mkdir(src, 0o755);
  await fsp.mkdir(outside);
  await fsp.writeFile(path.join(outside, 'secret'), 'must not be copied');

  const j = (...p: string[]): string => path.join(src, ...p);
  // Sticky dir 01705 owned 1:2 (chmod after chown, which would clear set-id bits).
  await fsp.mkdir(j('sticky'));
  await fsp.chown(j('sticky'), 1, 2);
  await fsp.chmod(j('sticky'), 0o1705);
  // setuid file owned 3:4 with a file capability (set last: chown clears it).
  await fsp.writeFile(j('sticky', 'suid'), '#!/bin/true\n');
  await fsp.chown(j('sticky', 'suid'), 3, 4);
  await fsp.chmod(j('sticky', 'suid'), 0o4755);
  await native.lsetxattr(j('sticky', 'suid'), 'security.capability', CAP_NET_RAW_EP, 0);
  // setgid dir
  await fsp.mkdir(j('sgid'));
  await fsp.chmod(j('sgid'), 0o2775);
  // write-only file
  await fsp.writeFile(j('writeonly'), 'w');
  await fsp.chmod(j('writeonly'), 0o222);
  // empty file with xattrs of two namespaces, one value binary with a NUL
  await fsp.writeFile(j('empty'), '');
  await native.lsetxattr(j('empty'), 'user.foo', BINARY_VALUE, 0);
  await native.lsetxattr(j('empty'), 'trusted.bar', Buffer.from('t'), 0);
  // nested dirs
  await fsp.mkdir(j('a', 'b', 'c'), { recursive: true });
  await fsp.writeFile(j('a', 'b', 'c', 'deep'), 'deep');
  await native.lsetxattr(j('a', 'b'), 'user.dir', Buffer.from('on a dir'), 0);
  // three names, one inode, across two directories
  await fsp.writeFile(j('a', 'h1'), 'hardlinked');
  await fsp.link(j('a', 'h1'), j('a', 'h2'));
  await fsp.link(j('a', 'h1'), j('a', 'b', 'h3'));
  // symlinks: to an absolute directory outside the tree, dangling, relative; owned 5:6
  await fsp.symlink(outside, j('to-outside'));
  await fsp.symlink('does/not/exist', j('dangling'));
  await fsp.symlink('../writeonly', j('a', 'rel'));
  await fsp.lchown(j('dangling'), 5, 6);
  await native.lsetxattr(j('dangling'), 'trusted.link', Buffer.from('x'), 0);
  // devices, fifo, socket
  await native.mknod(j('null'), C.S_IFCHR | 0o666, 1, 3);
  await native.mknod(j('blk'), C.S_IFBLK | 0o640, 7, 1000);
  await native.mknod(j('big-major'), C.S_IFCHR | 0o600, 4095, 1048575); // needs every bit of the encoding
  await native.mknod(j('fifo'), C.S_IFIFO | 0o620, 0, 0);
  await native.mknod(j('sock'), C.S_IFSOCK | 0o755, 0, 0);
  await fsp.chown(j('blk'), 0, 6);
  // 3 MiB of random data
  const big = randomBytes(3 * 1024 * 1024);
  await fsp.writeFile(j('big'), big);

  // Nanosecond times, deepest first so a parent's mtime is not bumped after it is set.
  const times = new Map<string, bigint>();
  const ordered = ['a/b/c/deep', 'a/b/c', 'a/b', 'a/h1', 'a/rel', 'a', 'sticky/suid', 'sticky', 'sgid',
    'writeonly', 'empty', 'to-outside', 'dangling', 'null', 'blk', 'big-major', 'fifo', 'sock', 'big', ''];
  let t = 1_600_000_000n * sec + 123_456_789n;
  for (const rel of ordered) {
    t += 1_000_000_001n;
    times.set(rel, t);
    await setTimes(j(rel), t - 7n, t);
  }
  times.set('a/h2', times.get('a/h1')!); // one inode: its times are the last set, through any name
  times.set('a/b/h3', times.get('a/h1')!);
  return { big, times };
}

interface Entry {
  rel: string;
  st: import('node:fs').BigIntStats;
}

/** Every entry below `root` (root included as ''), by lstat only. */
async function walk(root: string): Promise<Entry[]> {
  const out: Entry[] = [{ rel: '', st: await fsp.lstat(root, { bigint: true }) }];
  const visit = async (rel: string): Promise<void> => {
    for (const name of (await fsp.readdir(path.join(root, rel))).sort()) {
      const childRel = path.join(rel, name);
      const st = await fsp.lstat(path.join(root, childRel), { bigint: true });
      out.push({ rel: childRel, st });
      if (st.isDirectory()) await visit(childRel);
    }
  };
  await visit('');
  return out;
}

async function xattrsOf(p: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await native.llistxattr(p)).sort()) out[name] = (await native.lgetxattr(p, name)).toString('hex');
  return out;
}

test('copyTree keeps every inode kind with its data, owner, mode, xattrs, links and ns times', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const src = tmp.join('src');
    const dst = tmp.join('dst');
    const { big, times } = await buildTree(src, tmp.join('outside'));

    await copyTree(src, dst);

    const srcEntries = await walk(src);
    const dstEntries = await walk(dst);
    assert.deepEqual(dstEntries.map((e) => e.rel), srcEntries.map((e) => e.rel), 'same names');

    const dstByRel = new Map(dstEntries.map((e) => [e.rel, e.st]));
    for (const { rel, st: s } of srcEntries) {
      const d = dstByRel.get(rel)!;
      const what = rel === '' ? '<root>' : rel;
      assert.equal(d.mode, s.mode, `${what}: mode`);
      assert.equal(d.uid, s.uid, `${what}: uid`);
      assert.equal(d.gid, s.gid, `${what}: gid`);
      assert.equal(d.rdev, s.rdev, `${what}: rdev`);
      assert.equal(d.size, s.size, `${what}: size`);
      assert.equal(d.mtimeNs, s.mtimeNs, `${what}: mtimeNs`);
      assert.equal(d.mtimeNs, times.get(rel), `${what}: mtimeNs as set`);
      // Copies are not read yet, so their atime is still the one copied (the source's may
      // have moved: reading it for the copy updates it under relatime).
      assert.equal(d.atimeNs, times.get(rel)! - 7n, `${what}: atimeNs as set`);
      assert.deepEqual(await xattrsOf(path.join(dst, rel)), await xattrsOf(path.join(src, rel)), `${what}: xattrs`);
      if (s.isSymbolicLink()) {
        assert.deepEqual(await fsp.readlink(path.join(dst, rel), { encoding: 'buffer' }),
          await fsp.readlink(path.join(src, rel), { encoding: 'buffer' }), `${what}: link target`);
      } else if (s.isFile()) {
        assert.notEqual(d.ino, s.ino, `${what}: a copy, not the source inode`);
        assert.ok((await fsp.readFile(path.join(dst, rel))).equals(await fsp.readFile(path.join(src, rel))),
          `${what}: content`);
      }
    }

    // Spot checks of what the comparison above relies on, against the values that were set.
    const at = (rel: string): import('node:fs').BigIntStats => dstByRel.get(rel)!;
    assert.equal(Number(at('sticky').mode & 0o7777n), 0o1705);
    assert.deepEqual([at('sticky').uid, at('sticky').gid], [1n, 2n]);
    assert.equal(Number(at('sticky/suid').mode & 0o7777n), 0o4755);
    assert.deepEqual([at('sticky/suid').uid, at('sticky/suid').gid], [3n, 4n]);
    assert.ok((await native.lgetxattr(path.join(dst, 'sticky/suid'), 'security.capability')).equals(CAP_NET_RAW_EP));
    assert.equal(Number(at('sgid').mode & 0o7777n), 0o2775);
    assert.equal(Number(at('writeonly').mode & 0o7777n), 0o222);
    assert.ok((await native.lgetxattr(path.join(dst, 'empty'), 'user.foo')).equals(BINARY_VALUE));
    assert.ok(at('null').isCharacterDevice());
    assert.ok(at('blk').isBlockDevice());
    assert.ok(at('fifo').isFIFO());
    assert.ok(at('sock').isSocket());
    assert.deepEqual([at('dangling').uid, at('dangling').gid], [5n, 6n]);
    assert.ok((await fsp.readFile(path.join(dst, 'big'))).equals(big));

    // Hardlinks: one inode for the three names in the copy, not the source's inode.
    const links = ['a/h1', 'a/h2', 'a/b/h3'].map(at);
    assert.equal(new Set(links.map((s) => s.ino)).size, 1, 'hardlinks share one inode');
    assert.equal(links[0]!.nlink, 3n);
    const srcIno = srcEntries.find((e) => e.rel === 'a/h1')!.st.ino;
    assert.notEqual(links[0]!.ino, srcIno);
  });
});

test('copyTree copies a symlink to an outside directory as a symlink, not the directory', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const src = await tmp.mkdir('src');
    const outside = await tmp.mkdir('outside');
    await fsp.writeFile(path.join(outside, 'secret'), 'outside');
    await fsp.symlink(outside, path.join(src, 'escape'));
    await fsp.mkdir(path.join(src, 'sub'));
    await fsp.symlink('../../outside', path.join(src, 'sub', 'escape-rel'));
    const dst = tmp.join('dst');

    await copyTree(src, dst);

    assert.ok((await fsp.lstat(path.join(dst, 'escape'))).isSymbolicLink());
    assert.equal(await fsp.readlink(path.join(dst, 'escape')), outside);
    assert.equal(await fsp.readlink(path.join(dst, 'sub', 'escape-rel')), '../../outside');
    assert.deepEqual((await walk(dst)).map((e) => e.rel), ['', 'escape', 'sub', 'sub/escape-rel']);
    assert.deepEqual(await fsp.readdir(outside), ['secret'], 'outside untouched');
  });
});

test('copyTree refuses a symlink as src, and a non-empty dst; accepts an empty existing dst', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const src = await tmp.mkdir('src');
    await fsp.writeFile(path.join(src, 'f'), 'f');
    await fsp.symlink(src, tmp.join('link'));
    // open(O_DIRECTORY|O_NOFOLLOW) on a symlink: the kernel answers ENOTDIR (ELOOP without O_DIRECTORY).
    await assert.rejects(copyTree(tmp.join('link'), tmp.join('d1')), { code: 'ENOTDIR' });
    await assert.rejects(fsp.lstat(tmp.join('d1')), { code: 'ENOENT' });

    const full = await tmp.mkdir('full');
    await fsp.writeFile(path.join(full, 'x'), 'x');
    await assert.rejects(copyTree(src, full), { code: 'ENOTEMPTY' });

    const empty = await tmp.mkdir('empty', 0o700);
    await copyTree(src, empty);
    assert.equal(await fsp.readFile(path.join(empty, 'f'), 'utf8'), 'f');
    assert.equal((await fsp.stat(empty)).mode & 0o7777, (await fsp.stat(src)).mode & 0o7777);
  });
});

test('copyTree copies a wide, deep tree (more entries than its concurrency bound, deeper than PATH_MAX)', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const src = await tmp.mkdir('src');
    for (let i = 0; i < 100; i++) await fsp.writeFile(path.join(src, `f${i}`), `content ${i}`);
    // 40 levels of 200-byte names: 8 KB of path, beyond PATH_MAX (4096); built fd-relative.
    const component = 'd'.repeat(200);
    let fd = await native.open(src, C.O_RDONLY | C.O_DIRECTORY, 0);
    try {
      for (let i = 0; i < 40; i++) {
        await native.mkdirat(fd, component, 0o755);
        const child = await native.openat(fd, component, C.O_RDONLY | C.O_DIRECTORY, 0);
        native.closeSync(fd);
        fd = child;
      }
      const leaf = await native.openat(fd, 'leaf', C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o644);
      await fsp.writeFile(`/proc/self/fd/${leaf}`, 'at the bottom');
      native.closeSync(leaf);
    } finally {
      native.closeSync(fd);
    }
    const dst = tmp.join('dst');
    try {
      await copyTree(src, dst);

      for (let i = 0; i < 100; i++) assert.equal(await fsp.readFile(path.join(dst, `f${i}`), 'utf8'), `content ${i}`);
      let dfd = await native.open(dst, C.O_RDONLY | C.O_DIRECTORY, 0);
      try {
        for (let i = 0; i < 40; i++) {
          const child = await native.openat(dfd, component, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW, 0);
          native.closeSync(dfd);
          dfd = child;
        }
        assert.equal(await fsp.readFile(`/proc/self/fd/${dfd}/leaf`, 'utf8'), 'at the bottom');
      } finally {
        native.closeSync(dfd);
      }
    } finally {
      // The temp dir's cleanup (fs.rm, by full path) cannot go beyond PATH_MAX: remove fd-relative.
      const tfd = await native.open(tmp.path, C.O_RDONLY | C.O_DIRECTORY, 0);
      try {
        await native.removeAllAt(tfd, 'src');
        await native.removeAllAt(tfd, 'dst');
      } finally {
        native.closeSync(tfd);
      }
    }
  });
});
