// overlay2-getput.ts: get/put of an overlay2 layer with 1, 20 and 499 lower layers through the
// driver against the same mount done with raw syscalls from a minimal C program, in the same
// run on the same layers (499 is the deepest mount overlay2 makes: see DEPTHS):
//   driver  get(top) = mkdir merged + statfs checks + fsopen/fsconfig(lowerdir+ per lower,
//           upperdir, workdir, feature options)/CMD_CREATE/fsmount/move_mount; put(top) = umount2(MNT_DETACH)
//   raw C   fsopen("overlay"), fsconfig(source), fsconfig(lowerdir+) per lower, fsconfig of each
//           option, FSCONFIG_CMD_CREATE, fsmount, move_mount, close; then umount2(MNT_DETACH)
// The C side gets exactly the lowerdirs and options of the driver's own mount spec (overlay2's
// layerMount), so both make the same mount. It is compiled with `cc` into a temp dir at bench
// time and times each get and put with clock_gettime(CLOCK_MONOTONIC). Rounds alternate which
// side goes first; each round does OPS get/put pairs per side. Prints a table, then one JSON
// line with medians (µs) and ratios driver/raw (goal <= 1.2).
// Run as root: `npm run bench:overlay2` (env BENCH_ROUNDS, default 30 (>= 20); BENCH_OPS, default 5;
// `--fs=tmpfs|ext4|xfs`, default tmpfs).
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { getDriver } from '../lib/index';
import { layerMount } from '../lib/drivers/overlay2/mounts';
import { overlayFeatures } from '../lib/drivers/overlay-common/check';
import { splitOption, unquote } from '../lib/mount/spec';
import { type ScratchKind, makeScratch, type ScratchFs } from './lib/scratch-fs';
import { median, round, table } from './lib/stats';

const C_SOURCE = String.raw`
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#define GD_FSOPEN_CLOEXEC 1u
#define GD_FSCONFIG_SET_FLAG 0u
#define GD_FSCONFIG_SET_STRING 1u
#define GD_FSCONFIG_CMD_CREATE 6u
#define GD_FSMOUNT_CLOEXEC 1u
#define GD_MOVE_MOUNT_F_EMPTY_PATH 0x4u
static long long ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static void die(const char *what) { perror(what); exit(1); }
/* usage: raw TARGET LOWERS_FILE OPS MOUNT_ATTRS [key=value|flag ...] -> one line per op: get_ns put_ns */
int main(int argc, char **argv) {
  if (argc < 5) return 2;
  const char *target = argv[1];
  FILE *f = fopen(argv[2], "r");
  if (!f) die("fopen");
  static char lowers[512][4096];
  int n = 0;
  while (n < 512 && fgets(lowers[n], sizeof lowers[n], f)) { lowers[n][strcspn(lowers[n], "\n")] = 0; if (lowers[n][0]) n++; }
  fclose(f);
  int ops = atoi(argv[3]);
  unsigned attrs = (unsigned)strtoul(argv[4], NULL, 0);
  for (int i = 0; i < ops; i++) {
    long long a = ns();
    int fd = syscall(SYS_fsopen, "overlay", GD_FSOPEN_CLOEXEC);
    if (fd < 0) die("fsopen");
    if (syscall(SYS_fsconfig, fd, GD_FSCONFIG_SET_STRING, "source", "overlay", 0)) die("fsconfig source");
    for (int k = 0; k < n; k++) if (syscall(SYS_fsconfig, fd, GD_FSCONFIG_SET_STRING, "lowerdir+", lowers[k], 0)) die("fsconfig lowerdir+");
    for (int k = 5; k < argc; k++) {
      char *eq = strchr(argv[k], '=');
      if (eq) { *eq = 0; if (syscall(SYS_fsconfig, fd, GD_FSCONFIG_SET_STRING, argv[k], eq + 1, 0)) die(argv[k]); *eq = '='; }
      else if (syscall(SYS_fsconfig, fd, GD_FSCONFIG_SET_FLAG, argv[k], NULL, 0)) die(argv[k]);
    }
    if (syscall(SYS_fsconfig, fd, GD_FSCONFIG_CMD_CREATE, NULL, NULL, 0)) die("fsconfig create");
    int mfd = syscall(SYS_fsmount, fd, GD_FSMOUNT_CLOEXEC, attrs);
    if (mfd < 0) die("fsmount");
    if (syscall(SYS_move_mount, mfd, "", AT_FDCWD, target, GD_MOVE_MOUNT_F_EMPTY_PATH)) die("move_mount");
    close(mfd);
    close(fd);
    long long b = ns();
    if (umount2(target, MNT_DETACH)) die("umount2");
    long long c = ns();
    printf("%lld %lld\n", b - a, c - b);
  }
  return 0;
}
`;

// 499 is the deepest mount overlay2 makes: a chain holds at most 500 layers (the kernel stacks
// 500 lower dirs, and a committed layer mounts its own diff as one more lower), so its top has 499.
const DEPTHS = [1, 20, 499] as const;

interface Row {
  lowers: number; mode: string; samples: number;
  rawGetUs: number; driverGetUs: number; getRatio: number;
  rawPutUs: number; driverPutUs: number; putRatio: number;
}

