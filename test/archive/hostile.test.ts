// hostile.test.ts: layer tars that try to act outside the layer. Each case is applied to a
// layer directory beside a "victim" directory; after the apply (which must fail with an
// ArchiveError naming the entry, or confine the write inside the layer) the victim's listing,
// contents and modes are unchanged. Tars are built entry by entry with the library's header
// writer so each hostile shape is exact.
import { strict as assert } from 'node:assert';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { applyLayer } from '../../lib/archive/apply';
import { ArchiveError } from '../../lib/errors';
import { skipUnlessRoot } from '../helpers/requires-root';
import { makeTar, snapshot } from '../helpers/hostile-tar';
import { withTmpDir } from '../helpers/tmp';

/**
 * Layout: <tmp>/a/b/c/layer is the layer; <tmp>/victim (and victims at each level up) hold
 * files an escape would overwrite or delete.
 */
async function withLayer(fn: (layer: string, check: () => Promise<void>) => Promise<void>): Promise<void> {
  await withTmpDir(async (tmp) => {
    const layer = await tmp.mkdir('a/b/c/layer');
    for (const d of ['', 'a', 'a/b', 'a/b/c']) {
      await fsp.mkdir(tmp.join(d, 'victim'), { recursive: true });
      await fsp.writeFile(tmp.join(d, 'victim', 'file'), 'precious', { mode: 0o600 });
    }
    const before = await snapshot(tmp.path);
    const check = async (): Promise<void> => {
      const after = (await snapshot(tmp.path)).filter((l) => !l.startsWith('a/b/c/layer'));
      assert.deepEqual(after, before.filter((l) => !l.startsWith('a/b/c/layer')));
    };
    await fn(layer, check);
  }, 'hostile-');
}

const depths = [1, 2, 3, 4, 6];
const up = (n: number): string => '../'.repeat(n);

async function expectRefusedOrConfined(layer: string, tar: Buffer, check: () => Promise<void>): Promise<'refused' | 'confined'> {
  let outcome: 'refused' | 'confined' = 'confined';
  try {
    await applyLayer(layer, Readable.from([tar]));
  } catch (err) {
    assert.ok(err instanceof ArchiveError || (err as { code?: string }).code !== undefined, `unexpected error ${String(err)}`);
    outcome = 'refused';
  }
  await check();
  return outcome;
}

