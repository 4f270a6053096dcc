// demo.test.ts: `graphdriver demo` (what `npm start` runs) with vfs and with the driver this
// machine selects: it exits 0, shows the merged tree and every layer's changes, and leaves
// nothing behind: its temporary root (made under $TMPDIR, pointed at a test dir here) is gone
// and nothing is mounted there.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { test } from 'node:test';
import { skipUnlessRoot } from '../helpers/requires-root';
import { mountsUnder, withTmpDir } from '../helpers/tmp';
import { ok, runCli } from './helpers';

const skip = skipUnlessRoot('the demo applies layers owned 0:0 and may mount');

for (const driver of ['vfs', undefined]) {
  test(`demo on ${driver ?? 'the selected driver'} runs and cleans up`, { skip }, async () => {
    await withTmpDir(async (tmp) => {
      const r = ok(runCli([...(driver !== undefined ? ['--driver', driver] : []), 'demo'], { env: { TMPDIR: tmp.path } }), 'demo');
      assert.match(r.out, new RegExp(`^graphdriver demo: driver ${driver ?? '\\S+'} on a temporary root ${tmp.path}/graphdriver-demo-`));
      assert.match(r.out, /^ {2}-rw-r--r-- +65 {2}\/etc\/motd$/m); // modified by the second layer
      assert.doesNotMatch(r.out, /^ {2}\S+ +\d+ {2}\/etc\/old\.conf$/m); // deleted by the second layer
      assert.match(r.out, /^ {2}D \/etc\/old\.conf$/m);
      assert.match(r.out, /^ {2}A \/var\/cache\/app\/fresh\.db$/m);
      assert.match(r.out, /^ {2}A \/srv\/notes\.txt$/m);
      assert.match(r.out, /^diff size of demo-container: \d+ bytes/m);
      assert.match(r.out, /^cleaned up: /m);
      assert.deepEqual(await fsp.readdir(tmp.path), []);
      assert.deepEqual(mountsUnder(tmp.path), []);
    });
  });
}

test('demo --json reports the layers, tree and container changes', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const r = ok(runCli(['--driver', 'vfs', '--json', 'demo'], { env: { TMPDIR: tmp.path } }), 'demo --json');
    const v = JSON.parse(r.out) as { driver: string; layers: unknown[]; tree: Array<{ path: string }>; container: { diffSize: number }; cleanedUp: boolean };
    assert.equal(v.driver, 'vfs');
    assert.equal(v.layers.length, 3);
    assert.ok(v.tree.some((e) => e.path === '/app/main.js'));
    assert.ok(!v.tree.some((e) => e.path === '/var/cache/app/blob-1'), 'the opaque layer hides blob-1');
    assert.ok(v.container.diffSize > 0);
    assert.equal(v.cleanedUp, true);
    assert.deepEqual(await fsp.readdir(tmp.path), []);
  });
});
