// image.ts: reads an image's layer list from a BlobSource, in either format, and names the
// layers by chain id.
//   docker save   manifest.json: [{ Config, RepoTags, Layers: ["<dir>/layer.tar" | "blobs/sha256/<hex>", ...] }]
//                 the config's rootfs.diff_ids give each layer's uncompressed digest.
//   OCI layout    index.json -> a manifest (through nested indexes, preferring linux/<this arch>)
//                 -> config (rootfs.diff_ids) and layers [{ mediaType, digest }], blobs/<alg>/<hex>.
// Layer ids are the engine's chain ids, hex without the "sha256:" prefix:
//   chain(0) = diffID(0);  chain(n) = sha256(chain(n-1) + " " + diffID(n))   (both as "sha256:<hex>")
// so a layer shared by two images gets one id, and ids match the engine's layerdb names. When
// the config gives no diff ids, the blob's own sha256 stands in for the diff id.
import { createHash } from 'node:crypto';
import { CliError } from '../errors';
import type { BlobSource } from './source';

export interface ImageLayer {
  /** Member or file name of the blob within the source. */
  blob: string;
  /** The blob's digest when the format states it ("sha256:<hex>"); checked while applying. */
  digest?: string;
  /** The uncompressed layer digest ("sha256:<hex>") from the config, if any. */
  diffId?: string;
  mediaType?: string;
}

export interface Image {
  format: 'docker-save' | 'oci';
  /** A tag or ref name, when the source names one. */
  ref?: string;
  layers: ImageLayer[];
}

const DIGEST = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-f0-9]{32,})$/;
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

type Json = Record<string, unknown>;

function obj(v: unknown, what: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CliError(`${what} is not a JSON object`);
  return v as Json;
}

function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new CliError(`${what} is not a JSON array`);
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '') throw new CliError(`${what} is missing or not a string`);
  return v;
}

/** "sha256:<hex>" -> "blobs/sha256/<hex>", checking the digest's shape. */
export function blobPath(digest: string): string {
  const m = DIGEST.exec(digest);
  if (m === null) throw new CliError(`malformed digest ${JSON.stringify(digest)}`);
  return `blobs/${m[1]}/${m[2]}`;
}

/** The diff ids of a config blob, or undefined when it has none. */
function diffIds(config: unknown, what: string): string[] | undefined {
  const rootfs = obj(config, what).rootfs;
  if (rootfs === undefined) return undefined;
  const ids = obj(rootfs, `${what} rootfs`).diff_ids;
  if (ids === undefined) return undefined;
  return arr(ids, `${what} rootfs.diff_ids`).map((d, i) => {
    const s = str(d, `${what} rootfs.diff_ids[${i}]`);
    if (!DIGEST.test(s)) throw new CliError(`${what}: malformed diff id ${JSON.stringify(s)}`);
    return s;
  });
}

async function readDockerSave(src: BlobSource): Promise<Image> {
  const manifest = arr(await src.readJson('manifest.json'), `${src.where}: manifest.json`);
  if (manifest.length === 0) throw new CliError(`${src.where}: manifest.json lists no images`);
  if (manifest.length > 1) throw new CliError(`${src.where}: manifest.json lists ${manifest.length} images; import takes an archive of one image`);
  const entry = obj(manifest[0], `${src.where}: manifest.json[0]`);
  const layers = arr(entry.Layers, `${src.where}: manifest.json Layers`).map((l, i) => str(l, `manifest.json Layers[${i}]`));
  const configName = typeof entry.Config === 'string' ? entry.Config : undefined;
  const ids = configName !== undefined && (await src.has(configName)) ? diffIds(await src.readJson(configName), `${src.where}: ${configName}`) : undefined;
  if (ids !== undefined && ids.length !== layers.length) {
    throw new CliError(`${src.where}: the config lists ${ids.length} diff ids for ${layers.length} layers`);
  }
  const tags = Array.isArray(entry.RepoTags) ? entry.RepoTags.filter((t): t is string => typeof t === 'string') : [];
  return {
    format: 'docker-save',
    ...(tags.length > 0 ? { ref: tags[0]! } : {}),
    layers: layers.map((blob, i) => {
      const m = /^blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(blob);
      return { blob, ...(m !== null ? { digest: `${m[1]}:${m[2]}` } : {}), ...(ids !== undefined ? { diffId: ids[i]! } : {}) };
    }),
  };
}

