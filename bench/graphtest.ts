// graphtest.ts: the Docker engine's graphtest benchmarks (daemon/graphdriver/graphtest/
// graphbench_unix.go) through this library, per driver the machine offers: vfs, overlay and
// overlay2 on a tmpfs scratch filesystem, btrfs on a loop-device btrfs, aufs and devicemapper
// when they init (otherwise skipped with the init error's message). Workloads: Exists,
// GetEmpty, DiffBase, DiffN (10/10, 10/10000, 10000/10), DiffApply100, Diff20Layers,
// Read20Layers. Each reports ns/op as the median over BENCH_REPS repetitions (default 5) of
// a loop whose length is calibrated to ≈ BENCH_REP_MS (default 150 ms). There is no peer:
// these are the figures to put beside the engine's own `go test -bench` output.
// Prints a table and writes bench/results.json ({date, machine, results}, overwritten).
// Every scratch filesystem is torn down at the end, on failure and on Ctrl-C (scratch-fs).
// Run as root: `npm run bench`.
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Driver, getDriver } from '../lib/index';
import { btrfsUnavailable } from '../test/helpers/btrfs-fs';
import { type ScratchKind, makeScratch, type ScratchFs } from './lib/scratch-fs';
import { Prng } from './lib/tree-gen';
import { maxOf, median, minOf, table } from './lib/stats';

const REPS = Math.max(1, Number(process.env.BENCH_REPS ?? 5));
const REP_MS = Math.max(10, Number(process.env.BENCH_REP_MS ?? 150));
const MAX_N = 100_000;
const RESULTS = path.join(__dirname, '..', '..', 'bench', 'results.json');

/** A prepared workload: `op` is timed; `prep` (before each op) and `afterRep` are not. */
interface Bench {
  op(i: number): Promise<void>;
  prep?(i: number): Promise<void>;
  afterRep?(): Promise<void>;
}

interface Workload { name: string; setup(d: Driver): Promise<Bench> }

interface WorkloadResult {
  name: string;
  nsPerOp?: number;
  ops?: number;
  perRep?: number;
  repNsPerOp?: number[];
  error?: string;
}

interface DriverResult { driver: string; fs: ScratchKind; skipped?: string; workloads: WorkloadResult[] }

// ---- layer contents, as graphtest's helpers write them ----

function randomContent(size: number, seed: number): Buffer {
  const prng = new Prng(seed);
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = prng.u32() & 0xff;
  return b;
}

async function withLayer(d: Driver, id: string, fn: (root: string) => Promise<void>): Promise<void> {
  const root = await d.get(id);
  try { await fn(root); } finally { await d.put(id); }
}

/** graphtest addFiles: file-a (64 B), dir-b/file-b (128 B), file-c (16 KiB). */
function addFiles(d: Driver, id: string, seed: number): Promise<void> {
  return withLayer(d, id, async (root) => {
    await fsp.writeFile(path.join(root, 'file-a'), randomContent(64, seed), { mode: 0o755 });
    await fsp.mkdir(path.join(root, 'dir-b'), { mode: 0o755 });
    await fsp.writeFile(path.join(root, 'dir-b', 'file-b'), randomContent(128, seed + 1), { mode: 0o755 });
    await fsp.writeFile(path.join(root, 'file-c'), randomContent(128 * 128, seed + 2), { mode: 0o755 });
  });
}

/** graphtest addManyFiles: `count` files of 64 B, 100 per directory-N/file-M. */
function addManyFiles(d: Driver, id: string, count: number, seed: number): Promise<void> {
  return withLayer(d, id, async (root) => {
    for (let i = 0; i < count; i += 100) {
      const dir = path.join(root, `directory-${i}`);
      await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
      const files: Array<Promise<void>> = [];
      for (let j = 0; i + j < count && j < 100; j++) {
        files.push(fsp.writeFile(path.join(dir, `file-${j}`), randomContent(64, seed + i + j), { mode: 0o755 }));
      }
      await Promise.all(files);
    }
  });
}

/** graphtest addManyLayers/addLayerFiles: `count` layers on `base`, each writing top-id and layer-N/{layer-id,parent-id}. */
async function addManyLayers(d: Driver, base: string, count: number): Promise<string> {
  let last = base;
  for (let i = 1; i <= count; i++) {
    const id = `${base}-l${i}`;
    await d.create(id, last);
    const parent = last;
    await withLayer(d, id, async (root) => {
      await fsp.writeFile(path.join(root, 'top-id'), id, { mode: 0o755 });
      await fsp.mkdir(path.join(root, `layer-${i}`), { recursive: true, mode: 0o755 });
      await fsp.writeFile(path.join(root, `layer-${i}`, 'layer-id'), id, { mode: 0o755 });
      await fsp.writeFile(path.join(root, `layer-${i}`, 'parent-id'), parent, { mode: 0o755 });
    });
    last = id;
  }
  return last;
}

