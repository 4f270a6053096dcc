// btrfs-create.ts: layer create on btrfs through the driver against the bare ioctl from a
// minimal C program, in the same run on the same loop-device btrfs. Two workloads:
//   snapshot  driver.create(id, parent)  vs  ioctl(dirfd, BTRFS_IOC_SNAP_CREATE_V2) in a loop
//   subvolume driver.create(id)          vs  ioctl(dirfd, BTRFS_IOC_SUBVOL_CREATE) in a loop
// The C program is compiled with `cc` into a temp dir at bench time and times each ioctl with
// clock_gettime(CLOCK_MONOTONIC). Batches alternate (C, driver, C, driver, ...) so drift in the
// filesystem (it fills with subvolumes) hits both sides alike. Prints a table and one JSON line
// with per-op medians (µs) and the ratio driver/raw (goal <= 1.2).
// Run as root: `npm run bench:btrfs` (env BENCH_N = creates per side per workload, default 200).
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { getDriver } from '../lib/index';
import { type BtrfsFs, btrfsUnavailable, makeBtrfs } from '../test/helpers/btrfs-fs';

const C_SOURCE = String.raw`
#include <fcntl.h>
#include <linux/btrfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
/* usage: raw snap|subvol DIR SRC PREFIX COUNT -> one line per ioctl: nanoseconds */
int main(int argc, char **argv) {
  if (argc != 6) return 2;
  int snap = strcmp(argv[1], "snap") == 0;
  int dir = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int src = snap ? open(argv[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (dir < 0 || (snap && src < 0)) { perror("open"); return 1; }
  int n = atoi(argv[5]);
  for (int i = 0; i < n; i++) {
    struct timespec a, b;
    int r;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (snap) {
      struct btrfs_ioctl_vol_args_v2 args;
      memset(&args, 0, sizeof(args));
      args.fd = src;
      snprintf(args.name, sizeof(args.name), "%s%d", argv[4], i);
      r = ioctl(dir, BTRFS_IOC_SNAP_CREATE_V2, &args);
    } else {
      struct btrfs_ioctl_vol_args args;
      memset(&args, 0, sizeof(args));
      snprintf(args.name, sizeof(args.name), "%s%d", argv[4], i);
      r = ioctl(dir, BTRFS_IOC_SUBVOL_CREATE, &args);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (r != 0) { perror("ioctl"); return 1; }
    printf("%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
  }
  return 0;
}
`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Row { workload: string; n: number; rawMedianUs: number; driverMedianUs: number; ratio: number }

async function main(): Promise<void> {
  const why = btrfsUnavailable();
  if (why !== undefined) {
    console.error(`bench/btrfs-create: skipped: ${why}`);
    process.exitCode = 2;
    return;
  }
  const n = Number(process.env.BENCH_N ?? 200);
  const batches = 5;
  const per = Math.max(1, Math.floor(n / batches));
  let fs: BtrfsFs | undefined;
  try {
    fs = await makeBtrfs(2048);
    const work = await fsp.mkdir(path.join(fs.tmp.path, 'cc'), { recursive: true }).then(() => path.join(fs!.tmp.path, 'cc'));
    await fsp.writeFile(path.join(work, 'raw.c'), C_SOURCE);
    const exe = path.join(work, 'raw');
    execFileSync('cc', ['-O2', '-Wall', '-o', exe, path.join(work, 'raw.c')], { stdio: 'inherit' });

    const driver = await getDriver('btrfs', path.join(fs.mountpoint, 'root'), []);
    const rawDir = path.join(fs.mountpoint, 'raw');
    await fsp.mkdir(rawDir);
    // The parent: a layer with some content, used by both sides as the snapshot source.
    await driver.create('parent');
    const parentPath = await driver.get('parent');
    for (let i = 0; i < 200; i++) await fsp.writeFile(path.join(parentPath, `f${i}`), Buffer.alloc(4096, i));
    await driver.put('parent');

    const rows: Row[] = [];
    for (const workload of ['snapshot', 'subvolume'] as const) {
      const raw: number[] = [];
      const drv: number[] = [];
      for (let b = 0; b < batches; b++) {
        const out = execFileSync(exe, [workload === 'snapshot' ? 'snap' : 'subvol', rawDir, parentPath,
          `${workload}-${b}-`, String(per)], { encoding: 'utf8' });
        raw.push(...out.trim().split('\n').map((l) => Number(l) / 1000));
        for (let i = 0; i < per; i++) {
          const t0 = process.hrtime.bigint();
          await driver.create(`${workload}-${b}-${i}`, workload === 'snapshot' ? 'parent' : undefined);
          drv.push(Number(process.hrtime.bigint() - t0) / 1000);
        }
      }
      const rawMedianUs = median(raw);
      const driverMedianUs = median(drv);
      rows.push({ workload, n: drv.length, rawMedianUs, driverMedianUs, ratio: driverMedianUs / rawMedianUs });
    }
    await driver.cleanup();

    console.log('workload    n     raw ioctl (µs)  driver.create (µs)  ratio');
    for (const r of rows) {
      console.log(`${r.workload.padEnd(10)}  ${String(r.n).padEnd(4)}  ${r.rawMedianUs.toFixed(1).padStart(14)}  ` +
        `${r.driverMedianUs.toFixed(1).padStart(18)}  ${r.ratio.toFixed(2)}x`);
    }
    console.log(JSON.stringify({ bench: 'btrfs-create', kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
      node: process.version, goalRatio: 1.2, rows }));
  } finally {
    await fs?.teardown();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
