// aufs-mounts.test.ts: the aufs mount-data builder (lib/drivers/aufs/mounts.ts), pure, and the
// driver's get() of a 126-layer chain through the test seam (a recording mounter): the exact
// mount(2) calls. The kernel copies at most one page of mount data, NUL included, so the first
// call's data — `br:` branches plus `,dio,xino=...[,dirperm1][,context=...]` — may be 4095
// bytes on a 4 KiB page; a branch that does not fit whole goes, with all after it, into one
// MS_REMOUNT `append:<dir>=ro+wh` each. The cases place the page end inside a branch's path,
// inside its `=ro+wh` suffix one byte short, and exactly on a branch's end (4095 bytes: taken).
// Expected strings are built here by hand, not by the builder.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { MountLimitError } from '../../lib/errors';
import { openAufsForTest } from '../../lib/drivers/aufs/driver';
import { aufsMounts, formatLayersFile, parseLayersFile } from '../../lib/drivers/aufs/mounts';
import type { MountSpec } from '../../lib/mount/spec';
import { MS } from '../../lib/native';
import { RecordingMounter } from '../helpers/aufs-seam';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

const PAGE_DATA = 4095;
const LAYERS = 126;
/** 126 engine-like ids (64 hex chars), base first. */
const ids = Array.from({ length: LAYERS }, (_, i) => createHash('sha256').update(`layer ${i}`).digest('hex'));
const top = ids[LAYERS - 1]!;
/** The top's ancestors, nearest first. */
const ancestors = ids.slice(0, -1).reverse();

/** The options after the branches of the first call. */
const tailOptions = (dirperm1: boolean, label?: string): string[] =>
  ['dio', 'xino=/dev/shm/aufs.xino', ...(dirperm1 ? ['dirperm1'] : []), ...(label !== undefined ? [`context="${label}"`] : [])];
/** The same as the data string has them: ',dio,xino=...'. */
const tail = (dirperm1: boolean, label?: string): string => tailOptions(dirperm1, label).map((o) => `,${o}`).join('');

type Where = 'path' | 'suffix' | 'exact';

/**
 * Where the page ends in the first call when `home` holds the chain: the first ancestor k whose
 * branch `:<dir>=ro+wh` does not fit whole, and how many of its bytes would fit.
 */
function boundary(home: string, t: string): { k: number; fits: number; pathLen: number; where: Where | 'other' } {
  const dir = (id: string): string => `${home}/diff/${id}`;
  let used = `br:${dir(top)}=rw`.length + t.length;
  for (let k = 0; k < ancestors.length; k++) {
    const p = dir(ancestors[k]!);
    const branch = `:${p}=ro+wh`;
    const room = PAGE_DATA - used;
    if (room === branch.length) return { k, fits: room, pathLen: p.length, where: 'exact' };
    if (room < branch.length) {
      const where = room > 1 && room < 1 + p.length ? 'path' : room > 1 + p.length && room < branch.length ? 'suffix' : 'other';
      return { k, fits: room, pathLen: p.length, where };
    }
    used += branch.length;
  }
  throw new Error('every branch fits in one page: the chain is too short for this test');
}

/** A home path of the form `${prefix}/<pad>/aufs` whose boundary falls where asked (for the 'suffix' case: one byte short). */
function homeFor(prefix: string, where: Where, t: string): { home: string; pad: string; k: number } {
  for (let n = 1; n < 250; n++) {
    const pad = 'p'.repeat(n);
    const home = `${prefix}/${pad}/aufs`;
    const b = boundary(home, t);
    const branchLen = 1 + b.pathLen + '=ro+wh'.length;
    if (b.where === where && (where !== 'suffix' || b.fits === branchLen - 1) && (where !== 'path' || b.fits > 1 + b.pathLen / 2)) {
      // k: how many ancestors the first call takes (an exact fit takes the branch that ends on the page end).
      return { home, pad, k: where === 'exact' ? b.k + 1 : b.k };
    }
  }
  throw new Error(`no home length puts the page end at ${where}`);
}

/** The calls get() must make for the top of the chain in `home`, with the first k ancestors in the first call. */
function expectedCalls(home: string, k: number, tailOpts: string[], label?: string): MountSpec[] {
  const dir = (id: string): string => `${home}/diff/${id}`;
  const target = `${home}/mnt/${top}`;
  const br = `br:${dir(top)}=rw${ancestors.slice(0, k).map((a) => `:${dir(a)}=ro+wh`).join('')}`;
  const first: MountSpec = { type: 'aufs', source: 'none', target, options: [br, ...tailOpts], flags: 0 };
  const appends = ancestors.slice(k).map((a): MountSpec => ({
    type: 'aufs', source: 'none', target, options: [`append:${dir(a)}=ro+wh`, ...(label !== undefined ? [`context="${label}"`] : [])], flags: MS.MS_REMOUNT,
  }));
  return [first, ...appends];
}

/** The first call's data as mount(2) gets it. */
const dataOf = (s: MountSpec): string => s.options.join(',');

function checkPage(calls: MountSpec[], home: string, k: number): void {
  const first = dataOf(calls[0]!);
  assert.ok(first.length <= PAGE_DATA, `first data is ${first.length} bytes`);
  const next = ancestors[k];
  if (next !== undefined) assert.ok(first.length + `:${home}/diff/${next}=ro+wh`.length > PAGE_DATA, 'the first call could have taken one more branch');
  assert.equal(calls.length, 1 + ancestors.length - k);
}

