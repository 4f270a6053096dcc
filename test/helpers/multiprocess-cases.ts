// multiprocess-cases.ts: the cross-process tests, shared by the host suite
// (reliability/multiprocess.test.ts) and the VM suite (multiprocess.vm.test.ts, devicemapper).
// Several processes share one driver home. Per-layer operations are serialised across
// processes by flock'ed stripe files; a layer one process has got cannot be removed (or
// unmounted) by another; and opening the driver, which sweeps what a crash left, never removes
// another live process's work in progress (util/layer-locks.ts). Three workers (hammer.ts)
// hammer four shared ids while a fourth process re-opens the driver in a loop: every race must
// surface as the driver's own errors, and every layer left is complete.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { getDriver } from '../../lib/index';
import { driverRootUnavailable, withDriverRoot } from './driver-root';
import { mountsUnder } from './tmp';

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'hammer.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** How hard the hammer works: rounds per worker and re-opens of the init loop. */
export interface HammerSize { rounds: number; reopens: number }

/** Registers the cross-process tests of `driverName` (skipped with the reason where it cannot run). */
export function multiprocessTests(driverName: string, size: HammerSize = { rounds: 150, reopens: 60 }): void {
  describe(`${driverName}: processes sharing one home`, { skip: driverRootUnavailable(driverName) ?? false }, () => {
    test('never corrupt each other', { timeout: 600_000 }, async () => {
      await withDriverRoot(driverName, async (root) => {
        const d = await getDriver(driverName, root);
        try {
          await d.create('base');
          const b = await d.get('base');
          await fsp.mkdir(path.join(b, 'etc'));
          await fsp.mkdir(path.join(b, 'usr/share'), { recursive: true });
          for (let i = 0; i < 300; i++) await fsp.writeFile(path.join(b, 'usr/share', `f${i}`), 'x'.repeat(i));
          await d.put('base');
        } finally {
          await d.cleanup();
        }
        const results = await Promise.all([
          run([driverName, root, String(size.rounds)]), run([driverName, root, String(size.rounds)]), run([driverName, root, String(size.rounds)]),
          run([driverName, root, String(size.reopens), 'init-loop']),
        ]);
        for (const r of results) assert.equal(r.code, 0, r.out);
        // Whatever is left is whole: the base's files (and only its own marker, checked by get).
        const again = await getDriver(driverName, root);
        try {
          for (const id of ['l0', 'l1', 'l2', 'l3']) {
            if (!(await again.exists(id))) continue;
            const p = await again.get(id);
            try {
              assert.equal((await fsp.readdir(path.join(p, 'usr/share'))).length, 300, `layer ${id} is not whole`);
            } finally {
              await again.put(id);
            }
          }
          const staging = path.join(root, driverName, 'staging');
          if (existsSync(staging)) assert.deepEqual(await fsp.readdir(staging), [], 'staging/ is empty once every process is done');
          assert.deepEqual(mountsUnder(root), [], 'a mount outlived every get');
        } finally {
          await again.cleanup();
        }
      }, `multiproc-${driverName}-`);
    });

    test('a layer got by one process is neither removed nor unmounted by another', { timeout: 120_000 }, async () => {
      await withDriverRoot(driverName, async (root) => {
        const d = await getDriver(driverName, root);
        try {
          await d.create('base');
          await d.create('held', 'base');
          const p = await d.get('held');
          await fsp.writeFile(path.join(p, 'mine'), 'still here');
          assert.equal((await run([driverName, root, 'held', 'remove'])).out.trim(), 'ERR_GRAPHDRIVER_LAYER_BUSY');
          assert.equal(await d.exists('held'), true);
          // Another process's get and put of the same layer leave this one's view mounted.
          const other = await run([driverName, root, '1', 'get-put-held']);
          assert.equal(other.code, 0, other.out);
          assert.equal(await fsp.readFile(path.join(p, 'mine'), 'utf8'), 'still here');
          await d.put('held');
          assert.equal((await run([driverName, root, 'held', 'remove'])).out.trim(), 'removed');
          assert.equal(await d.exists('held'), false);
        } finally {
          await d.cleanup();
        }
      }, `multiproc-${driverName}-`);
    });
  });
}
