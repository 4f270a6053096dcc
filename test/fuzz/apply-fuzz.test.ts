// apply-fuzz.test.ts: applyLayer fed mutated layer tarballs from a seeded generator — bit
// flips, truncations, corrupted header fields (with the checksum fixed up so the corruption
// reaches the parser), random PAX records, giant sizes, hostile names. Every case must end
// within its time bound, either applied or rejected with an Error, and nothing outside the
// layer may change. FUZZ_CASES (default 10000) and FUZZ_SEED choose the run; a failure prints
// the seed and case number to replay it.
import { strict as assert } from 'node:assert';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { applyLayer } from '../../lib/archive/apply';
import { encodePax } from '../../lib/archive/tar-format';
import { makeTar, snapshot, type Entry } from '../helpers/hostile-tar';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

const CASES = Number(process.env.FUZZ_CASES ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261128);
const CASE_TIMEOUT_MS = 10_000;

/** mulberry32: small, seeded, good enough to spread mutations. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const names = ['a', 'b/c', 'd/', '../x', '/abs/y', 'l', 'l/z', '.wh.a', 'd/.wh..wh..opq', 'dev', 'hl', 'x'.repeat(140), 'e/f/g/h'];

function seedEntries(r: () => number): Entry[] {
  const out: Entry[] = [{ name: 'd/', type: 'dir', mode: 0o755 }];
  const n = 1 + Math.floor(r() * 8);
  for (let i = 0; i < n; i++) {
    const name = names[Math.floor(r() * names.length)]!;
    const kind = Math.floor(r() * 6);
    if (kind === 0) out.push({ name, type: 'symlink', linkname: r() < 0.5 ? '../../..' : '/etc' });
    else if (kind === 1) out.push({ name, type: 'link', linkname: names[Math.floor(r() * names.length)]! });
    else if (kind === 2) out.push({ name, type: 'dir', mode: Math.floor(r() * 0o7777) });
    else if (kind === 3) out.push({ name, type: r() < 0.5 ? 'fifo' : 'char', devmajor: 1, devminor: 3 });
    else out.push({ name, data: 'x'.repeat(Math.floor(r() * 2000)), mode: Math.floor(r() * 0o7777) });
  }
  return out;
}

/** Writes a fresh checksum into the header at `off`, so field corruption is not caught there. */
function fixChecksum(tar: Buffer, off: number): void {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : tar[off + i]!;
  tar.write(sum.toString(8).padStart(6, '0') + '\0 ', off + 148, 8, 'latin1');
}

