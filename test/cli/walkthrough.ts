// walkthrough.ts: the CLI end to end on one driver (shared by drivers.test.ts on this machine
// and devicemapper.vm.test.ts in the VM): apply (3 shipped demo layers), changes, diff-size,
// ls, mount/umount, rm, and the demo on the same filesystem, checking nothing is left mounted.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { mountsUnder } from '../helpers/tmp';
import { REPO, lines, ok, runCli } from './helpers';

const DEMO = path.join(REPO, 'demo');

/** The CLI walk-through on `driver` with its root under `base` (a directory this test owns). */
export async function walkThrough(t: TestContext, driver: string, base: string): Promise<void> {
  const root = path.join(base, 'root');
  const run = (...args: string[]): ReturnType<typeof runCli> => runCli(['--root', root, '--driver', driver, ...args]);
  const first = run('apply', 'base', path.join(DEMO, 'base.tar'));
  if (first.status === 4) { t.skip(`${driver} does not init here: ${first.err.trim()}`); return; }
  ok(first, 'apply base');
  ok(run('apply', 'changes', 'base', path.join(DEMO, 'changes.tar')), 'apply changes');
  ok(run('apply', 'opaque', 'changes', path.join(DEMO, 'opaque.tar')), 'apply opaque');
  assert.deepEqual(lines(ok(run('changes', 'changes'), 'changes').out),
    ['A /app', 'A /app/config.json', 'A /app/main.js', 'C /etc', 'D /etc/old.conf', 'C /etc/motd']
      .sort((a, b) => (a.slice(2) < b.slice(2) ? -1 : 1)));
  const opq = lines(ok(run('changes', 'opaque'), 'changes opaque').out);
  assert.ok(opq.includes('A /var/cache/app/fresh.db') && opq.includes('D /var/cache/app/index.db'), opq.join(', '));
  assert.equal(ok(run('diff-size', 'opaque'), 'diff-size').out, '14\n');
  ok(run('create', 'ctr', 'opaque'), 'create ctr');
  const p = ok(run('mount', 'ctr'), 'mount').out.trim();
  assert.equal(await fsp.readFile(path.join(p, 'etc', 'motd'), 'utf8'), 'Welcome to the graphdriver demo (modified by the changes layer).\n');
  await fsp.writeFile(path.join(p, 'etc', 'hostname'), 'ctr\n');
  ok(run('umount', 'ctr'), 'umount');
  assert.deepEqual(mountsUnder(await fsp.realpath(root)), [], 'nothing mounted after umount');
  assert.deepEqual(lines(ok(run('changes', 'ctr'), 'changes ctr').out), ['C /etc', 'C /etc/hostname']);
  assert.equal(lines(ok(run('ls'), 'ls').out).length, 5);
  for (const id of ['ctr', 'opaque', 'changes', 'base']) ok(run('rm', id), `rm ${id}`);
  assert.equal(ok(run('ls'), 'ls').out, '');

  const tmpdir = path.join(base, 'tmp');
  await fsp.mkdir(tmpdir);
  const demo = ok(runCli(['--driver', driver, 'demo'], { env: { TMPDIR: tmpdir } }), 'demo');
  assert.match(demo.out, new RegExp(`^graphdriver demo: driver ${driver} `));
  assert.deepEqual(await fsp.readdir(tmpdir), []);
  const realBase = await fsp.realpath(base);
  assert.deepEqual(mountsUnder(realBase).filter((m) => m !== realBase), [], 'nothing mounted below (the btrfs itself aside)');
}

