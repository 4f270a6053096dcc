// run.mjs: the runner `npm test` calls after tsc. Finds every compiled test file
// (dist/test/**/*.test.js) and runs them with node:test, one file at a time (tests mount and
// unmount, so files never run concurrently). Prints nothing of its own on success, so the
// node:test summary ("# pass N", "# fail N", ...) closes the output; exits with node's code.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
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
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit', cwd: repo });
if (r.error) {
  process.stderr.write(`test/run.mjs: ${r.error.message}\n`);
  process.exit(1);
}
process.exit(r.status ?? 1);