function arg(name: string): string | undefined {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? undefined : a.slice(name.length + 3);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench/overlay2-getput: skipped: needs root (mounts overlayfs)');
    process.exitCode = 2;
    return;
  }
  const rounds = Math.max(20, Number(process.env.BENCH_ROUNDS ?? 30));
  const ops = Math.max(1, Number(process.env.BENCH_OPS ?? 5));
  const kind = (arg('fs') ?? 'tmpfs') as ScratchKind;
  let scratch: ScratchFs | undefined;
  try {
    scratch = await makeScratch(kind, 1024);
    const work = path.join(scratch.mountpoint, 'cc');
    await fsp.mkdir(work);
    await fsp.writeFile(path.join(work, 'raw.c'), C_SOURCE);
    const exe = path.join(work, 'raw');
    execFileSync('cc', ['-O2', '-Wall', '-o', exe, path.join(work, 'raw.c')], { stdio: 'inherit' });

    const rootDir = path.join(scratch.mountpoint, 'root');
    const driver = await getDriver('overlay2', rootDir, []);
    const home = path.join(rootDir, 'overlay2');
    const rows: Row[] = [];
    try {
      // One chain: layer-k has k lowers; each measured layer is a leaf top-<n> on layer-<n-1>,
      // mounted read-write (upperdir + workdir) over n lowers, as a container's layer is.
      let parent = '';
      for (let i = 0; i < Math.max(...DEPTHS); i++) {
        await driver.create(`layer-${i}`, parent);
        parent = `layer-${i}`;
      }
      for (const depth of DEPTHS) {
        const committed = false;
        const top = `top-${depth}`;
        await driver.create(top, `layer-${depth - 1}`);
        const lower = (await fsp.readFile(path.join(home, 'layers', top, 'lower'), 'utf8')).trim().split(':');
        const short = (await fsp.readFile(path.join(home, 'layers', top, 'link'), 'utf8')).trim();
        const spec = layerMount(home, { id: top, short, lowers: lower, committed }, overlayFeatures());
        if (spec === null || spec.lowerdirs?.length !== depth) throw new Error(`unexpected spec for ${top}`);
        const lowersFile = path.join(work, `lowers-${depth}`);
        await fsp.writeFile(lowersFile, `${spec.lowerdirs.join('\n')}\n`);
        const cOptions = spec.options.map((o) => {
          const [k, v] = splitOption(o);
          return v === undefined ? k : `${k}=${unquote(v)}`;
        });
        // As mount/apply.ts does for MS_RDONLY: the `ro` flag and MOUNT_ATTR_RDONLY (0x1).
        if (committed) cOptions.push('ro');
        const attrs = committed ? '1' : '0';
        const raw = { get: [] as number[], put: [] as number[] };
        const drv = { get: [] as number[], put: [] as number[] };
        const runRaw = (): void => {
          const out = execFileSync(exe, [spec.target, lowersFile, String(ops), attrs, ...cOptions], { encoding: 'utf8' });
          for (const line of out.trim().split('\n')) {
            const [g, p] = line.split(' ').map((x) => Number(x) / 1000) as [number, number];
            raw.get.push(g);
            raw.put.push(p);
          }
        };
        const runDriver = async (): Promise<void> => {
          for (let i = 0; i < ops; i++) {
            const t0 = process.hrtime.bigint();
            await driver.get(top);
            const t1 = process.hrtime.bigint();
            await driver.put(top);
            const t2 = process.hrtime.bigint();
            drv.get.push(Number(t1 - t0) / 1000);
            drv.put.push(Number(t2 - t1) / 1000);
          }
        };
        // Warm-up (not counted): the first mount of a stack pays for dentry lookups.
        await runDriver();
        runRaw();
        raw.get.length = raw.put.length = drv.get.length = drv.put.length = 0;
        for (let r = 0; r < rounds; r++) {
          if (r % 2 === 0) { runRaw(); await runDriver(); } else { await runDriver(); runRaw(); }
        }
        const row: Row = {
          lowers: depth, mode: committed ? 'ro' : 'rw', samples: drv.get.length,
          rawGetUs: median(raw.get), driverGetUs: median(drv.get), getRatio: median(drv.get) / median(raw.get),
          rawPutUs: median(raw.put), driverPutUs: median(drv.put), putRatio: median(drv.put) / median(raw.put),
        };
        rows.push(row);
        process.stderr.write(`  ${depth} lowers: get ${row.driverGetUs.toFixed(0)} vs ${row.rawGetUs.toFixed(0)} µs\n`);
      }
    } finally {
      await driver.cleanup();
    }
    console.log(table(
      ['lowers', 'mode', 'samples', 'raw get µs', 'driver get µs', 'get ratio', 'raw put µs', 'driver put µs', 'put ratio'],
      rows.map((r) => [r.lowers, r.mode, r.samples, r.rawGetUs, r.driverGetUs, r.getRatio, r.rawPutUs, r.driverPutUs, r.putRatio]),
    ));
    console.log(JSON.stringify({
      bench: 'overlay2-getput', fs: kind, kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(), node: process.version,
      rounds, opsPerRound: ops, goalRatio: 1.2,
      rows: rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v]))),
    }));
  } finally {
    await scratch?.teardown();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
