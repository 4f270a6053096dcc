// hardlink.test.ts: a hardlink entry shares its target's inode, so applying it must not
// change that inode's owner, mode, times or xattrs. This matters for hardlink farms (overlay's
// applyDiff hardlinks the parent's files into the new layer): a tar that links to a file the
// layer shares with its parent would otherwise rewrite the parent's file.
import { strict as assert } from 'node:assert';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { applyLayer } from '../../lib/archive/apply';
import { makeTar } from '../helpers/hostile-tar';
import { skipUnlessRoot } from '../helpers/requires-root';
import { withTmpDir } from '../helpers/tmp';

test('a hardlink entry leaves its target inode as it was', { skip: skipUnlessRoot('chown') }, async () => {
  await withTmpDir(async (tmp) => {
    const layer = await tmp.mkdir('layer');
    const shared = path.join(layer, 'shared');
    await fsp.writeFile(shared, 'from the parent');
    await fsp.chown(shared, 7, 8);
    await fsp.chmod(shared, 0o640);
    await fsp.utimes(shared, 1_000_000_000, 1_000_000_000);
    const before = await fsp.lstat(shared, { bigint: true });
    const tar = makeTar([{ name: 'link', type: 'link', linkname: 'shared', mode: 0o4777, uid: 0, gid: 0, mtimeSec: 1_700_000_000 }]);
    await applyLayer(layer, Readable.from([tar]));
    const after = await fsp.lstat(shared, { bigint: true });
    const link = await fsp.lstat(path.join(layer, 'link'), { bigint: true });
    assert.equal(link.ino, before.ino);
    for (const k of ['mode', 'uid', 'gid', 'mtimeNs', 'size'] as const) assert.equal(after[k], before[k], k);
    assert.equal(await fsp.readFile(shared, 'utf8'), 'from the parent');
  });
});