async function drain(s: NodeJS.ReadableStream): Promise<number> {
  let n = 0;
  for await (const chunk of s) n += chunk.length;
  return n;
}

// ---- the workloads ----

function diffN(bottom: number, top: number): Workload {
  return {
    name: `DiffN ${bottom}/${top}`,
    async setup(d) {
      const base = `diffn-${bottom}-${top}`;
      const upper = `${base}-upper`;
      await d.create(base);
      await addManyFiles(d, base, bottom, 3);
      await d.create(upper, base);
      await addManyFiles(d, upper, top, 6);
      return { op: async () => { await drain(await d.diff(upper, base)); } };
    },
  };
}

const WORKLOADS: Workload[] = [
  {
    name: 'Exists',
    async setup(d) {
      await d.create('exists');
      return { op: async () => { if (!(await d.exists('exists'))) throw new Error('exists() returned false'); } };
    },
  },
  {
    name: 'GetEmpty',
    async setup(d) {
      await d.create('getempty');
      return { op: async () => { await d.get('getempty'); await d.put('getempty'); } };
    },
  },
  {
    name: 'DiffBase',
    async setup(d) {
      await d.create('diffbase');
      await addFiles(d, 'diffbase', 3);
      return { op: async () => { await drain(await d.diff('diffbase', '')); } };
    },
  },
  diffN(10, 10),
  diffN(10, 10_000),
  diffN(10_000, 10),
  {
    name: 'DiffApply100',
    async setup(d) {
      const base = 'diffapply';
      const upper = `${base}-upper`;
      await d.create(base);
      await addManyFiles(d, base, 100, 3);
      await d.create(upper, base);
      await addManyFiles(d, upper, 100, 6);
      const want = await d.diffSize(upper, base);
      let seq = 0;
      let pending: NodeJS.ReadableStream | undefined;
      let child = '';
      const made: string[] = [];
      return {
        async prep() {
          child = `${base}-child${seq++}`;
          await d.create(child, base);
          made.push(child);
          pending = await d.diff(upper, base);
        },
        async op() {
          const got = await d.applyDiff(child, base, pending!);
          if (got !== want) throw new Error(`applyDiff wrote ${got} bytes, diffSize(upper, base) is ${want}`);
        },
        async afterRep() { for (const id of made.splice(0)) await d.remove(id); },
      };
    },
  },
  {
    name: 'Diff20Layers',
    async setup(d) {
      await d.create('deepdiff');
      await addFiles(d, 'deepdiff', 50);
      const top = await addManyLayers(d, 'deepdiff', 20);
      return { op: async () => { await drain(await d.diff(top, '')); } };
    },
  },
  {
    name: 'Read20Layers',
    async setup(d) {
      const content = Buffer.from('test content');
      await d.create('deepread');
      await withLayer(d, 'deepread', (root) => fsp.writeFile(path.join(root, 'testfile.txt'), content, { mode: 0o755 }));
      const top = await addManyLayers(d, 'deepread', 20);
      return {
        async op() {
          const root = await d.get(top);
          try {
            const got = await fsp.readFile(path.join(root, 'testfile.txt'));
            if (!got.equals(content)) throw new Error('testfile.txt read back different content');
          } finally { await d.put(top); }
        },
      };
    },
  },
];

// ---- timing ----

/** Runs `n` ops; returns the timed nanoseconds (only `op`, when there is a `prep`). */
async function timeOps(b: Bench, n: number, from: number): Promise<number> {
  if (b.prep === undefined) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await b.op(from + i);
    return Number(process.hrtime.bigint() - t0);
  }
  let ns = 0;
  for (let i = 0; i < n; i++) {
    await b.prep(from + i);
    const t0 = process.hrtime.bigint();
    await b.op(from + i);
    ns += Number(process.hrtime.bigint() - t0);
  }
  return ns;
}

const gc = (globalThis as { gc?: () => void }).gc;

