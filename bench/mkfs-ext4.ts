// mkfs-ext4.ts: `npm run bench:mkfs` — making the devicemapper base filesystem in-process
// (native mkfsExt4, libext2fs) beside `mkfs.ext4` on the same sparse image, alternating,
// medians. Each run gets a fresh sparse file (untimed). Two workloads, the same work each side:
//   nodiscard  mkfsExt4(img, { discard: false, lazyItableInit: true })
//              vs mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=1 img
//   discard    mkfsExt4(img)   (defaults: discard, lazy inode tables)
//              vs mkfs.ext4 -q -F img   (its defaults: the same; on a file, discard punches holes,
//              which read back as zeroes, so neither side writes inode tables)
// Both sides make the same filesystem (mkfs-ext4.test compares their superblocks). The peer is
// timed by a small C program compiled at bench time (clock_gettime(CLOCK_MONOTONIC) around
// fork + execvp + waitpid), so Node's own spawn cost is not charged to it; the figure still
// includes exec and dynamic linking of mke2fs, which is what running mkfs costs. The same timer
// around `true` gives the bare fork+exec floor, printed so the ratio can be read net of it too.
// Options: --runs N (default 20), --size-gib N (10), --fs tmpfs|ext4|xfs (scratch filesystem the
// image lives on; default tmpfs, so the shared disk's writeback does not swamp the figures).
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { mkfsExt4, type MkfsExt4Options } from '../lib/native';
import { withScratch, type ScratchKind } from './lib/scratch-fs';
import { median, nowMs, pair, round, runTool, table, type PairResult } from './lib/stats';

const TIMER_C = String.raw`
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
/* usage: spawntime CMD [ARGS...] -> nanoseconds from fork to waitpid; exits with CMD's status */
int main(int argc, char **argv) {
  struct timespec a, b;
  int status = 0;
  if (argc < 2) return 2;
  clock_gettime(CLOCK_MONOTONIC, &a);
  pid_t pid = fork();
  if (pid == 0) { execvp(argv[1], argv + 1); _exit(127); }
  if (pid < 0 || waitpid(pid, &status, 0) < 0) { perror("spawn"); return 1; }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
`;

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    'size-gib': { type: 'string', default: '10' },
    fs: { type: 'string', default: 'tmpfs' },
  },
});

interface Workload { name: string; ours: MkfsExt4Options; peerArgs: string[] }

const WORKLOADS: Workload[] = [
  { name: 'nodiscard', ours: { discard: false, lazyItableInit: true }, peerArgs: ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=1'] },
  { name: 'discard', ours: {}, peerArgs: ['-q', '-F'] },
];

async function main(): Promise<void> {
  const kind = opts.fs as ScratchKind;
  const runs = Math.max(1, Number(opts.runs));
  const sizeGiB = Number(opts['size-gib']);
  const bytes = sizeGiB * 2 ** 30;
  // A few journals' worth of real data lands in the image; the rest stays sparse.
  await withScratch(kind, Math.max(2048, sizeGiB * 1024 + 1024), async (scratch) => {
    const img = `${scratch.mountpoint}/base.img`;
    const fresh = async (): Promise<void> => {
      await fsp.rm(img, { force: true });
      const fh = await fsp.open(img, 'w', 0o600);
      await fh.truncate(bytes);
      await fh.close();
      await scratch.sync();
    };
    await fsp.writeFile(`${scratch.mountpoint}/spawntime.c`, TIMER_C);
    const timer = `${scratch.mountpoint}/spawntime`;
    execFileSync('cc', ['-O2', '-Wall', '-o', timer, `${scratch.mountpoint}/spawntime.c`], { stdio: 'inherit' });
    const timed = async (cmd: string, args: string[]): Promise<number> => {
      const r = await runTool(timer, [cmd, ...args]);
      if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return Number(r.stdout.trim()) / 1e6;
    };
    // fork + exec + wait of a program that does nothing: what the peer pays before mkfs starts.
    const floor: number[] = [];
    for (let i = 0; i < Math.max(5, runs); i++) floor.push(await timed('true', []));
    const spawnFloorMs = median(floor);

    const results: Array<{ workload: Workload; result: PairResult }> = [];
    for (const w of WORKLOADS) {
      const result = await pair(`mkfs ${w.name}`,
        {
          name: 'mkfsExt4',
          prepare: fresh,
          run: async () => {
            const t = nowMs();
            await mkfsExt4(img, w.ours);
            return nowMs() - t;
          },
        },
        {
          name: 'mkfs.ext4',
          prepare: fresh,
          run: () => timed('mkfs.ext4', [...w.peerArgs, img]),
        }, runs);
      results.push({ workload: w, result });
    }
    await fsp.rm(img, { force: true });

    process.stdout.write(`\nbench/mkfs-ext4: ${sizeGiB} GiB sparse image on ${kind}, ${os.release()}, ${os.cpus().length} CPUs, ` +
      `${runs} runs (median), spawn floor ${round(spawnFloorMs, 2)} ms, ${new Date().toISOString()}\n\n`);
    process.stdout.write(table(['workload', 'mkfsExt4 ms', 'mkfs.ext4 ms', 'ratio', 'mkfs.ext4 - spawn ms', 'ratio net'],
      results.map(({ workload, result }) => [
        `${workload.name} (mkfs.ext4 ${workload.peerArgs.join(' ')})`, round(result.oursMedianMs, 2), round(result.peerMedianMs, 2),
        round(result.ratio, 3), round(result.peerMedianMs - spawnFloorMs, 2), round(result.oursMedianMs / (result.peerMedianMs - spawnFloorMs), 3),
      ])) + '\n\n');
    process.stdout.write(JSON.stringify({
      bench: 'mkfs-ext4', fs: kind, sizeGiB, kernel: os.release(), node: process.version, loadavg: os.loadavg(), runs,
      spawnFloorMs: round(spawnFloorMs, 3),
      rows: results.map(({ workload, result }) => ({
        workload: workload.name, oursOptions: workload.ours, peerArgs: workload.peerArgs,
        oursMedianMs: round(result.oursMedianMs), peerMedianMs: round(result.peerMedianMs), ratio: round(result.ratio),
        ratioNetOfSpawn: round(result.oursMedianMs / (result.peerMedianMs - spawnFloorMs)),
      })),
    }) + '\n');
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/mkfs-ext4: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
