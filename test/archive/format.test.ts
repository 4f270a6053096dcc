// format.test.ts: the tar codec against GNU tar as an independent oracle — archives GNU tar
// writes (gnu, posix/pax, ustar formats; long names; base-256 ids; binary xattrs) are read
// exactly, archives we write are read back by GNU tar exactly, and malformed input (garbage,
// truncation, unsupported compression) fails with a clear ArchiveError.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import { applyLayer } from '../../lib/archive/apply';
import { exportTree } from '../../lib/archive/export';
import { encodePax, parsePax } from '../../lib/archive/tar-format';
import { readTar } from '../../lib/archive/tar-stream-io';
import { ArchiveError } from '../../lib/errors';
import { lgetxattr, lsetxattr } from '../../lib/native';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

function gnuTar(args: string[]): void {
  const r = spawnSync('tar', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar ${args.join(' ')} failed: ${r.stderr}`);
}

const CAP = Buffer.from('0100000201200000000000000000000000000000', 'hex'); // cap_net_raw+ep, v2
const BINARY = Buffer.from([0, 1, 0xff, 0x80, 0x0a, 0x3d]);                // NUL, high bytes, '\n', '='

/** A listing good enough to compare trees made by GNU tar and by us. */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const n of (await fsp.readdir(path.join(dir, rel))).sort()) {
      const p = path.join(dir, rel, n);
      const st = await fsp.lstat(p, { bigint: true });
      const extra = st.isFile() ? (await fsp.readFile(p)).toString('hex').slice(0, 64)
        : st.isSymbolicLink() ? await fsp.readlink(p) : '';
      let xattr = '';
      if (!st.isSymbolicLink()) {
        xattr = (await lgetxattr(p, 'user.bin').catch(() => Buffer.alloc(0))).toString('hex');
        xattr += '/' + (await lgetxattr(p, 'security.capability').catch(() => Buffer.alloc(0))).toString('hex');
      }
      out.push([path.join(rel, n), st.mode.toString(8), st.uid, st.gid, st.rdev, st.size, st.nlink,
        st.isDirectory() ? '' : st.mtimeNs / 1_000_000_000n, extra, xattr].join(' '));
      if (st.isDirectory()) await walk(path.join(rel, n));
    }
  };
  await walk('');
  return out;
}

async function buildSource(src: string): Promise<void> {
  const long = 'd'.repeat(90);
  await fsp.mkdir(path.join(src, long, 'e'.repeat(120)), { recursive: true });
  await fsp.writeFile(path.join(src, long, 'e'.repeat(120), 'f'.repeat(200)), 'deep and long');
  await fsp.writeFile(path.join(src, 'cap'), 'binary xattrs');
  await lsetxattr(path.join(src, 'cap'), 'user.bin', BINARY, 0);
  await lsetxattr(path.join(src, 'cap'), 'security.capability', CAP, 0);
  await fsp.writeFile(path.join(src, 'big-ids'), 'ids beyond octal');
  await fsp.lchown(path.join(src, 'big-ids'), 3_000_000, 4_000_000);
  await fsp.symlink('x'.repeat(150), path.join(src, 'long-link'));
  await fsp.writeFile(path.join(src, 'hl-a'), 'linked');
  await fsp.link(path.join(src, 'hl-a'), path.join(src, 'hl-b'));
  await fsp.chmod(path.join(src, 'hl-a'), 0o4755);
  await fsp.utimes(path.join(src, 'cap'), 1_000_000_000, 1_000_000_000);
}

describe('tar format', { skip: skipUnlessRoot('chown to large ids and security.capability') }, () => {
  for (const format of ['gnu', 'posix']) {
    test(`reads GNU tar --format=${format} exactly as GNU tar extracts it`, async () => {
      await withTmpDir(async (tmp) => {
        const src = await tmp.mkdir('src');
        await buildSource(src);
        const archive = tmp.join('a.tar');
        // GNU tar carries xattrs only in POSIX archives; the gnu format tests long names and base-256 ids.
        const xattrFlags = format === 'posix' ? ['--xattrs', '--xattrs-include=*'] : [];
        gnuTar([...xattrFlags, `--format=${format}`, '-C', src, '-cf', archive, '.']);
        const ours = await tmp.mkdir('ours');
        const theirs = await tmp.mkdir('theirs');
        await applyLayer(ours, Readable.from([await fsp.readFile(archive)]));
        gnuTar([...xattrFlags, '--same-owner', '-p', '-C', theirs, '-xf', archive]);
        assert.deepEqual(await listing(ours), await listing(theirs));
        if (format === 'posix') assert.deepEqual(await lgetxattr(path.join(ours, 'cap'), 'user.bin'), BINARY);
        assert.equal((await fsp.lstat(path.join(ours, 'big-ids'))).uid, 3_000_000);
      });
    });
  }

  test('what we write GNU tar extracts exactly (long names, big ids, binary xattrs)', async () => {
    await withTmpDir(async (tmp) => {
      const src = await tmp.mkdir('src');
      await buildSource(src);
      const chunks: Buffer[] = [];
      for await (const c of exportTree(src)) chunks.push(c as Buffer);
      await fsp.writeFile(tmp.join('ours.tar'), Buffer.concat(chunks));
      const theirs = await tmp.mkdir('theirs');
      gnuTar(['--xattrs', '--xattrs-include=*', '--same-owner', '-p', '-C', theirs, '-xf', tmp.join('ours.tar')]);
      const ours = await tmp.mkdir('ours');
      await applyLayer(ours, Readable.from([Buffer.concat(chunks)]));
      assert.deepEqual(await listing(theirs), await listing(ours));
      // Times cross a tar in whole seconds; everything else equals the source.
      assert.deepEqual(await listing(ours), await listing(src));
    });
  });

  test('gzip input is detected and decompressed', async () => {
    await withTmpDir(async (tmp) => {
      const src = await tmp.mkdir('src');
      await fsp.writeFile(path.join(src, 'f'), 'gz');
      gnuTar(['-C', src, '-cf', tmp.join('a.tar'), '.']);
      const out = await tmp.mkdir('out');
      const size = await applyLayer(out, Readable.from([gzipSync(await fsp.readFile(tmp.join('a.tar')))]));
      assert.equal(size, 2);
      assert.equal(await fsp.readFile(path.join(out, 'f'), 'utf8'), 'gz');
    });
  });

  const bad: Array<[string, Buffer, RegExp]> = [
    ['garbage', Buffer.alloc(1024, 0x41), /checksum/],
    ['bzip2', Buffer.from('BZh91AY&SY'), /bzip2/],
    ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0]), /xz/],
    ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]), /zstd/],
    ['corrupt gzip', Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]), /gzip/],
    ['a partial header block', Buffer.alloc(100), /truncated/],
  ];
  for (const [what, bytes, message] of bad) {
    test(`${what} is refused with a clear ArchiveError`, async () => {
      await withTmpDir(async (tmp) => {
        const out = await tmp.mkdir('out');
        await assert.rejects(applyLayer(out, Readable.from([bytes])), (err: unknown) => err instanceof ArchiveError && message.test(err.message));
      });
    });
  }

  test('a truncated file body is refused', async () => {
    await withTmpDir(async (tmp) => {
      const src = await tmp.mkdir('src');
      await fsp.writeFile(path.join(src, 'f'), Buffer.alloc(5000, 7));
      gnuTar(['-C', src, '-cf', tmp.join('a.tar'), 'f']);
      const whole = await fsp.readFile(tmp.join('a.tar'));
      const out = await tmp.mkdir('out');
      await assert.rejects(applyLayer(out, Readable.from([whole.subarray(0, 512 + 3000)])),
        (err: unknown) => err instanceof ArchiveError && /truncated data of "f"/.test(err.message));
    });
  });

  test('PAX records with binary values round-trip', () => {
    const records: Array<[string, Buffer]> = [['path', Buffer.from('ü/'.repeat(60))], ['SCHILY.xattr.user.x', BINARY], ['k', Buffer.alloc(0)]];
    const parsed = parsePax(encodePax(records));
    assert.ok(parsed instanceof Map);
    assert.deepEqual([...parsed], records);
    // Each record's length prefix counts its own digits (e.g. a 9-byte record vs a 10-byte one).
    for (let n = 0; n < 12; n++) {
      const r: Array<[string, Buffer]> = [['a', Buffer.alloc(n, 0x61)]];
      assert.deepEqual([...(parsePax(encodePax(r)) as Map<string, Buffer>)], r);
    }
    assert.equal(typeof parsePax(Buffer.from('99 path=x\n')), 'string');
  });

  test('an oversized PAX header is refused before it is buffered', async () => {
    const header = Buffer.alloc(512);
    header.write('PaxHeaders/x', 0);
    header.write('0000644\0', 100); header.write('0000000\0', 108); header.write('0000000\0', 116);
    header.write((64 << 20).toString(8).padStart(11, '0') + '\0', 124);
    header.write('00000000000\0', 136); header[156] = 'x'.charCodeAt(0); header.write('ustar\x0000', 257);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    const it = readTar(Readable.from([header]));
    await assert.rejects(it.next(), (err: unknown) => err instanceof ArchiveError && /exceeds the limit/.test(err.message));
  });
});