/** Picks one manifest descriptor from an index: the only one, else linux/<this arch>, else the first. */
function pickDescriptor(index: Json, what: string): Json {
  const list = arr(index.manifests, `${what} manifests`).map((m, i) => obj(m, `${what} manifests[${i}]`));
  if (list.length === 0) throw new CliError(`${what} lists no manifests`);
  if (list.length === 1) return list[0]!;
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
  const match = list.find((m) => {
    const p = m.platform;
    return typeof p === 'object' && p !== null && (p as Json).os === 'linux' && (p as Json).architecture === arch;
  });
  return match ?? list[0]!;
}

async function readOci(src: BlobSource): Promise<Image> {
  let what = `${src.where}: index.json`;
  let node = obj(await src.readJson('index.json'), what);
  let ref: string | undefined;
  for (let depth = 0; depth < 8; depth++) {
    const desc = pickDescriptor(node, what);
    const ann = desc.annotations;
    if (ref === undefined && typeof ann === 'object' && ann !== null && typeof (ann as Json)['org.opencontainers.image.ref.name'] === 'string') {
      ref = (ann as Json)['org.opencontainers.image.ref.name'] as string;
    }
    const digest = str(desc.digest, `${what} manifest digest`);
    what = `${src.where}: ${blobPath(digest)}`;
    node = obj(await src.readJson(blobPath(digest)), what);
    const mediaType = typeof desc.mediaType === 'string' ? desc.mediaType : node.mediaType;
    if (typeof mediaType === 'string' && INDEX_TYPES.has(mediaType)) continue;
    if (node.manifests !== undefined && node.layers === undefined) continue; // an index without mediaType
    const config = obj(node.config, `${what} config`);
    const configDigest = str(config.digest, `${what} config digest`);
    const ids = diffIds(await src.readJson(blobPath(configDigest)), `${src.where}: config ${configDigest}`);
    const layers = arr(node.layers, `${what} layers`).map((l, i): ImageLayer => {
      const d = obj(l, `${what} layers[${i}]`);
      const lt = typeof d.mediaType === 'string' ? d.mediaType : undefined;
      if (lt !== undefined && /zstd/.test(lt)) throw new CliError(`${what}: layer ${i} is zstd-compressed (${lt}); only plain and gzip layers are supported`);
      const dg = str(d.digest, `${what} layers[${i}].digest`);
      return { blob: blobPath(dg), digest: dg, ...(lt !== undefined ? { mediaType: lt } : {}) };
    });
    if (ids !== undefined && ids.length !== layers.length) throw new CliError(`${what}: the config lists ${ids.length} diff ids for ${layers.length} layers`);
    return { format: 'oci', ...(ref !== undefined ? { ref } : {}), layers: layers.map((l, i) => (ids !== undefined ? { ...l, diffId: ids[i]! } : l)) };
  }
  throw new CliError(`${src.where}: image indexes nested too deep`);
}

/** Reads the image in `src`: docker save (manifest.json) first, else an OCI layout (index.json). */
export async function readImage(src: BlobSource): Promise<Image> {
  if (await src.has('manifest.json')) return readDockerSave(src);
  if (await src.has('index.json')) return readOci(src);
  throw new CliError(`${src.where}: neither a docker save archive (no manifest.json) nor an OCI image layout (no index.json)`);
}

/** The engine's chain id of a layer on `parentChain` ('' for none), as "sha256:<hex>". */
export function chainId(parentChain: string, diffId: string): string {
  if (parentChain === '') return diffId;
  return `sha256:${createHash('sha256').update(`${parentChain} ${diffId}`).digest('hex')}`;
}

/** A layer id from a "sha256:<hex>" chain id: the hex. */
export function layerIdOf(chain: string): string {
  const i = chain.indexOf(':');
  return i < 0 ? chain : chain.slice(i + 1);
}

/** sha256 of a whole blob, as "sha256:<hex>" (the stand-in diff id when the config has none). */
export async function hashBlob(stream: NodeJS.ReadableStream): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of stream as AsyncIterable<Buffer>) h.update(chunk);
  return `sha256:${h.digest('hex')}`;
}
