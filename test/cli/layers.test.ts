// layers.test.ts: the layer commands end to end through the CLI subprocess on vfs: create,
// apply (file and stdin), changes, diff (stdout and -o), diff-size, ls (with a layer removed
// behind the CLI's back), rm, info, --json, and the one-line errors with their exit codes.
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { test } from 'node:test';
import { skipUnlessRoot } from '../helpers/requires-root';
import { dir, file, makeTar, opaque, tarNames, whiteout } from '../helpers/tar';
import { withTmpDir } from '../helpers/tmp';
import { lines, ok, runCli, vfs } from './helpers';

const skip = skipUnlessRoot('layers are owned 0:0');

const BASE = [dir('etc'), file('etc/motd', 'hello\n'), file('etc/old', 'x'), dir('var'), dir('var/app'), file('var/app/a', 'aaaa')];
const TOP = [dir('etc'), file('etc/motd', 'hello again\n'), whiteout('etc/old'), file('new', '12345'), dir('var'), dir('var/app'), opaque('var/app'), file('var/app/b', 'bb')];

test('create, apply, changes, diff, diff-size, ls, rm on vfs', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const root = tmp.join('root');
    await fsp.writeFile(tmp.join('base.tar'), await makeTar(BASE));
    assert.equal(ok(vfs(root, 'create', 'base'), 'create').out, 'base\n');
    assert.equal(ok(vfs(root, 'apply', 'base', tmp.join('base.tar')), 'apply file').out.trim(), String(4 + 6 + 1));
    // Created on its parent by apply itself, tar from stdin.
    const top = runCli(['--root', root, '--driver', 'vfs', 'apply', 'top', 'base', '-'], { input: await makeTar(TOP) });
    ok(top, 'apply stdin');

    const changes = lines(ok(vfs(root, 'changes', 'top'), 'changes').out);
    assert.deepEqual(changes, ['C /etc', 'C /etc/motd', 'D /etc/old', 'A /new', 'C /var', 'C /var/app', 'D /var/app/a', 'A /var/app/b']);
    // '' compares against nothing: everything is added.
    assert.ok(lines(ok(vfs(root, 'changes', 'top', ''), 'changes vs nothing').out).every((l) => l.startsWith('A ')));

    const json = JSON.parse(ok(vfs(root, '--json', 'changes', 'top'), 'changes --json').out) as { parent: string; changes: Array<{ kind: string; path: string }> };
    assert.equal(json.parent, 'base');
    assert.deepEqual(json.changes.find((c) => c.path === '/etc/old'), { kind: 'Delete', path: '/etc/old' });

    assert.equal(ok(vfs(root, 'diff-size', 'top'), 'diff-size').out, `${'hello again\n'.length + 5 + 2}\n`);

    const names = await tarNames(ok(vfs(root, 'diff', 'top'), 'diff').stdout);
    for (const n of ['etc/.wh.old', 'new', 'var/app/b']) assert.ok(names.includes(n), `diff carries ${n}: ${names.join(' ')}`);
    ok(vfs(root, 'diff', 'top', '-o', tmp.join('top.tar')), 'diff -o');
    assert.deepEqual(await tarNames(await fsp.readFile(tmp.join('top.tar'))), names);

    const ls = lines(ok(vfs(root, 'ls'), 'ls').out);
    assert.match(ls[0]!, /^ID\s+PARENT\s+SIZE\s+CREATED\s+STATE$/);
    assert.match(ls[1]!, /^base\s+-\s+11 B\s+\S+\s+ok$/);
    assert.match(ls[2]!, /^top\s+base\s+19 B\s+\S+\s+ok$/);
    const lsJson = JSON.parse(ok(vfs(root, 'ls', '--json'), 'ls --json').out) as { driver: string; layers: Array<{ id: string; parent: string; size: number; exists: boolean }> };
    assert.equal(lsJson.driver, 'vfs');
    assert.deepEqual(lsJson.layers.map((l) => [l.id, l.parent, l.size, l.exists]), [['base', '', 11, true], ['top', 'base', 19, true]]);

    // The parent of a recorded layer is refused; children first.
    const refused = vfs(root, 'rm', 'base');
    assert.equal(refused.status, 1);
    assert.match(refused.err, /^graphdriver: layer "base" is the parent of "top"; remove it first\n$/);
    assert.equal(ok(vfs(root, 'rm', 'top'), 'rm top').out, 'top\n');
    ok(vfs(root, 'rm', 'base'), 'rm base');
    assert.equal(ok(vfs(root, 'ls'), 'ls empty').out, '');
    assert.deepEqual(await fsp.readdir(tmp.join('root', 'vfs', 'dir')), []);
  });
});

