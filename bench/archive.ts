// archive.ts: the archive engine's benchmark (issue 3), each figure beside GNU tar's on the same
// work, in the same run, on a filesystem the bench mounts itself (tmpfs by default):
//   a) applyLayer of a rootfs-like layer tar into an empty dir   vs  tar -x   (ratio, goal <= 1.0)
//   b) exportTree of that tree, piped to a file                   vs  tar -c   (ratio, goal <= 1.0)
//   c) event-loop delay p50/p99/max and RSS growth while applying a ~1 GiB layer
//      (goal p99 <= 10 ms, growth <= 64 MiB); tar -x of the same tar for reference
//   d) changesDirs between two 100k-entry trees differing in 10 files: a full copy (cp -a) and a
//      hardlink farm (cp -al, identical inodes skipped): time, entries/s, entries scanned
// Pairs alternate order; each timed run is preceded (untimed) by removing the previous output
// and syncfs. Medians of --runs (default 5). Prints a table, then one JSON object on the last line.
// Never asserts on time. Run as root: `npm run bench:archive -- [--runs N] [--fs=tmpfs|ext4|xfs]
// [--big-mib N] [--debootstrap] [--only=a,b,c,d] [--entries N] [--layer-mib N] [--seed N]`.
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { applyLayer } from '../lib/archive/apply';
import { changesDirs } from '../lib/archive/changes';
import { exportTree } from '../lib/archive/export';
import * as native from '../lib/native';
import { Monitor, type MonitorReport } from './lib/monitor';
import { type ScratchFs, type ScratchKind, withScratch } from './lib/scratch-fs';
import { maxOf, median, mustRun, nowMs, pair, round, runTool, table, type PairResult, type Side } from './lib/stats';
import { DEFAULT_ROOTFS, addBigFiles, generateRootfs, modifyFiles, type TreeStats } from './lib/tree-gen';

const TAR_X = ['--xattrs', '--xattrs-include=*', '--same-owner', '--numeric-owner'];
const TAR_C = ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--format=posix'];
const MiB = 1024 * 1024;
/**
 * The input stream's chunk size (fs.createReadStream's highWaterMark). Each chunk an
 * fs.ReadStream reads is one trip to the libuv pool, so its default 64 KiB costs a 1 GiB layer
 * 16,384 trips where GNU tar makes cheap direct read(2)s; 1 MiB is what a caller reading a
 * layer file should pass. `--input-chunk-kib` changes it (64 reproduces the default).
 */
const INPUT_CHUNK_DEFAULT_KIB = 1024;

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    fs: { type: 'string', default: 'tmpfs' },
    'big-mib': { type: 'string', default: '1024' },
    'big-runs': { type: 'string', default: '3' },
    debootstrap: { type: 'boolean', default: false },
    only: { type: 'string', default: 'a,b,c,d' },
    entries: { type: 'string', default: String(DEFAULT_ROOTFS.entries) },
    'layer-mib': { type: 'string', default: String(DEFAULT_ROOTFS.bytes / MiB) },
    'changes-entries': { type: 'string', default: '100000' },
    seed: { type: 'string', default: '1' },
    'input-chunk-kib': { type: 'string', default: String(INPUT_CHUNK_DEFAULT_KIB) },
  },
});

const runs = Math.max(1, Number(opts.runs));
const INPUT_CHUNK = Math.max(4, Number(opts['input-chunk-kib'])) * 1024;
const bigRuns = Math.max(1, Number(opts['big-runs']));
const bigMiB = Number(opts['big-mib']);
const layerMiB = Number(opts['layer-mib']);
const entries = Number(opts.entries);
const changesEntries = Number(opts['changes-entries']);
const seed = Number(opts.seed);
const only = new Set(opts.only.split(','));
const fsKind = opts.fs as ScratchKind;

const log = (s: string): void => { process.stderr.write(`${s}\n`); };

async function rmrf(p: string): Promise<void> {
  await fsp.rm(p, { recursive: true, force: true });
}

/** Number of entries below `dir` (the addon's one-call tree scan). */
async function countEntries(dir: string): Promise<number> {
  return (await native.scanTree(dir, 0)).names.length;
}

