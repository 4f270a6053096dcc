// oracle.test.ts: GNU tar as an independent oracle of the archive engine, on a real tree.
// A tar of parts of this machine's own root (etc, usr/bin, python, docs, zoneinfo — capped in
// bytes and entries) plus a synthetic corner-case dir (devices, fifo, caps, binary and trusted
// xattrs, xattrs on a symlink and a dir, setuid/setgid/sticky, big ids, long names, hardlink
// groups, ns mtimes) is made with GNU tar (posix), then extracted by GNU tar into one dir and
// by applyLayer into another; the trees must agree entry by entry (type, mode, owner, rdev,
// size, sha256, symlink target, mtime to the nanosecond — directories too —, every xattr,
// hardlink groups). The applied tree is exported with exportTree, `tar --compare` must find no
// difference, and applying the export reproduces the tree exactly. A changed layer's diff
// (changesDirs + exportChanges) applied onto a copy of its parent reproduces the child; GNU
// sparse archives extract to the same bytes, written sparse. This file owns its tree walker
// (fs-tree.ts records neither directory mtimes nor xattrs outside user.*/capability).
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, lstatSync, promises as fsp, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { applyLayer } from '../../lib/archive/apply';
import { changesDirs } from '../../lib/archive/changes';
import { exportChanges, exportTree } from '../../lib/archive/export';
import { lgetxattr, llistxattr, lsetxattr } from '../../lib/native';
import { buildTree, majorMinor, type EntrySpec } from '../helpers/fs-tree';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

const TAR_C = ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--format=posix'];
const TAR_X = ['--xattrs', '--xattrs-include=*', '--same-owner', '--numeric-owner'];
/** Host dirs tarred when present, in this order, until a cap is reached. */
const HOST_DIRS = ['etc', 'usr/bin', 'usr/sbin', 'usr/lib/python3.11', 'usr/share/zoneinfo', 'usr/share/doc'];
const MAX_BYTES = 160 << 20;
const MAX_FILE = 16 << 20;
const MAX_ENTRIES = 40_000;

/** Runs GNU tar; throws with its output unless the exit code is in `ok`. */
function gnuTar(args: string[], ok: number[] = [0]): { status: number; output: string } {
  const r = spawnSync('tar', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  const output = `${r.stdout}${r.stderr}`;
  if (r.status === null || !ok.includes(r.status)) throw new Error(`tar ${args.join(' ')} exited ${r.status}:\n${output.slice(0, 8000)}`);
  return { status: r.status, output };
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
}

/** Pre-order list of host paths (relative to /) to tar, ancestors first, within the caps. */
function hostPaths(): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  let bytes = 0;
  const add = (rel: string): void => { if (!seen.has(rel)) { seen.add(rel); out.push(rel); } };
  const walk = (rel: string): boolean => {
    if (out.length >= MAX_ENTRIES || bytes >= MAX_BYTES) return false;
    let st;
    try { st = lstatSync(`/${rel}`); } catch { return true; } // vanished: skip
    if (st.isSocket()) return true;
    if (st.isFile()) {
      if (st.size > MAX_FILE) return true;
      bytes += st.size;
    }
    add(rel);
    if (!st.isDirectory()) return true;
    let names: string[];
    try { names = readdirSync(`/${rel}`).sort(); } catch { return true; }
    for (const n of names) if (!walk(`${rel}/${n}`)) return false;
    return true;
  };
  for (const dir of HOST_DIRS) {
    try { if (!lstatSync(`/${dir}`).isDirectory()) continue; } catch { continue; }
    const parts = dir.split('/');
    for (let i = 1; i < parts.length; i++) add(parts.slice(0, i).join('/'));
    if (!walk(dir)) break;
  }
  return out;
}

const CAP = Buffer.from('0100000201200000000000000000000000000000', 'hex'); // cap_net_raw+ep, v2
const BINARY = Buffer.from([0, 1, 0xff, 0x80, 0x0a, 0x3d, 0x20]);

