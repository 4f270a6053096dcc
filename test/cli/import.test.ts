// import.test.ts: `graphdriver import` of a docker save archive and of an OCI image layout
// (gzip layers), both built here by hand; layer ids are the engine's chain ids, a second import
// of the same layers reuses them, and a blob that does not match its digest is refused before
// anything of it is written.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { skipUnlessRoot } from '../helpers/requires-root';
import { dir, file, makeTar, whiteout } from '../helpers/tar';
import { withTmpDir } from '../helpers/tmp';
import { lines, ok, vfs } from './helpers';

const skip = skipUnlessRoot('layers are owned 0:0');

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

async function layerTars(): Promise<Buffer[]> {
  return [
    await makeTar([dir('etc'), file('etc/motd', 'base\n'), file('etc/gone', 'x')]),
    await makeTar([dir('etc'), file('etc/motd', 'second\n'), whiteout('etc/gone'), file('added', 'yes')]),
  ];
}

/** The engine's chain ids (hex) of layers with these uncompressed tars. */
function chainIds(tars: Buffer[]): string[] {
  const out: string[] = [];
  for (const t of tars) {
    const diffId = `sha256:${sha(t)}`;
    out.push(out.length === 0 ? sha(t) : sha(`sha256:${out[out.length - 1]!} ${diffId}`));
  }
  return out;
}

function config(tars: Buffer[]): Buffer {
  return Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: tars.map((t) => `sha256:${sha(t)}`) } }));
}

/** A `docker save` archive (legacy layout: <dir>/layer.tar, manifest.json last). */
async function dockerSave(tars: Buffer[]): Promise<Buffer> {
  const cfg = config(tars);
  const layerNames = tars.map((t) => `${sha(`v1-${sha(t)}`)}/layer.tar`);
  return makeTar([
    file(`${sha(cfg)}.json`, cfg),
    ...tars.flatMap((t, i) => [dir(path.dirname(layerNames[i]!)), file(layerNames[i]!, t)]),
    file('manifest.json', JSON.stringify([{ Config: `${sha(cfg)}.json`, RepoTags: ['demo:latest'], Layers: layerNames }])),
  ]);
}

/** An OCI image layout directory with gzip layers. */
async function ociLayout(at: string, tars: Buffer[], corrupt = false): Promise<void> {
  const blobs = path.join(at, 'blobs', 'sha256');
  await fsp.mkdir(blobs, { recursive: true });
  const put = async (b: Buffer): Promise<string> => { const h = sha(b); await fsp.writeFile(path.join(blobs, h), b); return h; };
  const cfg = config(tars);
  const cfgHash = await put(cfg);
  const layers = [];
  for (const t of tars) {
    const gz = gzipSync(t);
    const h = await put(gz);
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${h}`, size: gz.length });
  }
  if (corrupt) await fsp.appendFile(path.join(blobs, layers[1]!.digest.slice(7)), 'tampered');
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${cfgHash}`, size: cfg.length }, layers,
  }));
  const mHash = await put(manifest);
  await fsp.writeFile(path.join(at, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await fsp.writeFile(path.join(at, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${mHash}`, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  }));
}

test('import a docker save archive: chain ids, stacked layers, whiteouts applied', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const root = tmp.join('root');
    const tars = await layerTars();
    const ids = chainIds(tars);
    await fsp.writeFile(tmp.join('image.tar'), await dockerSave(tars));
    const r = ok(vfs(root, 'import', tmp.join('image.tar')), 'import');
    assert.equal(r.out, `${ids[1]}\n`);
    const ls = JSON.parse(ok(vfs(root, '--json', 'ls'), 'ls').out) as { layers: Array<{ id: string; parent: string }> };
    assert.deepEqual(ls.layers.map((l) => [l.id, l.parent]), [[ids[0], ''], [ids[1], ids[0]]]);
    assert.deepEqual(lines(ok(vfs(root, 'changes', ids[1]!), 'changes').out), ['A /added', 'C /etc', 'D /etc/gone', 'C /etc/motd']);
    const top = ok(vfs(root, 'mount', ids[1]!), 'mount').out.trim();
    assert.equal(await fsp.readFile(path.join(top, 'etc', 'motd'), 'utf8'), 'second\n');
    ok(vfs(root, 'umount', ids[1]!), 'umount');
    // The same archive gzipped: every layer is reused.
    await fsp.writeFile(tmp.join('image.tar.gz'), gzipSync(await fsp.readFile(tmp.join('image.tar'))));
    const again = JSON.parse(ok(vfs(root, '--json', 'import', tmp.join('image.tar.gz')), 'import gz').out) as { top: string; format: string; ref: string; layers: Array<{ reused: boolean }> };
    assert.deepEqual([again.top, again.format, again.ref], [ids[1], 'docker-save', 'demo:latest']);
    assert.deepEqual(again.layers.map((l) => l.reused), [true, true]);
    assert.deepEqual((await fsp.readdir(tmp.join('root', 'cli'))).filter((n) => n.startsWith('import-')), []);
  });
});

test('import an OCI image layout directory with gzip layers; same ids as docker save', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const root = tmp.join('root');
    const tars = await layerTars();
    const ids = chainIds(tars);
    await ociLayout(tmp.join('oci'), tars);
    const r = JSON.parse(ok(vfs(root, '--json', 'import', tmp.join('oci')), 'import oci').out) as { top: string; format: string; ref: string; layers: Array<{ id: string; reused: boolean }> };
    assert.deepEqual([r.top, r.format, r.ref], [ids[1], 'oci', 'latest']);
    assert.deepEqual(r.layers.map((l) => [l.id, l.reused]), [[ids[0], false], [ids[1], false]]);
    assert.deepEqual(lines(ok(vfs(root, 'changes', ids[1]!), 'changes').out), ['A /added', 'C /etc', 'D /etc/gone', 'C /etc/motd']);
    assert.equal(ok(vfs(root, 'diff-size', ids[0]!), 'diff-size').out, `${'base\n'.length + 1}\n`);
  });
});

test('import refuses a blob that does not match its digest and leaves no layer for it', { skip }, async () => {
  await withTmpDir(async (tmp) => {
    const root = tmp.join('root');
    const tars = await layerTars();
    const ids = chainIds(tars);
    await ociLayout(tmp.join('oci'), tars, true);
    const r = vfs(root, 'import', tmp.join('oci'));
    assert.equal(r.status, 1);
    assert.match(r.err, /^graphdriver: layer 2\/2 \(blobs\/sha256\/[0-9a-f]{64}\) does not match its digest sha256:[0-9a-f]{64}\n$/);
    const ls = JSON.parse(ok(vfs(root, '--json', 'ls'), 'ls').out) as { layers: Array<{ id: string }> };
    assert.deepEqual(ls.layers.map((l) => l.id), [ids[0]]);
    const bad = vfs(root, 'import', tmp.path);
    assert.equal(bad.status, 1);
    assert.match(bad.err, /neither a docker save archive .* nor an OCI image layout/);
  });
});