async function measure(d: Driver, w: Workload): Promise<WorkloadResult> {
  try {
    const b = await w.setup(d);
    // Calibrate: a few warm-up ops, the fastest sets the loop length.
    const warm: number[] = [];
    for (let i = 0; i < 3; i++) warm.push(await timeOps(b, 1, -1 - i));
    await b.afterRep?.();
    const n = Math.min(MAX_N, Math.max(1, Math.round((REP_MS * 1e6) / Math.max(1, minOf(warm)))));
    const reps: number[] = [];
    for (let r = 0; r < REPS; r++) {
      gc?.();
      reps.push((await timeOps(b, n, r * n)) / n);
      await b.afterRep?.();
    }
    const res: WorkloadResult = { name: w.name, nsPerOp: Math.round(median(reps)), ops: n * REPS, perRep: n, repNsPerOp: reps.map(Math.round) };
    process.stderr.write(`  ${w.name}: ${res.nsPerOp} ns/op (${n} ops x ${REPS})\n`);
    return res;
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    process.stderr.write(`  ${w.name}: FAILED: ${error}\n`);
    return { name: w.name, error };
  }
}

async function benchDriver(name: string, kind: ScratchKind): Promise<DriverResult> {
  const out: DriverResult = { driver: name, fs: kind, workloads: [] };
  if (kind === 'btrfs') {
    const why = btrfsUnavailable();
    if (why !== undefined) return { ...out, skipped: why };
  }
  let fs: ScratchFs | undefined;
  let driver: Driver | undefined;
  try {
    try {
      fs = await makeScratch(kind, kind === 'btrfs' ? 1024 : 2048);
    } catch (e) {
      return { ...out, skipped: `scratch ${kind}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}` };
    }
    try {
      driver = await getDriver(name, path.join(fs.mountpoint, 'root'), []);
    } catch (e) {
      return { ...out, skipped: e instanceof Error ? e.message : String(e) };
    }
    process.stderr.write(`${name} on ${kind}:\n`);
    for (const w of WORKLOADS) out.workloads.push(await measure(driver, w));
    return out;
  } finally {
    await driver?.cleanup().catch((e: unknown) => process.stderr.write(`${name}: cleanup: ${String(e)}\n`));
    await fs?.teardown();
  }
}

function machine(): Record<string, string | number | number[]> {
  const cpus = os.cpus();
  return {
    kernel: os.release(), node: process.version, cpus: cpus.length, cpuModel: cpus[0]?.model ?? '',
    memGiB: Math.round(os.totalmem() / 2 ** 30), loadavgStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

async function main(): Promise<void> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    console.error('bench/graphtest: needs root (mounts)');
    process.exitCode = 2;
    return;
  }
  const date = new Date().toISOString();
  const mach = machine();
  const plan: Array<[string, ScratchKind]> = [
    ['vfs', 'tmpfs'], ['overlay', 'tmpfs'], ['overlay2', 'tmpfs'], ['btrfs', 'btrfs'], ['aufs', 'tmpfs'], ['devicemapper', 'tmpfs'],
  ];
  const results: DriverResult[] = [];
  for (const [name, kind] of plan) results.push(await benchDriver(name, kind));
  mach.loadavgEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);

  const rows: Array<Array<string | number>> = [];
  for (const r of results) {
    for (const w of r.workloads) {
      if (w.error !== undefined) rows.push([r.driver, w.name, 'failed', '', '', '']);
      else rows.push([r.driver, w.name, w.nsPerOp!, w.ops!, Math.round(minOf(w.repNsPerOp!)), Math.round(maxOf(w.repNsPerOp!))]);
    }
  }
  console.log(`\nbench/graphtest ${date}, kernel ${String(mach.kernel)}, ${String(mach.cpus)} CPUs, node ${process.version}, ` +
    `load ${(mach.loadavgStart as number[])[0]} -> ${(mach.loadavgEnd as number[])[0]}, median of ${REPS} reps\n`);
  console.log(table(['driver', 'workload', 'ns/op', 'ops', 'min rep', 'max rep'], rows));
  for (const r of results) if (r.skipped !== undefined) console.log(`${r.driver}: skipped: ${r.skipped}`);
  for (const r of results) for (const w of r.workloads) if (w.error !== undefined) console.log(`${r.driver} ${w.name}: failed: ${w.error}`);
  try {
    mach.git = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: 'pipe' }).trim();
  } catch { /* not a checkout */ }
  await fsp.writeFile(RESULTS, JSON.stringify({ date, machine: mach, reps: REPS, repMs: REP_MS, results }, null, 2) + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), RESULTS) || RESULTS}`);
  if (results.some((r) => r.workloads.some((w) => w.error !== undefined))) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