/** Corner cases a host tree may lack, under `<root>/synthetic`. */
function syntheticSpec(): EntrySpec[] {
  const t = (s: number, ns: number): bigint => BigInt(s) * 1_000_000_000n + BigInt(ns);
  const long = `synthetic/${'l'.repeat(120)}/${'m'.repeat(200)}`;
  return [
    { type: 'dir', path: 'synthetic', mode: 0o750, uid: 1234, gid: 5678, mtimeNs: t(1_500_000_000, 123_456_789), xattrs: { 'user.dir': 'on a dir' } },
    { type: 'file', path: 'synthetic/cap', content: 'ping', mode: 0o755, mtimeNs: t(1_600_000_000, 1),
      xattrs: { 'security.capability': CAP, 'user.bin': BINARY, 'trusted.t': 'trusted', 'user.big': Buffer.alloc(2000, 0x5a) } },
    { type: 'file', path: 'synthetic/suid', content: 'x', mode: 0o6755, mtimeNs: t(1_600_000_001, 999_999_999) },
    { type: 'dir', path: 'synthetic/sticky', mode: 0o1777, mtimeNs: t(1_600_000_002, 5) },
    { type: 'char', path: 'synthetic/null', major: 1, minor: 3, mode: 0o666, mtimeNs: t(1_600_000_003, 0) },
    { type: 'block', path: 'synthetic/loop9', major: 7, minor: 9, mode: 0o660, gid: 6 },
    { type: 'fifo', path: 'synthetic/fifo', mode: 0o640, uid: 3_000_000, gid: 4_000_000 },
    { type: 'file', path: 'synthetic/hl/a', content: 'three names', mode: 0o640, uid: 33, gid: 33, mtimeNs: t(1_600_000_004, 42) },
    { type: 'hardlink', path: 'synthetic/hl/b', target: 'synthetic/hl/a' },
    { type: 'hardlink', path: 'synthetic/other/c', target: 'synthetic/hl/a' },
    { type: 'symlink', path: 'synthetic/long-link', target: `../${'t'.repeat(150)}`, xattrs: { 'trusted.sym': 'on a symlink' } },
    { type: 'symlink', path: 'synthetic/abs-out', target: '/etc/passwd' },
    { type: 'file', path: long, content: 'deep and long', mtimeNs: t(1_600_000_005, 7) },
    { type: 'file', path: 'synthetic/ünïcødé ✓ name', content: '', mtimeNs: t(1_600_000_006, 0) },
    { type: 'file', path: 'synthetic/.wh-not-a-whiteout', content: 'data' },
  ];
}

interface Rec {
  type: string; mode: number; uid: number; gid: number; rdev?: string; size?: number; sha256?: string;
  target?: string; mtimeNs: bigint; xattrs: string[]; links?: string[];
}

const typeOf = (st: import('node:fs').BigIntStats): string => (st.isDirectory() ? 'dir' : st.isFile() ? 'file'
  : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'socket');

async function sha256(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(p)) h.update(c as Buffer);
  return h.digest('hex');
}

/** Every entry under `root` ('/' = root) with all its metadata and every xattr. */
async function walk(root: string): Promise<Map<string, Rec>> {
  const snap = new Map<string, Rec>();
  const groups = new Map<string, string[]>();
  const visit = async (p: string, rel: string): Promise<void> => {
    const st = await fsp.lstat(p, { bigint: true });
    const type = typeOf(st);
    const names = (await llistxattr(p)).sort();
    const xattrs: string[] = [];
    for (const n of names) {
      const v = await lgetxattr(p, n);
      xattrs.push(`${n}=${v.length <= 32 ? v.toString('hex') : `${v.length}B:sha256:${createHash('sha256').update(v).digest('hex').slice(0, 16)}`}`);
    }
    const rec: Rec = { type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs, xattrs };
    if (type === 'char' || type === 'block') rec.rdev = majorMinor(st.rdev).join(':');
    if (type === 'file') { rec.size = Number(st.size); rec.sha256 = await sha256(p); }
    if (type === 'symlink') rec.target = (await fsp.readlink(p, { encoding: 'buffer' })).toString('hex');
    if (type !== 'dir' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const g = groups.get(key) ?? [];
      groups.set(key, g);
      g.push(rel);
      rec.links = g;
    }
    snap.set(rel, rec);
    if (type === 'dir') {
      for (const n of (await fsp.readdir(p)).sort()) await visit(path.join(p, n), rel === '/' ? `/${n}` : `${rel}/${n}`);
    }
  };
  await visit(root, '/');
  for (const rec of snap.values()) if (rec.links !== undefined && rec.links.length < 2) delete rec.links;
  return snap;
}