interface Layer { source: 'generated' | 'debootstrap'; dir: string; tar: string; tarBytes: number; entries: number; stats?: TreeStats }

/** The layer's tree: debootstrap'd Debian when asked and possible, else generated. */
async function makeLayer(fs: ScratchFs): Promise<Layer> {
  const dir = path.join(fs.mountpoint, 'src');
  await fsp.mkdir(dir, { mode: 0o755 });
  let source: Layer['source'] = 'generated';
  let stats: TreeStats | undefined;
  if (opts.debootstrap) {
    const r = await runTool('debootstrap', ['--variant=minbase', 'stable', dir, 'http://deb.debian.org/debian']).catch((e: unknown) => ({ code: -1, stderr: String(e) }));
    if (r.code === 0) source = 'debootstrap';
    else {
      log(`debootstrap unavailable or failed (${r.stderr.trim().split('\n').pop() ?? ''}); using the generated tree`);
      await rmrf(dir);
      await fsp.mkdir(dir, { mode: 0o755 });
    }
  }
  if (source === 'generated') {
    const t0 = nowMs();
    stats = await generateRootfs(dir, { ...DEFAULT_ROOTFS, entries, bytes: layerMiB * MiB, seed });
    log(`generated ${entries} entries, ${(stats.bytes / MiB).toFixed(0)} MiB in ${((nowMs() - t0) / 1000).toFixed(1)} s`);
  }
  const tar = path.join(fs.mountpoint, 'layer.tar');
  await mustRun('tar', ['-c', ...TAR_C, '-f', tar, '-C', dir, '.']);
  return { source, dir, tar, tarBytes: (await fsp.stat(tar)).size, entries: await countEntries(dir), ...(stats ? { stats } : {}) };
}

/** A side that writes into `out`, removed and re-created (untimed) before each run. */
function sideInto(name: string, fs: ScratchFs, out: string, mkdir: boolean, work: () => Promise<number>): Side {
  return {
    name,
    async prepare() {
      await rmrf(out);
      if (mkdir) await fsp.mkdir(out, { mode: 0o755 });
      await fs.sync();
    },
    run: work,
  };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = nowMs();
  await fn();
  return nowMs() - t0;
}