describe('archive apply refuses or confines hostile entries', { skip: skipUnlessRoot('chown and mknod during apply') }, () => {
  for (const n of depths) {
    test(`entry name with ${n} x '../' is refused with the entry named`, async () => {
      await withLayer(async (layer, check) => {
        const name = `${up(n)}victim/file`;
        await assert.rejects(applyLayer(layer, Readable.from([makeTar([{ name, data: 'pwned' }])])),
          (err: unknown) => err instanceof ArchiveError && err.entry === name && /climbs out/.test(err.message));
        await check();
      });
    });

    test(`absolute name with ${n} x '..' lands inside the layer`, async () => {
      await withLayer(async (layer, check) => {
        await applyLayer(layer, Readable.from([makeTar([{ name: `/${up(n)}victim/file`, data: 'inside' }])]));
        assert.equal(await fsp.readFile(path.join(layer, 'victim/file'), 'utf8'), 'inside');
        await check();
      });
    });

    test(`symlink to ${up(n)} then a write through it stays inside`, async () => {
      await withLayer(async (layer, check) => {
        const tar = makeTar([
          { name: 'esc', type: 'symlink', linkname: up(n) },
          { name: 'esc/victim/file', data: 'pwned' },
        ]);
        await expectRefusedOrConfined(layer, tar, check);
        // The symlink itself is stored verbatim.
        const st = await fsp.lstat(path.join(layer, 'esc')).catch(() => null);
        if (st !== null && st.isSymbolicLink()) assert.equal(await fsp.readlink(path.join(layer, 'esc')), up(n));
      });
    });

    test(`hardlink to ${up(n)}victim/file is refused`, async () => {
      await withLayer(async (layer, check) => {
        const tar = makeTar([{ name: 'hl', type: 'link', linkname: `${up(n)}victim/file` }]);
        await assert.rejects(applyLayer(layer, Readable.from([tar])), ArchiveError);
        await check();
      });
    });

    test(`hardlink through a symlink pointing ${up(n)} is confined`, async () => {
      await withLayer(async (layer, check) => {
        const tar = makeTar([
          { name: 'esc', type: 'symlink', linkname: up(n) },
          { name: 'hl', type: 'link', linkname: 'esc/victim/file' },
        ]);
        await expectRefusedOrConfined(layer, tar, check);
      });
    });

    test(`whiteout .wh.${up(n)} and through a symlink are confined`, async () => {
      await withLayer(async (layer, check) => {
        const tar = makeTar([
          { name: 'esc', type: 'symlink', linkname: up(n) + 'victim' },
          { name: 'esc/.wh.file', data: '' },
        ]);
        await expectRefusedOrConfined(layer, tar, check);
        await assert.rejects(applyLayer(layer, Readable.from([makeTar([{ name: `${up(n)}victim/.wh.file` }])])), ArchiveError);
        await check();
      });
    });

    test(`opaque marker through a symlink pointing ${up(n)} is confined`, async () => {
      await withLayer(async (layer, check) => {
        const tar = makeTar([
          { name: 'esc', type: 'symlink', linkname: up(n) + 'victim' },
          { name: 'esc/.wh..wh..opq' },
        ]);
        await expectRefusedOrConfined(layer, tar, check);
      });
    });
  }

  test('absolute symlink followed by a write resolves inside the layer', async () => {
    await withLayer(async (layer, check) => {
      const victimDir = path.resolve(layer, '../../../../victim');
      const tar = makeTar([
        { name: 'abs', type: 'symlink', linkname: victimDir },
        { name: 'abs/file', data: 'inside' },
      ]);
      await expectRefusedOrConfined(layer, tar, check);
      assert.equal(await fsp.readlink(path.join(layer, 'abs')), victimDir);
    });
  });

  test('a file entry replacing a symlink does not write through it', async () => {
    await withLayer(async (layer, check) => {
      const tar = makeTar([
        { name: 'link', type: 'symlink', linkname: '../../../../victim/file' },
        { name: 'link', data: 'replaced' },
      ]);
      await applyLayer(layer, Readable.from([tar]));
      assert.equal(await fsp.readFile(path.join(layer, 'link'), 'utf8'), 'replaced');
      assert.ok((await fsp.lstat(path.join(layer, 'link'))).isFile());
      await check();
    });
  });

  test('a hardlink to a symlink links the symlink itself', async () => {
    await withLayer(async (layer, check) => {
      const tar = makeTar([
        { name: 'sl', type: 'symlink', linkname: '../../../../victim/file' },
        { name: 'hl', type: 'link', linkname: 'sl' },
      ]);
      await applyLayer(layer, Readable.from([tar]));
      const a = await fsp.lstat(path.join(layer, 'sl'));
      const b = await fsp.lstat(path.join(layer, 'hl'));
      assert.ok(b.isSymbolicLink());
      assert.equal(a.ino, b.ino);
      await check();
    });
  });

  for (const name of ['.wh.', 'dir/.wh..', 'dir/.wh...']) {
    test(`whiteout ${JSON.stringify(name)} naming no entry is refused`, async () => {
      await withLayer(async (layer, check) => {
        await assert.rejects(applyLayer(layer, Readable.from([makeTar([{ name: 'dir/', type: 'dir', mode: 0o755 }, { name }])])),
          (err: unknown) => err instanceof ArchiveError && err.entry === name);
        await check();
      });
    });
  }

  test('a name with an over-long component is refused', async () => {
    await withLayer(async (layer, check) => {
      await assert.rejects(applyLayer(layer, Readable.from([makeTar([{ name: 'x'.repeat(300), data: 'a' }])])), ArchiveError);
      await check();
    });
  });
});