/** Differences as `path: field a != b` lines. The roots' own metadata is not compared (not an entry). */
function compare(a: Map<string, Rec>, b: Map<string, Rec>, labels: [string, string]): string[] {
  const out: string[] = [];
  for (const p of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(p);
    const y = b.get(p);
    if (x === undefined || y === undefined) { out.push(`${p}: only in ${x === undefined ? labels[1] : labels[0]}`); continue; }
    const fields: Array<keyof Rec> = p === '/' ? ['type'] : ['type', 'mode', 'uid', 'gid', 'rdev', 'size', 'sha256', 'target', 'mtimeNs', 'xattrs', 'links'];
    for (const f of fields) {
      const show = (v: Rec[keyof Rec]): string => (v === undefined ? '-' : Array.isArray(v) ? `[${v.join(', ')}]` : f === 'mode' ? `0${(v as number).toString(8)}` : String(v));
      if (show(x[f]) !== show(y[f])) out.push(`${p}: ${f} ${show(x[f])} (${labels[0]}) != ${show(y[f])} (${labels[1]})`);
    }
  }
  return out;
}

function assertSame(diffs: string[], what: string): void {
  assert.equal(diffs.length, 0, `${what}: ${diffs.length} differences:\n${diffs.slice(0, 60).join('\n')}`);
}

async function applyFile(dir: string, tarPath: string): Promise<void> {
  await applyLayer(dir, createReadStream(tarPath));
}

async function exportTo(stream: NodeJS.ReadableStream, file: string): Promise<void> {
  await pipeline(stream, createWriteStream(file));
}

// Per-test timeouts: a hung apply fails its test instead of stalling the run.
const T = { timeout: 90_000 };

