// devicemapper.ts: the devicemapper driver's layer operations against the same kernel calls made
// by a minimal C program (struct dm_ioctl v4 on /dev/mapper/control, nothing around it: the
// lower bound of any engine, the Docker engine's libdevmapper path included), side by side in
// one run, on one thin pool (the driver's own):
//   create   driver.create(id, 'parent')   vs  DM_TARGET_MSG 'create_snap <new> <origin>' +
//                                              'set_transaction_id <t> <t+1>'
//   get/put  driver.get(id), driver.put(id) vs  DM_DEV_CREATE + DM_TABLE_LOAD (thin) + resume +
//                                              mount(/dev/dm-N, ext4, "discard"); then
//                                              umount2(MNT_DETACH) + DM_DEV_REMOVE
//   remove   driver.remove(id) (dm.blkdiscard on, the loopback default)
//                                          vs  activate + BLKDISCARD (whole device) + DM_DEV_REMOVE
//                                              + 'delete <id>' + 'set_transaction_id <t> <t+1>'
// The peer works on thin ids of its own (PEER_THIN_BASE and up, far from the driver's) in the
// driver's pool, snapshots of the same origin (the driver's layer 'parent', a snapshot of the
// base with a few files). Before a remove, each side's layer has been mounted once (untimed), as
// any layer that got a diff has. The peer is compiled with gcc into the bench's temp dir at bench
// time and runs as a co-process: one command per line on stdin, the nanoseconds of its timed
// part (clock_gettime(CLOCK_MONOTONIC)) per line on stdout. Runs alternate which side goes first;
// one warm-up pair per workload is dropped. Prints a table, then one JSON line with medians (µs),
// ratios ours/peer and every run's time. Never asserts on time. Also reported once, for
// information: the first getDriver on the empty root (loops, pool, base mkfs) and getDriver on
// the existing home (pool reuse).
//
// Runs only in the VM of test/vm/ (device-mapper, a real ext4 disk as VM_SCRATCH); it refuses
// elsewhere. `npm run bench:devicemapper -- --runs 15` (builds, boots the VM, runs this there).
// Everything lives in one temp dir under VM_SCRATCH, removed at the end, on failure and on
// SIGINT/SIGTERM, after the peer's devices and thin ids and the driver's pool are gone.
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { dm } from '../lib/devmapper';
import { type Driver, getDriver } from '../lib/index';
import { removeDmDevicesOf } from '../test/helpers/driver-root';
import { unmountAllUnder } from '../test/helpers/tmp';
import { median, round, table } from './lib/stats';

/** Small and sparse: quick to make in the VM, plenty for the runs. */
const POOL_OPTIONS = ['dm.basesize=1G', 'dm.loopdatasize=8G', 'dm.loopmetadatasize=256M'];
/** The peer's thin ids: 2^23 and up (the driver counts up from 0). */
const PEER_THIN_BASE = 0x800000;
const SECTOR = 512;

const C_SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* usage: peer POOL_NAME, then commands on stdin, one per line; each answers one line:
 *   snap NEW ORIGIN                       -> ok NS        create_snap NEW ORIGIN + set_transaction_id
 *   getput ID SECTORS NAME MNT            -> ok GET PUT   activate + mount "discard"; umount2 + remove
 *   remove ID SECTORS NAME                -> ok NS        activate + BLKDISCARD + remove + delete ID
 *                                                         + set_transaction_id
 *   delete ID                             -> ok 0         (untimed clean-up) 'delete ID'
 * or "err <what>: <strerror>". The pool's transaction id is read (DM_TABLE_STATUS) before the
 * timed part of snap and remove; a thin table names the pool by its device number. */
static int ctl;
static char pool[DM_NAME_LEN];
static char pooldev[32];
static union { struct dm_ioctl io; uint64_t align; char b[16384]; } buf;
static char err[512];

static long long ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static int fail(const char *what) { snprintf(err, sizeof err, "%s: %s", what, strerror(errno)); return -1; }
static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* One dm ioctl: the header, then plen bytes of payload and room bytes for the answer. data_size
 * is what is sent (no 16 KiB default buffer to copy in and out). */
