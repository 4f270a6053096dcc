// changes: the engine's change semantics (pkg/archive changes.go). A path is Modify when its
// mode, uid, gid, rdev or security.capability differ, or (non-directories only) its size or
// ns mtime; a directory whose contents changed is listed as Modify (except '/'); a deleted
// directory is ONE Delete, not one per child; a new directory is Add plus Add for each child.
// changes(base, '') lists every path of base as Add.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ChangeKind } from '../../../lib/index';
import type { Change } from '../../../lib/index';
import { buildTree, listTree } from '../../helpers/fs-tree';
import type { ConformanceCase } from '../suite';

const t0 = 1_500_000_000_000_000_000n;

function show(changes: Change[]): string[] {
  return changes.map((c) => `${ChangeKind[c.kind] ?? `kind ${c.kind}`} ${c.path}`).sort((a, b) => {
    const pa = a.slice(a.indexOf(' ') + 1);
    const pb = b.slice(b.indexOf(' ') + 1);
    return pa < pb ? -1 : pa > pb ? 1 : a < b ? -1 : 1;
  });
}

export const changes: ConformanceCase = {
  name: 'changes',
  needsRoot: 'chown in the base tree',
  async run({ driver: d }) {
    await d.create('base', '');
    const b = await d.get('base');
    await buildTree(b, [
      { type: 'dir', path: 'a', mtimeNs: t0 },
      { type: 'file', path: 'a/f', content: 'old', mtimeNs: t0 },
      { type: 'file', path: 'a/same', content: 'same', mtimeNs: t0 },
      { type: 'dir', path: 'b', mtimeNs: t0 },
      { type: 'file', path: 'b/x', content: 'x', mtimeNs: t0 },
      { type: 'dir', path: 'c', mtimeNs: t0 },
      { type: 'file', path: 'c/x', content: 'x', mtimeNs: t0 },
      { type: 'dir', path: 'c/sub', mtimeNs: t0 },
      { type: 'file', path: 'c/sub/y', content: 'y', mtimeNs: t0 },
      { type: 'file', path: 'd', content: 'd', mtimeNs: t0 },
      { type: 'file', path: 'chmodded', content: 'c', mode: 0o644, mtimeNs: t0 },
      { type: 'file', path: 'chowned', content: 'c', uid: 1, gid: 1, mtimeNs: t0 },
      { type: 'dir', path: 'untouched', mtimeNs: t0 },
      { type: 'file', path: 'untouched/z', content: 'z', uid: 7, mtimeNs: t0 },
      { type: 'dir', path: 'touched-dir', mtimeNs: t0 },
    ]);
    const baseList = await listTree(b);
    await d.put('base');

    await d.create('child', 'base');
    const c = await d.get('child');
    await fsp.writeFile(path.join(c, 'a/f'), 'new content');
    await fsp.writeFile(path.join(c, 'b/new'), 'n');
    await fsp.rm(path.join(c, 'c'), { recursive: true });
    await fsp.rm(path.join(c, 'd'));
    await fsp.chmod(path.join(c, 'chmodded'), 0o600);
    await fsp.lchown(path.join(c, 'chowned'), 2, 1);
    await fsp.mkdir(path.join(c, 'e'));
    await fsp.writeFile(path.join(c, 'e/g'), 'g');
    // A directory whose mtime alone moved (child created and removed) is not a change.
    await fsp.writeFile(path.join(c, 'touched-dir/tmp'), 't');
    await fsp.rm(path.join(c, 'touched-dir/tmp'));
    await d.put('child');

    assert.deepEqual(show(await d.changes('child', 'base')), [
      'Modify /a',
      'Modify /a/f',
      'Modify /b',
      'Add /b/new',
      'Delete /c',
      'Modify /chmodded',
      'Modify /chowned',
      'Delete /d',
      'Add /e',
      'Add /e/g',
    ]);

    assert.deepEqual(show(await d.changes('base', '')), [...baseList].sort().map((p) => `Add ${p}`));
  },
};
