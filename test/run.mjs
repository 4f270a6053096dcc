// run.mjs: the runner `npm test` calls after tsc. Finds every compiled test file
// (dist/test/**/*.test.js) and runs them with node:test, one file at a time (tests mount and
// unmount, so files never run concurrently). Prints nothing of its own on success, so the
// node:test summary ("# pass N", "# fail N", ...) closes the output; exits with node's code.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(repo, 'dist', 'test');

/** Every *.test.js under `d`, sorted, as absolute paths. */
function findTests(d) {
  const out = [];
  for (const ent of readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, ent.name);
    if (ent.isDirectory()) out.push(...findTests(p));
    else if (ent.isFile() && ent.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

if (!existsSync(dir)) {
  process.stderr.write(`test/run.mjs: ${dir} does not exist; run \`npx tsc -p .\` first\n`);
  process.exit(1);
}
// Optional filter: `node test/run.mjs registry native/` runs files whose path contains any word.
const filters = process.argv.slice(2);
const files = findTests(dir).filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)));
if (files.length === 0) {
  process.stderr.write(`test/run.mjs: no test files found under ${dir}\n`);
  process.exit(1);
}
// What the tests leave behind on the machine: mounts, loop devices and temp dirs of theirs.
const MARK = 'graphdriver-test-';
function leftovers() {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4]).filter((mp) => mp !== undefined && mp.includes(MARK));
  const loops = [];
  for (const dev of existsSync('/sys/block') ? readdirSync('/sys/block') : []) {
    const f = `/sys/block/${dev}/loop/backing_file`;
    if (!dev.startsWith('loop') || !existsSync(f)) continue;
    const backing = readFileSync(f, 'utf8').trim();
    if (backing.includes(MARK)) loops.push(`/dev/${dev} -> ${backing}`);
  }
  const dirs = readdirSync(os.tmpdir()).filter((n) => n.startsWith(MARK)).map((n) => path.join(os.tmpdir(), n));
  return { mounts, loops, dirs };
}

const before = leftovers();
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit', cwd: repo });
if (r.error) {
  process.stderr.write(`test/run.mjs: ${r.error.message}\n`);
  process.exit(1);
}
// The leak check fails the run; it prints only on failure (to stderr), so the node:test
// summary stays the closing lines of the output.
const after = leftovers();
const fresh = (k) => after[k].filter((x) => !before[k].includes(x));
const leaked = [...fresh('mounts').map((m) => `mount ${m}`), ...fresh('loops').map((l) => `loop ${l}`), ...fresh('dirs').map((d) => `dir ${d}`)];
if (leaked.length > 0) {
  process.stderr.write(`test/run.mjs: the tests left these behind:\n  ${leaked.join('\n  ')}\n`);
  process.exit(r.status === 0 ? 1 : (r.status ?? 1));
}
process.exit(r.status ?? 1);
