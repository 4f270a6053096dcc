// no-spawn.test.ts: the library never spawns a process. Scans the sources of lib/ and native/
// for every way Node or C++ could start one; the check fails on the first line that does.
import { strict as assert } from 'node:assert';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

const repo = path.resolve(__dirname, '..', '..');
const patterns: RegExp[] = [
  /\bchild_process\b/, /\bexecSync\b/, /\bexecFile(Sync)?\b/, /\bspawn(Sync)?\s*\(/, /\bfork\s*\(/,
  /\bsystem\s*\(/, /\bpopen\s*\(/, /\bexecv[pe]*\s*\(/, /\bexecl[pe]*\s*\(/, /\bposix_spawnp?\b/, /\bvfork\s*\(/,
  /\bclone3?\s*\(/, /worker_threads/,
];

async function sources(dir: string, exts: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const ent of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) out.push(...await sources(p, exts));
    else if (exts.some((e) => ent.name.endsWith(e))) out.push(p);
  }
  return out;
}

test('lib/ and native/ contain no process spawning', async () => {
  const files = [...await sources(path.join(repo, 'lib'), ['.ts']), ...await sources(path.join(repo, 'native'), ['.cc', '.h'])];
  assert.ok(files.length > 10, `expected the library sources under ${repo}, found ${files.length}`);
  const hits: string[] = [];
  for (const f of files) {
    const lines = (await fsp.readFile(f, 'utf8')).split('\n');
    lines.forEach((line, i) => {
      if (/^\s*(\/\/|\*)/.test(line)) return; // comments may name what we do not do
      for (const re of patterns) if (re.test(line)) hits.push(`${path.relative(repo, f)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(hits, []);
});