static int dmio(unsigned long cmd, const char *name, uint32_t flags, uint32_t targets, size_t plen, size_t room) {
  size_t hdr = sizeof(struct dm_ioctl);
  memset(&buf.io, 0, hdr);
  buf.io.version[0] = 4; buf.io.version[1] = 0; buf.io.version[2] = 0;
  buf.io.data_size = (uint32_t)align8(hdr + plen + room);
  buf.io.data_start = (uint32_t)hdr;
  buf.io.target_count = targets;
  buf.io.flags = flags;
  snprintf(buf.io.name, sizeof buf.io.name, "%s", name);
  return ioctl(ctl, cmd, &buf.io);
}

static int message(const char *text) {
  struct dm_target_msg *m = (struct dm_target_msg *)(buf.b + sizeof(struct dm_ioctl));
  m->sector = 0;
  size_t len = strlen(text) + 1;
  memcpy(m->message, text, len);
  if (dmio(DM_TARGET_MSG, pool, 0, 0, sizeof *m + len, 0)) return fail(text);
  return 0;
}

static int transaction_id(unsigned long long *tid) {
  if (dmio(DM_TABLE_STATUS, pool, DM_NOFLUSH_FLAG, 0, 0, 4096)) return fail("DM_TABLE_STATUS");
  struct dm_target_spec *s = (struct dm_target_spec *)(buf.b + buf.io.data_start);
  if (buf.io.target_count != 1 || sscanf((char *)(s + 1), "%llu", tid) != 1) { errno = EPROTO; return fail("pool status"); }
  return 0;
}

static int set_transaction_id(unsigned long long tid) {
  char text[96];
  snprintf(text, sizeof text, "set_transaction_id %llu %llu", tid, tid + 1);
  return message(text);
}

/* DM_DEV_CREATE + DM_TABLE_LOAD 'thin <pool> <id>' + resume; the device's minor in *devminor. */
static int activate(const char *name, unsigned id, unsigned long long sectors, unsigned *devminor) {
  if (dmio(DM_DEV_CREATE, name, 0, 0, 0, 0)) return fail("DM_DEV_CREATE");
  *devminor = minor(buf.io.dev);
  struct dm_target_spec *s = (struct dm_target_spec *)(buf.b + sizeof(struct dm_ioctl));
  memset(s, 0, sizeof *s);
  s->sector_start = 0;
  s->length = sectors;
  snprintf(s->target_type, sizeof s->target_type, "thin");
  char *params = (char *)(s + 1);
  int n = snprintf(params, 64, "%s %u", pooldev, id);
  s->next = (uint32_t)align8(sizeof *s + (size_t)n + 1);
  if (dmio(DM_TABLE_LOAD, name, 0, 1, s->next, 0)) return fail("DM_TABLE_LOAD");
  if (dmio(DM_DEV_SUSPEND, name, 0, 0, 0, 0)) return fail("resume");
  return 0;
}