test('ls marks a recorded layer the driver no longer has; rm forgets it', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const root = tmp.join('root');
    ok(vfs(root, 'create', 'gone'), 'create');
    await fsp.rm(tmp.join('root', 'vfs', 'dir', 'gone'), { recursive: true }); // behind the CLI's back
    assert.match(lines(ok(vfs(root, 'ls'), 'ls').out)[1]!, /^gone\s+-\s+-\s+\S+\s+missing$/);
    ok(vfs(root, 'rm', 'gone'), 'rm forgets');
    assert.equal(ok(vfs(root, 'ls'), 'ls').out, '');
  });
});

test('info says which driver and why, in text and JSON', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const root = tmp.join('root');
    const text = ok(vfs(root, 'info'), 'info').out;
    assert.match(text, /^Driver: +vfs$/m);
    assert.match(text, /^Selected by: +explicit /m);
    assert.match(text, /^Backing Filesystem: +\S+$/m);
    const env = JSON.parse(ok(runCli(['--root', root, '--json', 'info'], { env: { DOCKER_DRIVER: 'vfs' } }), 'info env').out) as Record<string, unknown>;
    assert.equal(env.driver, 'vfs');
    assert.equal(env.reason, 'env');
    assert.equal(typeof (env.status as Record<string, string>)['Backing Filesystem'], 'string');
    // Without a name, the vfs home that now holds state is preferred ("prior") unless a
    // higher-priority driver inits here; either way the reason is one of the two.
    const sel = JSON.parse(ok(runCli(['--root', root, '--json', 'info']), 'info selected').out) as Record<string, unknown>;
    assert.ok(sel.reason === 'prior' || sel.reason === 'priority', String(sel.reason));
  });
});

test('errors: one line on stderr and a distinct exit code', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const root = tmp.join('root');
    const cases: Array<[string[], number, RegExp]> = [
      [['create', 'a/b'], 2, /^graphdriver: invalid layer id: .*'\/'/],
      [['changes', 'nope'], 3, /^graphdriver: layer "nope" does not exist$/],
      [['rm', 'nope'], 3, /^graphdriver: layer "nope" does not exist$/],
      [['create'], 2, /^graphdriver: create takes ID \[PARENT\], got 0 arguments/],
      [['frobnicate'], 2, /^graphdriver: unknown command "frobnicate"/],
      [['ls', '--bogus'], 2, /^graphdriver: Unknown option '--bogus'/],
      [['--storage-opt', 'novalue', 'ls'], 2, /^graphdriver: --storage-opt expects key=value/],
      [['--storage-opt', 'vfs.nope=1', 'ls'], 2, /^graphdriver: invalid storage option: /],
      [['apply', 'x', tmp.join('missing.tar')], 1, /^graphdriver: ENOENT: /],
    ];
    for (const [args, code, re] of cases) {
      const r = vfs(root, ...args);
      assert.equal(r.status, code, `${args.join(' ')}: ${r.err}`);
      assert.equal(lines(r.err).length, 1, `${args.join(' ')}: one line: ${r.err}`);
      assert.match(r.err.trimEnd(), re);
      assert.equal(r.out, '');
    }
    const driver = runCli(['--root', root, '--driver', 'no-such-driver', 'ls']);
    assert.equal(driver.status, 4);
    assert.match(driver.err, /^graphdriver: unknown storage driver "no-such-driver"; registered: .*vfs/);
    const json = vfs(root, '--json', 'changes', 'nope');
    assert.equal(json.status, 3);
    assert.deepEqual(JSON.parse(json.err), { error: { code: 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND', message: 'layer "nope" does not exist', exitCode: 3 } });
    // A bad apply of a layer the command created leaves no layer behind.
    await fsp.writeFile(tmp.join('junk.tar'), Buffer.alloc(1024, 0x41));
    const junk = vfs(root, 'apply', 'junk', tmp.join('junk.tar'));
    assert.equal(junk.status, 1, junk.err);
    assert.equal(lines(junk.err).length, 1);
    assert.equal(ok(vfs(root, 'ls'), 'ls').out, '');
  });
});

test('--help for the CLI and for every command', async () => {
  const main = runCli(['--help']);
  assert.equal(main.status, 0);
  const commands = ['info', 'ls', 'create', 'rm', 'mount', 'umount', 'diff', 'changes', 'diff-size', 'apply', 'import', 'demo'];
  for (const c of commands) assert.match(main.out, new RegExp(`^  ${c} `, 'm'));
  for (const c of commands) {
    const r = runCli([c, '--help']);
    assert.equal(r.status, 0, c);
    assert.match(r.out, new RegExp(`^usage: graphdriver \\[global options\\] ${c}`), c);
    assert.match(r.out, /--root DIR/, c);
  }
  assert.match(runCli(['mount', '--help']).out, /stays after the process ends/);
  const bare = runCli([]);
  assert.equal(bare.status, 2);
  assert.match(bare.err, /^usage: graphdriver/);
});