describe('GNU tar oracle', { skip: skipUnlessRoot('chown, mknod, trusted.* xattrs') }, () => {
  test('a real rootfs extracts as GNU tar extracts it; export passes tar --compare; round trip exact', T, async () => {
    await withTmpDir(async (tmp) => {
      const staging = await tmp.mkdir('staging');
      await buildTree(staging, syntheticSpec());
      const list = hostPaths();
      assert.ok(list.length > 1000, `expected a real tree to tar, found ${list.length} entries`);
      await fsp.writeFile(tmp.join('list'), list.join('\0') + '\0');
      const src = tmp.join('src.tar');
      // Exit 1: a file changed while being read (a live system); the oracle still extracts what was read.
      gnuTar(['-c', ...TAR_C, '--ignore-failed-read', '--no-recursion', '--null', '-f', src, '-C', '/', '-T', tmp.join('list'),
        '--recursion', '-C', staging, 'synthetic'], [0, 1]);

      const theirs = await tmp.mkdir('gnu');
      const ours = await tmp.mkdir('ours');
      gnuTar(['-x', ...TAR_X, '-f', src, '-C', theirs]);
      await applyFile(ours, src);
      const gnuSnap = await walk(theirs);
      const ourSnap = await walk(ours);
      assert.ok(gnuSnap.size >= list.length, `GNU tar extracted ${gnuSnap.size} entries of ${list.length}`);
      assertSame(compare(gnuSnap, ourSnap, ['gnu tar -x', 'applyLayer']), 'applyLayer vs GNU tar -x');

      const exported = tmp.join('exported.tar');
      await exportTo(exportTree(ours), exported);
      const cmp = spawnSync('tar', ['--compare', '--xattrs', '-f', exported, '-C', ours], { encoding: 'utf8', maxBuffer: 64 << 20 });
      assert.equal(cmp.status, 0, `tar --compare of the export against its tree exited ${cmp.status}:\n${`${cmp.stdout}${cmp.stderr}`.slice(0, 8000)}`);

      const again = await tmp.mkdir('again');
      await applyFile(again, exported);
      assertSame(compare(ourSnap, await walk(again), ['applied', 'export applied']), 'export round trip');
    }, 'oracle-');
  });

  test('an exported diff of a changed layer, applied onto its parent, reproduces the child', T, async () => {
    await withTmpDir(async (tmp) => {
      const parent = await tmp.mkdir('parent');
      const t = (s: number, ns: number): bigint => BigInt(s) * 1_000_000_000n + BigInt(ns);
      await buildTree(parent, [
        { type: 'dir', path: 'etc', mtimeNs: t(1_500_000_000, 1) },
        { type: 'file', path: 'etc/passwd', content: 'root:x:0:0\n', mtimeNs: t(1_500_000_001, 2) },
        { type: 'file', path: 'etc/shadow', content: 'secret', mode: 0o640, gid: 42, mtimeNs: t(1_500_000_002, 3) },
        { type: 'file', path: 'etc/motd', content: 'hello', xattrs: { 'user.a': 'old' }, mtimeNs: t(1_500_000_003, 4) },
        { type: 'dir', path: 'var/lib/deep/er/still', mtimeNs: t(1_500_000_004, 5) },
        { type: 'file', path: 'var/lib/deep/er/still/f', content: 'deep', mtimeNs: t(1_500_000_005, 6) },
        { type: 'dir', path: 'gone/sub', mtimeNs: t(1_500_000_006, 7) },
        { type: 'file', path: 'gone/sub/x', content: 'x' },
        { type: 'file', path: 'becomes-dir', content: 'file now' },
        { type: 'dir', path: 'becomes-file' },
        { type: 'file', path: 'becomes-file/inner', content: 'i' },
        { type: 'symlink', path: 'link', target: 'etc/passwd' },
        { type: 'fifo', path: 'fifo' },
        { type: 'file', path: 'bin/tool', content: 'tool', mode: 0o755, mtimeNs: t(1_500_000_007, 8) },
      ]);
      const child = tmp.join('child');
      run('cp', ['-a', parent, child]);
      const c = (rel: string): string => path.join(child, rel);
      await fsp.writeFile(c('etc/passwd'), 'root:x:0:0\nuser:x:1000:1000\n');
      await fsp.chmod(c('etc/shadow'), 0o600);
      await fsp.chown(c('etc/motd'), 7, 8);
      await lsetxattr(c('etc/motd'), 'user.a', Buffer.from('new'), 0);
      await fsp.writeFile(c('var/lib/deep/er/still/f'), 'DEEP');
      await fsp.rm(c('gone'), { recursive: true });
      await fsp.rm(c('etc/shadow'));
      await fsp.rm(c('becomes-dir'));
      await fsp.mkdir(c('becomes-dir/inside'), { recursive: true });
      await fsp.writeFile(c('becomes-dir/inside/n'), 'n');
      await fsp.rm(c('becomes-file'), { recursive: true });
      await fsp.writeFile(c('becomes-file'), 'was a dir');
      await fsp.unlink(c('link'));
      await fsp.symlink('/etc/motd', c('link'));
      await fsp.mkdir(c('new/dir'), { recursive: true });
      await fsp.writeFile(c('new/dir/a'), 'linked pair');
      await fsp.link(c('new/dir/a'), c('new/b'));
      await fsp.chmod(c('bin/tool'), 0o4755);
      await buildTree(child, [{ type: 'file', path: 'new/timed', content: 'ns', mtimeNs: t(1_700_000_000, 123_456_789) }]);

      const changes = await changesDirs(child, parent);
      assert.ok(changes.length > 10, `changes: ${JSON.stringify(changes)}`);
      const diffTar = tmp.join('diff.tar');
      await exportTo(exportChanges(child, changes), diffTar);
      const target = tmp.join('target');
      run('cp', ['-a', parent, target]);
      await applyFile(target, diffTar);
      assertSame(compare(await walk(child), await walk(target), ['child', 'parent + diff']), 'diff applied onto the parent');
    }, 'oracle-diff-');
  });

  for (const version of ['0.0', '0.1', '1.0']) {
    test(`GNU sparse ${version} (posix) extracts to GNU tar's bytes, written sparse`, T, async () => {
      await withTmpDir(async (tmp) => {
        const src = await tmp.mkdir('src');
        const fh = await fsp.open(path.join(src, 'sparse'), 'w', 0o644);
        await fh.write(Buffer.alloc(4096, 0x61), 0, 4096, 0);
        await fh.write(Buffer.alloc(8192, 0x62), 0, 8192, 8 << 20);
        await fh.truncate(32 << 20);
        await fh.close();
        const archive = tmp.join('s.tar');
        gnuTar(['-c', ...TAR_C, '--sparse', `--sparse-version=${version}`, '-f', archive, '-C', src, '.']);
        const theirs = await tmp.mkdir('gnu');
        const ours = await tmp.mkdir('ours');
        gnuTar(['-x', ...TAR_X, '-f', archive, '-C', theirs]);
        await applyFile(ours, archive);
        assertSame(compare(await walk(theirs), await walk(ours), ['gnu tar -x', 'applyLayer']), `sparse ${version}`);
        const blocks = async (d: string): Promise<bigint> => (await fsp.stat(path.join(d, 'sparse'), { bigint: true })).blocks;
        const [gb, ob] = [await blocks(theirs), await blocks(ours)];
        assert.ok(ob <= gb + 64n, `applyLayer allocated ${ob} blocks for a 32 MiB file with 12 KiB of data (GNU tar: ${gb})`);
      }, 'oracle-sparse-');
    });
  }
});