function mutate(tar: Buffer, r: () => number): Buffer {
  const out = Buffer.from(tar);
  const blocks = Math.floor(out.length / 512);
  switch (Math.floor(r() * 6)) {
    case 0: { // bit flips anywhere
      const flips = 1 + Math.floor(r() * 8);
      for (let i = 0; i < flips; i++) out[Math.floor(r() * out.length)]! ^= 1 << Math.floor(r() * 8);
      return out;
    }
    case 1: // truncation
      return out.subarray(0, Math.floor(r() * out.length));
    case 2: { // a header field replaced with junk or extreme values, checksum fixed
      const b = Math.floor(r() * blocks) * 512;
      const fields: Array<[number, number]> = [[0, 100], [100, 8], [108, 8], [116, 8], [124, 12], [136, 12], [156, 1], [157, 100], [329, 8], [337, 8], [345, 155]];
      const [off, len] = fields[Math.floor(r() * fields.length)]!;
      const choices = [() => Buffer.alloc(len, 0xff), () => Buffer.alloc(len, 0x37), () => Buffer.from('\x80' + '\xff'.repeat(len - 1), 'latin1'),
        () => Buffer.alloc(len, 0), () => Buffer.from(Array.from({ length: len }, () => Math.floor(r() * 256)))];
      choices[Math.floor(r() * choices.length)]!().copy(out, b + off, 0, len);
      fixChecksum(out, b);
      return out;
    }
    case 3: { // a random PAX header inserted before a random block boundary
      const keys = ['path', 'linkpath', 'size', 'uid', 'gid', 'mtime', 'SCHILY.xattr.user.q', 'SCHILY.xattr.trusted.overlay.redirect',
        'GNU.sparse.major', 'GNU.sparse.map', 'GNU.sparse.size', 'GNU.sparse.realsize', 'GNU.sparse.name'];
      const values = ['../../../x', '99999999999999999999', '-1', '1.5', 'a,b,c', '0,100,50,10', '/etc/passwd', '', '\0', '1'];
      const records: Array<[string, Buffer]> = [];
      for (let i = 0; i < 1 + Math.floor(r() * 3); i++) {
        records.push([keys[Math.floor(r() * keys.length)]!, Buffer.from(values[Math.floor(r() * values.length)]!)]);
      }
      const data = encodePax(records);
      const header = Buffer.alloc(512);
      header.write('PaxHeaders/f', 0);
      header.write('0000644\0', 100); header.write('0000000\0', 108); header.write('0000000\0', 116);
      header.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
      header.write('00000000000\0', 136); header[156] = 0x78; header.write('ustar\x0000', 257);
      fixChecksum(header, 0);
      const at = Math.floor(r() * blocks) * 512;
      return Buffer.concat([out.subarray(0, at), header, data, Buffer.alloc((512 - (data.length % 512)) % 512), out.subarray(at)]);
    }
    case 4: { // a giant size field
      const b = Math.floor(r() * blocks) * 512;
      Buffer.from([0x80, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).copy(out, b + 124);
      fixChecksum(out, b);
      return out;
    }
    default: { // garbage appended or a block duplicated
      const b = Math.floor(r() * blocks) * 512;
      return Buffer.concat([out.subarray(0, b + 512), out.subarray(b), Buffer.from(Array.from({ length: Math.floor(r() * 700) }, () => Math.floor(r() * 256)))]);
    }
  }
}

test(`applyLayer survives ${CASES} mutated tarballs (seed ${SEED})`, { skip: skipUnlessRoot('chown and mknod during apply'), timeout: 30 * 60_000 }, async () => {
  await withTmpDir(async (tmp) => {
    await fsp.mkdir(tmp.join('victim'));
    await fsp.writeFile(tmp.join('victim', 'file'), 'precious', { mode: 0o600 });
    await fsp.symlink('/etc', tmp.join('victim', 'etc-link'));
    const layers = await tmp.mkdir('w/x/layers');
    const outside = async (): Promise<string[]> => (await snapshot(tmp.path)).filter((l) => !l.startsWith('w/x/layers/'));
    const before = await outside();
    const r = rng(SEED);
    let rejected = 0;
    for (let c = 0; c < CASES; c++) {
      const tar = mutate(makeTar(seedEntries(r)), r);
      const layer = path.join(layers, String(c % 64));
      await fsp.rm(layer, { recursive: true, force: true });
      await fsp.mkdir(layer);
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`case ${c} of seed ${SEED} did not finish in ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
      });
      try {
        await Promise.race([applyLayer(layer, Readable.from([tar])), bound]);
      } catch (err) {
        assert.ok(err instanceof Error, `case ${c} of seed ${SEED} threw a non-Error: ${String(err)}`);
        if (/did not finish/.test(err.message)) throw err;
        rejected++;
      } finally {
        clearTimeout(timer);
      }
      // The victims are checked every 64 cases and at the end (a full listing costs more than a case).
      if (c % 64 === 63 || c === CASES - 1) assert.deepEqual(await outside(), before, `something outside the layer changed by case ${c} of seed ${SEED}`);
    }
    assert.ok(rejected > CASES / 10 && rejected < CASES, `mutations should be rejected often but not always (rejected ${rejected} of ${CASES})`);
  }, 'fuzz-');
});
