// progress.test.ts: the progress meter draws only when enabled (a TTY in the CLI), shows bytes,
// total, percent, rate and entries, and erases its line; humanSize uses SI units like docker.
// Unit tests with a fake clock and sink; the CLI subprocess tests cover the piped (quiet) case.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Progress, humanSize } from '../../cli/progress';

test('humanSize', () => {
  assert.equal(humanSize(0), '0 B');
  assert.equal(humanSize(999), '999 B');
  assert.equal(humanSize(1740), '1.74 kB');
  assert.equal(humanSize(12_345_678), '12.3 MB');
  assert.equal(humanSize(5e9), '5.00 GB');
});

test('Progress draws when enabled, and not at all when disabled', () => {
  let now = 0;
  const out: string[] = [];
  const sink = { write: (s: string) => out.push(s), columns: 80 };
  const p = new Progress(sink, 'apply x', true, 2000, () => now);
  now = 1000;
  p.add(1000);
  p.setEntries(3);
  assert.equal(p.line(), 'apply x  1.00 kB / 2.00 kB (50%)  1.00 kB/s  3 entries');
  assert.ok(out.length > 0 && out.every((s) => s.startsWith('\r\x1b[K')));
  p.finish('done');
  assert.equal(out[out.length - 1], 'done\n');

  const quiet: string[] = [];
  const q = new Progress({ write: (s: string) => quiet.push(s) }, 'diff', false, undefined, () => now);
  q.add(5);
  q.finish('done');
  assert.deepEqual(quiet, []);
  assert.equal(q.count, 5);
});
