// vfs-unit.test.ts: a smoke check of the vfs driver's own behaviour (layout, ids, errors,
// counting, crash leftovers). The shared conformance suite covers the Driver contract; this
// file covers what is vfs-specific. Needs root (layers are owned 0:0 and copies chown).
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import '../../lib/drivers/vfs';
import { hasLayers } from '../../lib/drivers/vfs/driver';
import type { Driver } from '../../lib/driver';
import {
  InvalidIdError, InvalidOptionError, LayerExistsError, LayerNotFoundError, NotMountedError,
} from '../../lib/errors';
import { getDriver } from '../../lib/registry';
import { skipUnlessRoot } from '../helpers/requires-root';
import { type TmpDir, withTmpDir } from '../helpers/tmp';

const skip = skipUnlessRoot('layers are owned 0:0');

const BAD_IDS = ['', '.', '..', 'a/b', 'nul\0', 'x'.repeat(256)];

/** Runs `fn` with a fresh root and a vfs driver on it; cleans both up, even on failure. */
async function withDriver(fn: (d: Driver, tmp: TmpDir, home: string) => Promise<void>): Promise<void> {
  await withTmpDir(async (tmp) => {
    const d = await getDriver('vfs', tmp.path, []);
    try {
      await fn(d, tmp, tmp.join('vfs'));
    } finally {
      await d.cleanup();
    }
  }, 'vfs-');
}

test('init makes home, dir and staging 0700; status and name', { skip }, async () => {
  await withDriver(async (d, _tmp, home) => {
    assert.equal(d.name, 'vfs');
    assert.equal(String(d), 'vfs');
    for (const p of [home, path.join(home, 'dir'), path.join(home, 'staging')]) {
      const st = await fsp.stat(p);
      assert.ok(st.isDirectory(), p);
      assert.equal(st.mode & 0o7777, 0o700, p);
    }
    const status = await d.status();
    assert.deepEqual(status.map(([k]) => k), ['Backing Filesystem', 'Layers', 'Incomplete Layers']);
    assert.ok(!status[0]![1].startsWith('<unknown'), `backing filesystem named: ${status[0]![1]}`);
    assert.equal(status[1]![1], '0');
    assert.equal(await hasLayers(home), false);
  });
});

test('create/get/put/exists/remove: empty layer, child copies parent', { skip }, async () => {
  await withDriver(async (d, _tmp, home) => {
    await d.create('base');
    assert.equal(await d.exists('base'), true);
    assert.equal(await hasLayers(home), true);
    const basePath = await d.get('base');
    assert.equal(basePath, path.join(home, 'dir', 'base'));
    const st = await fsp.lstat(basePath);
    assert.ok(st.isDirectory());
    assert.equal(st.mode & 0o7777, 0o755);
    assert.deepEqual([st.uid, st.gid], [0, 0]);
    assert.deepEqual(await fsp.readdir(basePath), []);
    await fsp.mkdir(path.join(basePath, 'etc'));
    await fsp.writeFile(path.join(basePath, 'etc', 'hostname'), 'base\n');
    await d.put('base');

    await d.create('child', 'base');
    const childPath = await d.get('child');
    assert.equal(await fsp.readFile(path.join(childPath, 'etc', 'hostname'), 'utf8'), 'base\n');
    await fsp.writeFile(path.join(childPath, 'etc', 'hostname'), 'child\n');
    assert.equal(await fsp.readFile(path.join(basePath, 'etc', 'hostname'), 'utf8'), 'base\n', 'parent untouched');
    await d.put('child');
    assert.equal((await d.status())[1]![1], '2');

    await d.remove('child');
    assert.equal(await d.exists('child'), false);
    await assert.rejects(d.get('child'), LayerNotFoundError);
    assert.deepEqual(await fsp.readdir(path.join(home, 'dir')), ['base']);
    assert.deepEqual(await fsp.readdir(path.join(home, 'staging')), [], 'nothing left in staging');
    assert.equal((await d.status())[1]![1], '1');
  });
});

test('gets are counted; put without get throws NotMountedError', { skip }, async () => {
  await withDriver(async (d) => {
    await d.create('l');
    await assert.rejects(d.put('l'), NotMountedError);
    await d.get('l');
    await d.get('l');
    await d.put('l');
    await d.put('l');
    await assert.rejects(d.put('l'), NotMountedError);
    await d.get('l');
    await d.remove('l'); // remove forgets the count
    await assert.rejects(d.put('l'), NotMountedError);
  });
});

