// vfs-multiprocess.test.ts: several processes share one vfs home. Per-layer operations are
// serialised across processes by flock'ed stripe files, and opening the driver (which sweeps
// what a crash left in staging/) never removes another live process's work in progress: the
// sweep runs only while nobody holds the driver lock. Three workers hammer four shared ids
// while a fourth process re-opens the driver in a loop; every race must surface as the
// driver's own "exists / not found" errors, and every layer left is complete.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { getDriver } from '../../lib/index';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'helpers', 'vfs-hammer.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

test('processes sharing one vfs home never corrupt each other', { skip: skipUnlessRoot('vfs copies owners'), timeout: 300_000 }, async () => {
  await withTmpDir(async (tmp) => {
    const root = await tmp.mkdir('root');
    const d = await getDriver('vfs', root);
    await d.create('base');
    const b = await d.get('base');
    await fsp.mkdir(path.join(b, 'etc'));
    await fsp.mkdir(path.join(b, 'usr/share'), { recursive: true });
    for (let i = 0; i < 300; i++) await fsp.writeFile(path.join(b, 'usr/share', `f${i}`), 'x'.repeat(i));
    await d.put('base');
    const results = await Promise.all([run([root, '150']), run([root, '150']), run([root, '150']), run([root, '60', 'init-loop'])]);
    for (const r of results) assert.equal(r.code, 0, r.out);
    // Whatever is left is whole: the base's files, and only its own marker.
    const again = await getDriver('vfs', root);
    for (const id of ['l0', 'l1', 'l2', 'l3']) {
      if (!(await again.exists(id))) continue;
      const p = await again.get(id);
      try {
        assert.equal((await fsp.readdir(path.join(p, 'usr/share'))).length, 300, `layer ${id} is not a whole copy`);
      } finally {
        await again.put(id);
      }
    }
    assert.deepEqual(await fsp.readdir(path.join(root, 'vfs', 'staging')), [], 'staging/ is empty once every process is done');
    await again.cleanup();
  }, 'multiproc-');
});

test('a layer got by one process cannot be removed by another until it is put', { skip: skipUnlessRoot('vfs copies owners') }, async () => {
  await withTmpDir(async (tmp) => {
    const root = await tmp.mkdir('root');
    const d = await getDriver('vfs', root);
    await d.create('held');
    await d.get('held');
    assert.equal((await run([root, 'held', 'remove'])).out.trim(), 'ERR_GRAPHDRIVER_LAYER_BUSY');
    assert.equal(await d.exists('held'), true);
    await d.put('held');
    assert.equal((await run([root, 'held', 'remove'])).out.trim(), 'removed');
    assert.equal(await d.exists('held'), false);
    await d.cleanup();
  }, 'multiproc-');
});