for (const [where, dirperm1, label] of [['path', false, undefined], ['suffix', false, undefined], ['exact', false, undefined],
  ['path', true, 'system_u:object_r:container_file_t:s0:c1,c2'], ['suffix', true, undefined]] as const) {
  test(`builder: 126 layers, page end ${where === 'exact' ? 'exactly at a branch end (taken)' : `inside a branch ${where === 'path' ? 'path' : '=ro+wh suffix, one byte short'}`}${dirperm1 ? ', dirperm1' : ''}${label !== undefined ? ', mount label' : ''}`, () => {
    const t = tail(dirperm1, label);
    const { home, k } = homeFor('/var/lib/docker', where, t);
    const dir = (id: string): string => `${home}/diff/${id}`;
    const calls = aufsMounts({ rw: dir(top), ro: ancestors.map(dir), target: `${home}/mnt/${top}`, dirperm1, ...(label !== undefined ? { mountLabel: label } : {}) });
    assert.deepEqual(calls, expectedCalls(home, k, tailOptions(dirperm1, label), label));
    checkPage(calls, home, k);
    if (where === 'exact') assert.equal(dataOf(calls[0]!).length, PAGE_DATA);
    if (where === 'suffix') assert.equal(dataOf(calls[0]!).length + `:${dir(ancestors[k]!)}=ro+wh`.length, PAGE_DATA + 1, 'one byte short');
    if (where === 'path') assert.ok(PAGE_DATA - dataOf(calls[0]!).length < `:${dir(ancestors[k]!)}`.length, 'the page ends inside the path');
    assert.ok(k > 0 && k < ancestors.length, `boundary at ancestor ${k}`);
  });
}

test('builder: every branch in the first call when all fit', () => {
  const calls = aufsMounts({ rw: '/h/diff/c', ro: ['/h/diff/b', '/h/diff/a'], target: '/h/mnt/c', dirperm1: false });
  assert.deepEqual(calls, [{ type: 'aufs', source: 'none', target: '/h/mnt/c', options: ['br:/h/diff/c=rw:/h/diff/b=ro+wh:/h/diff/a=ro+wh', 'dio', 'xino=/dev/shm/aufs.xino'], flags: 0 }]);
});

test('builder: MountLimitError when the writable branch with its options, or one append, exceeds a page', () => {
  const long = `/${'d'.repeat(250)}`.repeat(17);
  assert.throws(() => aufsMounts({ rw: long, ro: [], target: '/t', dirperm1: false }), MountLimitError);
  assert.throws(() => aufsMounts({ rw: '/r', ro: ['/a', long], target: '/t', dirperm1: false, maxData: 100 }), MountLimitError);
  // Bytes, not UTF-16 units: a 2-byte character counts twice.
  const calls = aufsMounts({ rw: '/r', ro: ['/é'], target: '/t', dirperm1: false, maxData: 'br:/r=rw,dio,xino=/dev/shm/aufs.xino'.length + ':/é=ro+wh'.length });
  assert.equal(calls.length, 2);
});

test('layers file: parent then ancestors, one per line; empty for none; invalid ids refused', () => {
  assert.equal(formatLayersFile('', []), '');
  assert.equal(formatLayersFile('p', ['g', 'gg']), 'p\ng\ngg\n');
  assert.deepEqual(parseLayersFile('p\ng\ngg\n'), ['p', 'g', 'gg']);
  assert.deepEqual(parseLayersFile(''), []);
  assert.deepEqual(parseLayersFile('p\n\ng'), ['p', 'g']);
  assert.throws(() => parseLayersFile('a/b\n'), { code: 'ERR_GRAPHDRIVER_INVALID_ID' });
});

const root = { skip: skipUnlessRoot('layer dirs are owned 0:0'), timeout: 120_000 };

for (const where of ['path', 'suffix'] as const) {
  test(`driver: get() of the top of 126 layers makes exactly the expected mount(2) calls (page end inside a branch ${where})`, root, async () => {
    await withTmpDir(async (tmp) => {
      const t = tail(false);
      const { home, pad, k } = homeFor(tmp.path, where, t);
      await fsp.mkdir(path.join(tmp.path, pad));
      const mounter = new RecordingMounter();
      const d = await openAufsForTest(home, { mounter, dirperm1: false });
      try {
        let parent = '';
        for (const id of ids) {
          await d.create(id, parent);
          parent = id;
        }
        assert.equal(await fsp.readFile(`${home}/layers/${top}`, 'utf8'), ancestors.map((a) => `${a}\n`).join(''));
        assert.equal(await d.get(top), `${home}/mnt/${top}`);
        assert.equal(mounter.sequences.length, 1);
        assert.deepEqual(mounter.sequences[0], expectedCalls(home, k, tailOptions(false)));
        checkPage(mounter.sequences[0]!, home, k);
        await d.put(top);
        assert.deepEqual(mounter.unmounts, [`${home}/mnt/${top}`]);
      } finally {
        await d.cleanup();
      }
    }, 'aufs-mounts-');
  });
}