static int deactivate(const char *name) {
  if (dmio(DM_DEV_REMOVE, name, 0, 0, 0, 0)) return fail("DM_DEV_REMOVE");
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  snprintf(pool, sizeof pool, "%s", argv[1]);
  ctl = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) { perror("/dev/mapper/control"); return 1; }
  if (dmio(DM_DEV_STATUS, pool, 0, 0, 0, 0)) { perror(pool); return 1; }
  snprintf(pooldev, sizeof pooldev, "%u:%u", major(buf.io.dev), minor(buf.io.dev));
  setvbuf(stdout, NULL, _IOLBF, 0);
  char line[4096];
  while (fgets(line, sizeof line, stdin)) {
    char name[DM_NAME_LEN], mnt[2048], text[96];
    unsigned id, origin, devminor;
    unsigned long long sectors, tid;
    int r = -1;
    long long a, b, c;
    if (sscanf(line, "snap %u %u", &id, &origin) == 2) {
      if (transaction_id(&tid) == 0) {
        snprintf(text, sizeof text, "create_snap %u %u", id, origin);
        a = ns();
        r = message(text);
        if (r == 0) r = set_transaction_id(tid);
        b = ns();
        if (r == 0) { printf("ok %lld\n", b - a); continue; }
      }
    } else if (sscanf(line, "getput %u %llu %127s %2047s", &id, &sectors, name, mnt) == 4) {
      char node[64];
      a = ns();
      r = activate(name, id, sectors, &devminor);
      if (r == 0) {
        snprintf(node, sizeof node, "/dev/dm-%u", devminor);
        if (mount(node, mnt, "ext4", 0, "discard")) r = fail("mount");
        b = ns();
        if (r == 0 && umount2(mnt, MNT_DETACH)) r = fail("umount2");
        if (r == 0) r = deactivate(name);
        c = ns();
        if (r == 0) { printf("ok %lld %lld\n", b - a, c - b); continue; }
      }
    } else if (sscanf(line, "remove %u %llu %127s", &id, &sectors, name) == 3) {
      if (transaction_id(&tid) == 0) {
        char node[64];
        a = ns();
        r = activate(name, id, sectors, &devminor);
        if (r == 0) {
          snprintf(node, sizeof node, "/dev/dm-%u", devminor);
          int fd = open(node, O_WRONLY | O_CLOEXEC);
          uint64_t range[2] = { 0, sectors * 512ULL };
          if (fd < 0) r = fail("open");
          else {
            if (ioctl(fd, BLKDISCARD, range)) r = fail("BLKDISCARD");
            close(fd);
          }
          if (r == 0) r = deactivate(name);
          snprintf(text, sizeof text, "delete %u", id);
          if (r == 0) r = message(text);
          if (r == 0) r = set_transaction_id(tid);
          b = ns();
          if (r == 0) { printf("ok %lld\n", b - a); continue; }
        }
      }
    } else if (sscanf(line, "delete %u", &id) == 1) {
      snprintf(text, sizeof text, "delete %u", id);
      if (message(text) == 0) { printf("ok 0\n"); continue; }
    } else {
      snprintf(err, sizeof err, "bad command: %.100s", line);
    }
    printf("err %s\n", err);
  }
  return 0;
}
`;

/** The C peer as a co-process: one command, one answer line (nanoseconds) at a time. */
class Peer {
  private readonly lines: AsyncIterator<string>;
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static start(exe: string, poolName: string): Peer {
    const child = spawn(exe, [poolName], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr.on('data', (b: Buffer) => process.stderr.write(`peer: ${b.toString()}`));
    return new Peer(child);
  }

  /** Sends one command; the numbers of its answer, in µs. Rejects on "err ..." or a dead peer. */
  async send(cmd: string): Promise<number[]> {
    this.child.stdin.write(`${cmd}\n`);
    const next = await this.lines.next();
    if (next.done === true) throw new Error(`peer exited (status ${this.child.exitCode}) during "${cmd}"`);
    const [status, ...rest] = next.value.split(' ');
    if (status !== 'ok') throw new Error(`peer: "${cmd}": ${rest.join(' ')}`);
    return rest.map((x) => Number(x) / 1000);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    await exited;
  }
}

function argValue(name: string): string | undefined {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return argv[i + 1];
    if (argv[i]!.startsWith(`--${name}=`)) return argv[i]!.slice(name.length + 3);
  }
  return undefined;
}

/** Why this cannot run here, or undefined. */
function refusal(): string | undefined {
  if (process.env['GRAPHDRIVER_VM'] !== '1') return 'not in the VM of test/vm/ (GRAPHDRIVER_VM is not 1)';
  if (!existsSync('/dev/mapper/control')) return 'no /dev/mapper/control (no device-mapper in this kernel)';
  if ((process.env['VM_SCRATCH'] ?? '') === '') return 'VM_SCRATCH is not set';
  if (process.getuid?.() !== 0) return 'needs root';
  return undefined;
}

function usFrom(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1000;
}

interface Row { op: string; ours: number[]; peer: number[] }

async function main(): Promise<void> {
  const why = refusal();
  if (why !== undefined) {
    console.error(`bench/devicemapper: refused: ${why}. It needs device-mapper and runs in the qemu VM: ` +
      '`npm run bench:devicemapper -- --runs N` (= tsc + test/vm/run -- node dist/bench/devicemapper.js).');
    process.exitCode = 2;
    return;
  }
  const runs = Math.max(1, Number(argValue('runs') ?? 15));
  if (!Number.isInteger(runs)) throw new Error('--runs must be a whole number');
  const hostLoad = process.env['BENCH_HOST_LOADAVG'];
  const guestLoadStart = os.loadavg();

  const dir = await fsp.mkdtemp(path.join(process.env['VM_SCRATCH']!, 'gd-bench-dm-'));
  const root = path.join(dir, 'root');
  const peerMnt = path.join(dir, 'peer-mnt');
  const peerName = (k: number): string => `gdbench-peer-${process.pid}-${k}`;
  let driver: Driver | undefined;
  let peer: Peer | undefined;
  const peerIds = new Set<number>();

  let tornDown = false;
  const teardown = async (): Promise<void> => {
    if (tornDown) return;
    tornDown = true;
    const problems: string[] = [];
    const attempt = async (what: string, f: () => Promise<unknown>): Promise<void> => {
      try {
        await f();
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message}`);
      }
    };
    await attempt('unmount', () => unmountAllUnder(dir));
    await attempt('peer devices', async () => {
      for (const d of await dm.listDevices()) if (d.name.startsWith(`gdbench-peer-${process.pid}-`)) await dm.removeDevice(d.name);
    });
    if (driver !== undefined) {
      const pool = (await driver.status().catch(() => [] as Array<[string, string]>)).find(([k]) => k === 'Pool Name')?.[1];
      if (pool !== undefined) {
        await attempt('peer thin ids', async () => {
          for (const id of peerIds) {
            await dm.deleteThin(pool, id).catch((e: unknown) => { if ((e as { code?: string }).code !== 'ENODATA') throw e; });
          }
        });
      }
    }
    await attempt('peer', async () => peer?.stop());
    await attempt('driver cleanup', async () => driver?.cleanup());
    await attempt('dm devices', () => removeDmDevicesOf(root));
    await attempt('temp dir', () => fsp.rm(dir, { recursive: true, force: true }));
    if (problems.length > 0) console.error(`bench/devicemapper: teardown: ${problems.join('; ')}`);
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: tearing down\n`);
      void teardown().finally(() => process.exit(130));
    });
  }

  try {
    // The peer, compiled in the guest.
    await fsp.mkdir(peerMnt);
    const cc = path.join(dir, 'cc');
    await fsp.mkdir(cc);
    await fsp.writeFile(path.join(cc, 'peer.c'), C_SOURCE);
    const exe = path.join(cc, 'peer');
    execFileSync('gcc', ['-O2', '-Wall', '-o', exe, path.join(cc, 'peer.c')], { stdio: 'inherit' });

    // The driver: first open makes the loops, the pool and the base (mkfs in-process).
    let t0 = process.hrtime.bigint();
    driver = await getDriver('devicemapper', root, POOL_OPTIONS);
    const firstOpenUs = usFrom(t0);
    const status = new Map(await driver.status());
    const poolName = status.get('Pool Name')!;
    const home = path.join(root, 'devicemapper');
    const recordOf = async (file: string): Promise<{ device_id: number; size: number }> =>
      JSON.parse(await fsp.readFile(path.join(home, 'metadata', file), 'utf8')) as { device_id: number; size: number };
    const base = await recordOf('base');

    // The origin of every snapshot on both sides: a layer with a few files.
    await driver.create('parent');
    const parentDir = await driver.get('parent');
    for (let i = 0; i < 20; i++) await fsp.writeFile(path.join(parentDir, `f${i}`), Buffer.alloc(4096 * (i + 1), i));
    await driver.put('parent');
    const origin = await recordOf('layers/parent');
    const sectors = origin.size / SECTOR;

    peer = Peer.start(exe, poolName);
    let nextPeer = 0;
    const peerSnap = async (): Promise<{ id: number; us: number }> => {
      const id = PEER_THIN_BASE + nextPeer++;
      peerIds.add(id);
      const [us] = await peer!.send(`snap ${id} ${origin.device_id}`);
      return { id, us: us! };
    };
    const peerGetPut = (id: number): Promise<number[]> => peer!.send(`getput ${id} ${sectors} ${peerName(id)} ${peerMnt}`);
    const peerRemove = async (id: number): Promise<number> => {
      const [us] = await peer!.send(`remove ${id} ${sectors} ${peerName(id)}`);
      peerIds.delete(id);
      return us!;
    };
    const d = driver;
    const ourGetPut = async (id: string): Promise<[number, number]> => {
      const a = process.hrtime.bigint();
      await d.get(id);
      const b = process.hrtime.bigint();
      await d.put(id);
      const c = process.hrtime.bigint();
      return [Number(b - a) / 1000, Number(c - b) / 1000];
    };

    // Each run: ours then peer, or peer then ours (odd runs); run 0 is the dropped warm-up.
    const alternate = async (label: string, ours: (i: number) => Promise<void>, theirs: (i: number) => Promise<void>): Promise<void> => {
      for (let i = 0; i <= runs; i++) {
        if (i % 2 === 0) { await ours(i); await theirs(i); } else { await theirs(i); await ours(i); }
        process.stderr.write(`  ${label} ${i === 0 ? 'warm-up' : `run ${i}/${runs}`}\n`);
      }
    };
    const keep = (i: number, into: number[], us: number): void => { if (i > 0) into.push(us); };

    // 1. create: layers c-0..c-runs and as many peer snapshots (kept for the remove workload).
    const create: Row = { op: 'create', ours: [], peer: [] };
    const peerLayers: number[] = [];
    await alternate('create', async (i) => {
      const t = process.hrtime.bigint();
      await d.create(`c-${i}`, 'parent');
      keep(i, create.ours, usFrom(t));
    }, async (i) => {
      const { id, us } = await peerSnap();
      peerLayers.push(id);
      keep(i, create.peer, us);
    });

    // 2. get + put of one layer per side, over and over.
    const get: Row = { op: 'get', ours: [], peer: [] };
    const put: Row = { op: 'put', ours: [], peer: [] };
    const getPut: Row = { op: 'get+put', ours: [], peer: [] };
    await d.create('gp', 'parent');
    const { id: peerGp } = await peerSnap();
    await alternate('get+put', async (i) => {
      const [g, p] = await ourGetPut('gp');
      keep(i, get.ours, g);
      keep(i, put.ours, p);
      keep(i, getPut.ours, g + p);
    }, async (i) => {
      const [g, p] = await peerGetPut(peerGp);
      keep(i, get.peer, g!);
      keep(i, put.peer, p!);
      keep(i, getPut.peer, g! + p!);
    });

    // 3. remove of the layers of (1), each mounted once first (untimed): its superblock and
    // journal written, so it has blocks of its own to discard, as a layer that got a diff has.
    const remove: Row = { op: 'remove', ours: [], peer: [] };
    await alternate('remove', async (i) => {
      await ourGetPut(`c-${i}`);
      const t = process.hrtime.bigint();
      await d.remove(`c-${i}`);
      keep(i, remove.ours, usFrom(t));
    }, async (i) => {
      const id = peerLayers[i]!;
      await peerGetPut(id);
      keep(i, remove.peer, await peerRemove(id));
    });

    // For information: getDriver on the existing home (pool and base reused; 2 layers), while
    // the first driver stays open (so the second one's cleanup leaves the pool).
    const reopenUs: number[] = [];
    for (let k = 0; k < 3; k++) {
      t0 = process.hrtime.bigint();
      const again = await getDriver('devicemapper', root, POOL_OPTIONS);
      reopenUs.push(usFrom(t0));
      await again.cleanup();
    }

    const rows = [create, get, put, getPut, remove];
    const med = rows.map((r) => ({ op: r.op, oursUs: median(r.ours), peerUs: median(r.peer) }));
    const opCost: Record<string, string> = {
      create: 'create_snap + set_transaction_id', get: 'activate + mount', put: 'umount2 + DM_DEV_REMOVE',
      'get+put': '', remove: 'activate + BLKDISCARD + remove + delete + set_transaction_id',
    };
    console.log(table(['op', 'runs', 'driver µs', 'peer (C) µs', 'ratio', 'peer does'],
      med.map((m) => [m.op, runs, m.oursUs, m.peerUs, m.oursUs / m.peerUs, opCost[m.op]!])));
    console.log('');
    console.log(table(['for information', 'µs'], [
      ['getDriver, empty root (loops, pool, base mkfs)', firstOpenUs],
      ['getDriver, existing home (pool reuse), median of 3', median(reopenUs)],
    ]));
    const guestLoadEnd = os.loadavg();
    const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
    console.log(JSON.stringify({
      bench: 'devicemapper', kernel: os.release(), node: process.version, cpu, vm: true, runs,
      poolOptions: POOL_OPTIONS, pool: poolName, baseThinId: base.device_id, originThinId: origin.device_id,
      hostLoadavgStart: hostLoad, guestLoadavg: [guestLoadStart.map((x) => round(x, 2)), guestLoadEnd.map((x) => round(x, 2))],
      layersDuringCreate: [1, runs + 1],
      rows: med.map((m, k) => ({
        op: m.op, oursMedianUs: round(m.oursUs, 1), peerMedianUs: round(m.peerUs, 1), ratio: round(m.oursUs / m.peerUs),
        oursUs: rows[k]!.ours.map((x) => round(x, 0)), peerUs: rows[k]!.peer.map((x) => round(x, 0)),
      })),
      driverOpenUs: { first: round(firstOpenUs, 0), reuse: reopenUs.map((x) => round(x, 0)) },
    }));
  } finally {
    await teardown();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