test('invalid ids throw InvalidIdError before touching anything', { skip }, async () => {
  await withDriver(async (d, _tmp, home) => {
    await d.create('ok');
    for (const id of BAD_IDS) {
      await assert.rejects(d.create(id), InvalidIdError, `create ${JSON.stringify(id)}`);
      await assert.rejects(d.create('new', id === '' ? '..' : id), InvalidIdError, `parent ${JSON.stringify(id)}`);
      await assert.rejects(d.get(id), InvalidIdError);
      await assert.rejects(d.put(id), InvalidIdError);
      await assert.rejects(d.exists(id), InvalidIdError);
      await assert.rejects(d.remove(id), InvalidIdError);
    }
    assert.deepEqual(await fsp.readdir(path.join(home, 'dir')), ['ok']);
    // The longest valid id (255 bytes, NAME_MAX) works, also as a parent.
    const long = 'i'.repeat(255);
    await d.create(long, 'ok');
    await d.create('below-long', long);
    assert.equal(await d.exists('below-long'), true);
  });
});

test('create errors: existing id, missing parent, storage options; nothing is left behind', { skip }, async () => {
  await withDriver(async (d, _tmp, home) => {
    await d.create('a');
    await assert.rejects(d.create('a'), LayerExistsError);
    await assert.rejects(d.create('b', 'missing'), (err: unknown) => err instanceof LayerNotFoundError && err.id === 'missing');
    await assert.rejects(d.create('a', 'a'), LayerExistsError);
    await assert.rejects(d.create('c', '', { storageOpt: { size: '10G' } }), InvalidOptionError);
    await d.create('d', '', { storageOpt: {} });
    await assert.rejects(d.get('nope'), LayerNotFoundError);
    await assert.rejects(d.remove('nope'), LayerNotFoundError);
    assert.deepEqual((await fsp.readdir(path.join(home, 'dir'))).sort(), ['a', 'd']);
    assert.deepEqual(await fsp.readdir(path.join(home, 'staging')), []);

    // Two creates of one id at once: exactly one wins.
    const results = await Promise.allSettled([d.create('same', 'a'), d.create('same', 'a')]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(lost.reason instanceof LayerExistsError);
  });
});

test('a name that is not UTF-8 is copied byte for byte', { skip }, async () => {
  // The copy runs in the addon on raw bytes, so names JavaScript strings cannot hold survive.
  // (A copy that fails — ENOSPC — is tested in test/reliability/enospc.test.ts.)
  await withDriver(async (d, _tmp, home) => {
    await d.create('p');
    const p = await d.get('p');
    const odd = Buffer.from([0x66, 0xff, 0xfe]);
    await fsp.writeFile(Buffer.concat([Buffer.from(p + '/'), odd]), 'x');
    await d.put('p');
    await d.create('c', 'p');
    const c = await d.get('c');
    const names = await fsp.readdir(c, { encoding: 'buffer' });
    assert.equal(names.length, 1);
    assert.ok(names[0]!.equals(odd), `copied name ${names[0]!.toString('hex')}`);
    assert.equal(await fsp.readFile(Buffer.concat([Buffer.from(c + '/'), odd]), 'utf8'), 'x');
    await d.put('c');
    assert.deepEqual(await fsp.readdir(path.join(home, 'staging')), []);
  });
});

test('init rejects options, and removes what a crash left in staging', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    await assert.rejects(getDriver('vfs', tmp.path, ['vfs.size=10G']), InvalidOptionError);
    await assert.rejects(getDriver('vfs', tmp.path, ['overlay2.size=1G']), /overlay2 driver/);
    await assert.rejects(getDriver('vfs', tmp.path, ['junk']), /malformed/);

    const home = tmp.join('vfs');
    await fsp.mkdir(path.join(home, 'staging', 'create-0123456789abcdef', 'deep'), { recursive: true });
    await fsp.writeFile(path.join(home, 'staging', 'create-0123456789abcdef', 'deep', 'f'), 'half made');
    await fsp.symlink('/etc', path.join(home, 'staging', 'remove-0123456789abcdef'));
    await fsp.mkdir(path.join(home, 'dir'), { recursive: true });
    assert.equal(await hasLayers(home), false, 'staging leftovers are not layers');

    const d = await getDriver('vfs', tmp.path, []);
    assert.deepEqual(await fsp.readdir(path.join(home, 'staging')), []);
    assert.ok((await fsp.stat('/etc')).isDirectory(), 'a symlink in staging is removed, not followed');
    assert.equal(await d.exists('create-0123456789abcdef'), false);
    await d.cleanup();
  }, 'vfs-');
});

test('hasLayers: false for a missing home, true once a layer exists', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    assert.equal(await hasLayers(tmp.join('vfs')), false);
    const d = await getDriver('vfs', tmp.path, []);
    await d.create('x');
    assert.equal(await hasLayers(tmp.join('vfs')), true);
    await d.cleanup();
  }, 'vfs-');
});
