// kill-trials.ts: the body of the crash-safety test, shared by the host suite
// (reliability/kill.test.ts) and the VM suite (reliability/kill.vm.test.ts, devicemapper). A
// child process (kill-worker.ts) runs create / applyDiff of a large tar / get / remove in a
// loop and is killed with SIGKILL at a random moment, `trials` times. After each kill a fresh
// driver instance opens the store and checks that every layer that exists is whole — its tree
// is exactly the base's, or exactly the base's plus the whole tar (a layer the kill caught
// mid-apply must not exist) — that an incomplete layer cannot be a parent, and that whatever
// was left (incomplete layers, staging leftovers, stale mounts, devices) can be removed.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import { getDriver, type Driver } from '../../lib/index';
import { makeTar } from './hostile-tar';
import { withDriverRoot } from './driver-root';

/** KILL_TRIALS (default 50) sets the trials per driver. */
export const TRIALS = Number(process.env.KILL_TRIALS ?? 50);
const IDS = Array.from({ length: 10 }, (_, i) => `L${i}`);

/** A digest of a whole tree: every path with its type, mode, owner, size, content and link target. */
async function digest(root: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await fsp.readdir(path.join(root, rel))).sort()) {
      const p = path.join(root, rel, name);
      const st = await fsp.lstat(p);
      h.update(`${path.join(rel, name)} ${st.mode} ${st.uid} ${st.gid} ${st.size}\n`);
      if (st.isFile()) h.update(await fsp.readFile(p));
      else if (st.isSymbolicLink()) h.update(await fsp.readlink(p));
      else if (st.isDirectory()) await walk(path.join(rel, name));
    }
  };
  await walk('');
  return h.digest('hex');
}

async function treeOf(d: Driver, id: string): Promise<string> {
  const p = await d.get(id);
  try {
    return await digest(p);
  } finally {
    await d.put(id);
  }
}

function killedAfter(args: string[], ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'kill-worker.js'), ...args], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', reject);
    child.on('exit', () => { clearTimeout(timer); resolve(); });
  });
}


/** When the worker is killed: `minMs` plus up to `spanMs` more, uniformly at random. */
export interface KillWindow { minMs: number; spanMs: number }

/** Runs `TRIALS` kill trials of `driverName` on a fresh root (driver-root.ts); reports counts as a diagnostic. */
export async function runKillTrials(t: TestContext, driverName: string, window: KillWindow = { minMs: 30, spanMs: 400 }): Promise<void> {
    await withDriverRoot(driverName, async (root, tmpFile) => {
      let d: Driver;
      try {
        d = await getDriver(driverName, root);
      } catch (err) {
        t.skip(`${driverName} cannot init here: ${(err as Error).message}`);
        return;
      }
      await d.create('base');
      const b = await d.get('base');
      await fsp.mkdir(path.join(b, 'etc'));
      await fsp.writeFile(path.join(b, 'etc', 'base-file'), 'base');
      await d.put('base');
      // The large tar: 1,500 files in 15 directories, 6 MiB in all.
      const entries = [];
      for (let i = 0; i < 1500; i++) entries.push({ name: `data/d${i % 15}/f${i}`, data: String(i).repeat(4096 / String(i).length | 0) });
      const tarPath = tmpFile('layer.tar');
      writeFileSync(tarPath, makeTar(entries));
      // The two states a complete layer may be in.
      await d.create('ref-plain', 'base');
      await d.create('ref-applied', 'base');
      await d.applyDiff('ref-applied', 'base', Readable.from([await fsp.readFile(tarPath)]));
      const allowed = new Set([await treeOf(d, 'ref-plain'), await treeOf(d, 'ref-applied')]);
      await d.cleanup();
      let whole = 0;
      let incomplete = 0;
      for (let trial = 0; trial < TRIALS; trial++) {
        await killedAfter([root, driverName, tarPath], window.minMs + Math.floor(Math.random() * window.spanMs));
        const fresh = await getDriver(driverName, root);
        for (const id of IDS) {
          if (await fresh.exists(id)) {
            assert.ok(allowed.has(await treeOf(fresh, id)), `trial ${trial}: layer ${id} exists but is not whole`);
            whole++;
            continue;
          }
          // Absent or incomplete: never usable as a parent; removable if anything is there.
          await assert.rejects(fresh.create(`child-of-${id}`, id), { code: 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND' });
          try {
            await fresh.remove(id);
            incomplete++;
          } catch (err) {
            assert.equal((err as { code?: string }).code, 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND', `trial ${trial}: leftover ${id} not removable: ${String(err)}`);
          }
        }
        await fresh.cleanup();
      }
      t.diagnostic(`${driverName}: ${TRIALS} kills; ${whole} whole layers checked; ${incomplete} incomplete leftovers removed`);
    }, `kill-${driverName}-`);
}