async function tarTimed(args: string[]): Promise<number> {
  const r = await runTool('tar', args);
  if (r.code !== 0) throw new Error(`tar ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.ms;
}

async function benchApply(fs: ScratchFs, layer: Layer): Promise<PairResult & { outEntries: [number, number] }> {
  const ours = path.join(fs.mountpoint, 'out-ours');
  const peer = path.join(fs.mountpoint, 'out-tar');
  const r = await pair('apply',
    sideInto('applyLayer', fs, ours, true, () => timed(() => applyLayer(ours, createReadStream(layer.tar, { highWaterMark: INPUT_CHUNK })))),
    sideInto('tar -x', fs, peer, true, () => tarTimed(['-x', ...TAR_X, '-f', layer.tar, '-C', peer])),
    runs);
  const outEntries: [number, number] = [await countEntries(ours), await countEntries(peer)];
  await rmrf(ours);
  await rmrf(peer);
  return { ...r, outEntries };
}

async function benchExport(fs: ScratchFs, layer: Layer): Promise<PairResult & { tarBytes: [number, number] }> {
  const ours = path.join(fs.mountpoint, 'export-ours.tar');
  const peer = path.join(fs.mountpoint, 'export-tar.tar');
  const r = await pair('export',
    sideInto('exportTree', fs, ours, false, () => timed(() => pipeline(exportTree(layer.dir), createWriteStream(ours)))),
    sideInto('tar -c', fs, peer, false, () => tarTimed(['-c', ...TAR_C, '-f', peer, '-C', layer.dir, '.'])),
    runs);
  const tarBytes: [number, number] = [(await fsp.stat(ours)).size, (await fsp.stat(peer)).size];
  await rmrf(ours);
  await rmrf(peer);
  return { ...r, tarBytes };
}

interface BigResult { tarBytes: number; runs: Array<MonitorReport & { ms: number }>; tarXMs: number[];
  oursMedianMs: number; peerMedianMs: number; ratio: number; worstP99Ms: number; worstRssGrowthMiB: number; worstHwmGrowthMiB: number | null }

async function benchBig(fs: ScratchFs, layer: Layer): Promise<BigResult> {
  const bigSrc = path.join(fs.mountpoint, 'bigsrc');
  const tar = path.join(fs.mountpoint, 'big.tar');
  const extra = Math.max(0, bigMiB * MiB - layer.tarBytes);
  await addBigFiles(bigSrc, 'big', extra, 4, seed + 7);
  await mustRun('tar', ['-c', ...TAR_C, '-f', tar, '-C', layer.dir, '.', '-C', bigSrc, 'big']);
  await rmrf(bigSrc);
  const tarBytes = (await fsp.stat(tar)).size;
  log(`big layer: ${(tarBytes / MiB).toFixed(0)} MiB tar`);
  const out = path.join(fs.mountpoint, 'big-out');
  const results: Array<MonitorReport & { ms: number }> = [];
  const tarXMs: number[] = [];
  for (let i = 0; i < bigRuns; i++) {
    const order = i % 2 === 0 ? ['ours', 'tar'] : ['tar', 'ours'];
    for (const side of order) {
      await rmrf(out);
      await fsp.mkdir(out, { mode: 0o755 });
      await fs.sync();
      if (side === 'tar') {
        tarXMs.push(await tarTimed(['-x', ...TAR_X, '-f', tar, '-C', out]));
        log(`  big run ${i + 1}/${bigRuns} tar -x: ${tarXMs[tarXMs.length - 1]!.toFixed(0)} ms`);
        continue;
      }
      const monitor = new Monitor();
      monitor.start();
      const ms = await timed(() => applyLayer(out, createReadStream(tar, { highWaterMark: INPUT_CHUNK })));
      const rep = monitor.stop();
      results.push({ ...rep, ms });
      log(`  big run ${i + 1}/${bigRuns} applyLayer: ${ms.toFixed(0)} ms, loop p99 ${rep.loopP99Ms.toFixed(1)} ms, ` +
        `max ${rep.loopMaxMs.toFixed(1)} ms, rss +${rep.rssGrowthMiB.toFixed(1)} MiB`);
    }
  }
  await rmrf(out);
  await rmrf(tar);
  const oursMedianMs = median(results.map((r) => r.ms));
  const peerMedianMs = median(tarXMs);
  const hwm = results.map((r) => r.hwmGrowthMiB).filter((x): x is number => x !== null);
  return {
    tarBytes, runs: results, tarXMs, oursMedianMs, peerMedianMs, ratio: oursMedianMs / peerMedianMs,
    worstP99Ms: maxOf(results.map((r) => r.loopP99Ms)), worstRssGrowthMiB: maxOf(results.map((r) => r.rssGrowthMiB)),
    worstHwmGrowthMiB: hwm.length > 0 ? maxOf(hwm) : null,
  };
}

interface ChangesResult { variant: string; entriesPerTree: number; sharedInodes: number; changes: number;
  scanDirCalls: number | null; scannedEntries: number | null; times: number[]; medianMs: number; entriesPerSec: number | null }

/**
 * Counts what changesDirs asks of the addon — calls of scanDir/scanTree and the entries they
 * lstat'd — in an untimed run, by wrapping the facade's exports for its duration.
 */
async function countScans(newDir: string, oldDir: string): Promise<{ calls: number; entries: number } | null> {
  type Scan = (p: string, flags: number) => Promise<native.ScanResult>;
  const mod = native as unknown as Record<'scanDir' | 'scanTree', Scan>;
  const originals = { scanDir: mod.scanDir, scanTree: mod.scanTree };
  let calls = 0;
  let seen = 0;
  const counting = (orig: Scan): Scan => async (p, flags) => {
    const r = await orig(p, flags);
    calls++;
    seen += r.names.length;
    return r;
  };
  try {
    mod.scanDir = counting(originals.scanDir);
    mod.scanTree = counting(originals.scanTree);
  } catch {
    return null; // the module's bindings are read-only here: report n/a
  }
  try {
    await changesDirs(newDir, oldDir);
  } finally {
    mod.scanDir = originals.scanDir;
    mod.scanTree = originals.scanTree;
  }
  return { calls, entries: seen };
}

/** Entries of `b` whose path in `a` names the same inode. */
async function sharedInodes(a: string, b: string): Promise<number> {
  const key = (s: native.TreeScan, i: number): string => {
    const F = native.ScanField;
    return `${s.stats[i * F.count + F.inoHigh]}:${s.stats[i * F.count + F.inoLow]}`;
  };
  const paths = (s: native.TreeScan): string[] => {
    const out = new Array<string>(s.names.length);
    for (let i = 0; i < s.names.length; i++) out[i] = s.parents[i]! < 0 ? s.names[i]! : `${out[s.parents[i]!]}/${s.names[i]}`;
    return out;
  };
  const [sa, sb] = await Promise.all([native.scanTree(a, 0), native.scanTree(b, 0)]);
  const inA = new Map<string, string>();
  paths(sa).forEach((p, i) => inA.set(p, key(sa, i)));
  let n = 0;
  paths(sb).forEach((p, i) => { if (inA.get(p) === key(sb, i)) n++; });
  return n;
}

async function benchChanges(fs: ScratchFs): Promise<ChangesResult[]> {
  const base = path.join(fs.mountpoint, 'changes');
  const a = path.join(base, 'a');
  await fsp.mkdir(a, { recursive: true, mode: 0o755 });
  const t0 = nowMs();
  await generateRootfs(a, { entries: changesEntries, bytes: 64 * MiB, medianFile: 512, seed: seed + 100 });
  log(`changes: generated ${changesEntries} entries in ${((nowMs() - t0) / 1000).toFixed(1)} s`);
  const out: ChangesResult[] = [];
  for (const [variant, flags] of [['cp -a (all inodes differ)', '-a'], ['cp -al (hardlink farm)', '-al']] as const) {
    const b = path.join(base, 'b');
    await mustRun('cp', [flags, a, b]);
    await modifyFiles(b, 10, seed + 200);
    const counted = await countScans(b, a);
    const n = (await changesDirs(b, a)).length;
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      await fs.sync();
      times.push(await timed(() => changesDirs(b, a)));
      log(`  changes ${variant} run ${i + 1}/${runs}: ${times[i]!.toFixed(0)} ms`);
    }
    const medianMs = median(times);
    out.push({
      variant, entriesPerTree: await countEntries(a), sharedInodes: await sharedInodes(a, b), changes: n,
      scanDirCalls: counted?.calls ?? null, scannedEntries: counted?.entries ?? null, times, medianMs,
      entriesPerSec: counted === null ? null : counted.entries / (medianMs / 1000),
    });
    await rmrf(b);
  }
  await rmrf(base);
  return out;
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  const tarVersion = execFileSync('tar', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  return { kernel: os.release(), cpus: cpus.length, cpuModel: cpus[0]?.model ?? '', memTotalMiB: Math.round(os.totalmem() / MiB),
    node: process.version, tar: tarVersion, loadavg: os.loadavg().map((x) => round(x, 2)) };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/archive: run as root (chown, mknod, mount)');
  if (!['tmpfs', 'ext4', 'xfs'].includes(fsKind)) throw new Error(`--fs must be tmpfs, ext4 or xfs (got ${fsKind})`);
  const facts = machine();
  const sizeMiB = Math.max(4096, 3 * layerMiB + 2 * bigMiB + 1024);
  const report: Record<string, unknown> = { bench: 'archive', date: new Date().toISOString(), argv: process.argv.slice(2), machine: facts };
  await withScratch(fsKind, sizeMiB, async (fs) => {
    report.fs = { kind: fs.kind, sizeMiB, mount: fs.mountInfo() };
    log(`scratch ${fs.kind} at ${fs.mountpoint}`);
    const rows: Array<Array<string | number>> = [];
    const goals: Array<Array<string | number>> = [];
    let layer: Layer | undefined;
    if (only.has('a') || only.has('b') || only.has('c')) {
      layer = await makeLayer(fs);
      report.layer = { source: layer.source, entries: layer.entries, tarBytes: layer.tarBytes, stats: layer.stats };
    }
    if (layer !== undefined && only.has('a')) {
      const r = await benchApply(fs, layer);
      report.apply = { ...r, goalRatio: 1.0 };
      rows.push([`a) apply ${layer.entries} entries, ${(layer.tarBytes / MiB).toFixed(0)} MiB`, 'applyLayer', r.oursMedianMs, 'tar -x', r.peerMedianMs, r.ratio]);
      goals.push(['apply ratio ours/tar', round(r.ratio, 2), '<= 1.0', r.ratio <= 1 ? 'met' : 'not met']);
    }
    if (layer !== undefined && only.has('b')) {
      const r = await benchExport(fs, layer);
      report.export = { ...r, goalRatio: 1.0 };
      rows.push([`b) export ${layer.entries} entries`, 'exportTree', r.oursMedianMs, 'tar -c', r.peerMedianMs, r.ratio]);
      goals.push(['export ratio ours/tar', round(r.ratio, 2), '<= 1.0', r.ratio <= 1 ? 'met' : 'not met']);
    }
    if (layer !== undefined && only.has('c')) {
      const r = await benchBig(fs, layer);
      report.bigApply = { ...r, goalP99Ms: 10, goalRssGrowthMiB: 64 };
      rows.push([`c) apply ${(r.tarBytes / MiB).toFixed(0)} MiB layer`, 'applyLayer', r.oursMedianMs, 'tar -x', r.peerMedianMs, r.ratio]);
      const p50 = median(r.runs.map((x) => x.loopP50Ms));
      const worstMax = maxOf(r.runs.map((x) => x.loopMaxMs));
      goals.push(['loop delay p50 / p99 / max (ms)', `${p50.toFixed(2)} / ${r.worstP99Ms.toFixed(2)} / ${worstMax.toFixed(1)}`, 'p99 <= 10', r.worstP99Ms <= 10 ? 'met' : 'not met']);
      const growth = r.worstHwmGrowthMiB ?? r.worstRssGrowthMiB;
      goals.push(['RSS growth sampled / peak (MiB)', `${r.worstRssGrowthMiB.toFixed(1)} / ${r.worstHwmGrowthMiB === null ? 'n/a' : r.worstHwmGrowthMiB.toFixed(1)}`, '<= 64', growth <= 64 ? 'met' : 'not met']);
    }
    if (layer !== undefined) {
      await rmrf(layer.dir);
      await rmrf(layer.tar);
    }
    let changes: ChangesResult[] = [];
    if (only.has('d')) {
      changes = await benchChanges(fs);
      report.changes = changes;
    }
    console.log(`\nbench/archive on ${fs.kind}, ${facts.kernel}, ${facts.cpus} CPUs, ${runs} runs (median), ${new Date().toISOString()}\n`);
    if (rows.length > 0) {
      console.log(table(['workload', 'ours', 'ms', 'peer', 'ms', 'ratio'], rows.map((r) => r.map((c) => (typeof c === 'number' ? round(c, 2) : c)))));
      console.log('');
    }
    if (goals.length > 0) {
      console.log(table(['figure', 'value', 'goal', ''], goals));
      console.log('');
    }
    if (changes.length > 0) {
      console.log(table(['d) changesDirs, 10 files differ', 'entries/tree', 'same inode (skipped)', 'changes', 'native scans', 'entries lstat\'d', 'ms', 'scanned/s'],
        changes.map((c) => [c.variant, c.entriesPerTree, c.sharedInodes, c.changes, c.scanDirCalls ?? 'n/a', c.scannedEntries ?? 'n/a',
          round(c.medianMs, 1), c.entriesPerSec === null ? 'n/a' : Math.round(c.entriesPerSec)])));
      console.log('');
    }
  });
  report.loadavgEnd = os.loadavg().map((x) => round(x, 2));
  console.log(JSON.stringify(report));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
