// quota.ts: overlay2's per-layer size limits through XFS project quotas — the engine's
// quota.Control (quota/projectquota.go), rewritten. Policy only; the syscalls are the addon's
// (native/quota.cc: FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR, quotactl Q_XSETQLIM / Q_XGETQUOTA).
//
// A backing filesystem is quota-capable when statfs says xfs, AND a project id can be set on a
// probe directory under home, AND quotactl(Q_XGETQUOTA) answers for that id on the block device
// behind home. That device is a node the driver makes itself: home/backingFsBlockDev, mknod'd
// (S_IFBLK 0600) from stat(home).st_dev, as the engine does (no /proc or /dev lookup). Anything
// else is an InvalidOptionError naming why (not xfs / no prjquota / mknod refused ...).
//
// Project ids: the first is one above home's own project id (the engine's floor) and above the
// highest id found on any layer's diff/ or in any layer's quota record, then increasing by one
// per quota'd layer (allocation is serialized inside one QuotaControl). A layer's id is set with
// PROJINHERIT on its layer directory while it is still in staging/, before diff/ and work/ are
// made, so both inherit it: overlay renames copied-up files from work/ into diff/, and XFS
// refuses (EXDEV) a rename into a PROJINHERIT directory of another project. The limit is then
// set with Q_XSETQLIM and the id recorded in <id>/quota (written to a temp file, fsync'd,
// renamed). Ids are not recycled on remove (as the engine).
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { InvalidOptionError, hasCode } from '../../errors';
import { FsMagic, fsName } from '../../fsmagic';
import { readMountInfo } from '../../mount/apply';
import * as native from '../../native';
import { C } from '../../native';
import { writeFileAtomic } from '../../util/atomic-file';
import { withProbeDir } from './check';
import { BACKING_FS_BLOCK_DEV, type Overlay2Layout, QUOTA_FILE } from './layout';
import { listLayerIds } from './records';

const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
/** The largest XFS project id (fsx_projid is 32 bits). */
export const MAX_PROJECT_ID = 0xffff_ffff;

/** What <id>/quota records: the layer's project id and its limit in bytes. */
export interface QuotaRecord {
  projid: number;
  size: number;
}

/** The text of a quota record: `projid=<n>\nsize=<bytes>\n`. */
export function formatQuotaRecord(rec: QuotaRecord): string {
  checkProjectId(rec.projid);
  if (!Number.isSafeInteger(rec.size) || rec.size < 0) throw new RangeError(`quota size must be a non-negative integer, got ${rec.size}`);
  return `projid=${rec.projid}\nsize=${rec.size}\n`;
}

/** Parses a quota record; throws Error naming the problem when it is malformed. */
export function parseQuotaRecord(text: string): QuotaRecord {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`overlay2: malformed quota record line ${JSON.stringify(line)}`);
    fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const num = (key: string): number => {
    const v = fields.get(key);
    if (v === undefined || !/^[0-9]+$/.test(v)) throw new Error(`overlay2: quota record: ${key} missing or not a number`);
    return Number(v);
  };
  const rec = { projid: num('projid'), size: num('size') };
  checkProjectId(rec.projid);
  if (!Number.isSafeInteger(rec.size)) throw new Error(`overlay2: quota record: size ${rec.size} is too large`);
  return rec;
}

function checkProjectId(projid: number): void {
  if (!Number.isInteger(projid) || projid < 1 || projid > MAX_PROJECT_ID) {
    throw new RangeError(`project id must be an integer in 1..${MAX_PROJECT_ID}, got ${projid}`);
  }
}

/** The next project id: above `floor - 1` and above every id in `used`. RangeError when ids are exhausted. */
export function nextProjectId(used: Iterable<number>, floor: number): number {
  let next = Math.max(1, floor);
  for (const id of used) if (id + 1 > next) next = id + 1;
  if (next > MAX_PROJECT_ID) throw new RangeError(`overlay2: XFS project ids exhausted (next would be ${next})`);
  return next;
}

/** glibc's major()/minor() of a dev_t (st_dev as a number). */
export function devMajorMinor(dev: number): { major: number; minor: number } {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

/** What the size of a new layer is: its own storageOpt size, else the driver's default; 0 = none. */
export function effectiveSize(layerSize: number | undefined, defaultSize: number): number {
  return layerSize !== undefined ? layerSize : defaultSize;
}

async function withDirFd<T>(dir: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = await native.open(dir, DIR_FLAGS, 0);
  try {
    return await fn(fd);
  } finally {
    native.closeSync(fd);
  }
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Whether home's xfs is mounted with project quotas, from mountinfo (for the message only). */
async function prjquotaMounted(home: string): Promise<boolean> {
  const infos = await readMountInfo().catch(() => []);
  return infos.some((m) => m.fsType === 'xfs' && /(^|,)(prjquota|pquota)(,|$)/.test(m.superOptions) &&
    (home === m.mountPoint || home.startsWith(`${m.mountPoint}/`)));
}

/** Reads <layerDir>/quota; undefined when absent or unreadable as a record. */
export async function readQuotaRecord(layerDir: string): Promise<QuotaRecord | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(layerDir, QUOTA_FILE), 'utf8');
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return undefined;
    throw err;
  }
  try {
    return parseQuotaRecord(text);
  } catch {
    return undefined;
  }
}

/** Writes <layerDir>/quota atomically: temp file, fsync, rename, fsync of the directory. */
export async function writeQuotaRecord(layerDir: string, rec: QuotaRecord): Promise<void> {
  await writeFileAtomic(path.join(layerDir, QUOTA_FILE), formatQuotaRecord(rec), 0o644);
}

/** Every project id in use under home: on each layer's diff/ (FS_IOC_FSGETXATTR) and in its record. */
async function usedProjectIds(layout: Overlay2Layout): Promise<number[]> {
  const used: number[] = [];
  for (const id of await listLayerIds(layout)) {
    const rec = await readQuotaRecord(layout.layer(id));
    if (rec !== undefined) used.push(rec.projid);
    try {
      used.push((await withDirFd(layout.diff(id), (fd) => native.fsGetXattrFd(fd))).projid);
    } catch (err) {
      if (!hasCode(err, 'ENOENT') && !hasCode(err, 'ENOTDIR') && !hasCode(err, 'ELOOP')) throw err;
    }
  }
  return used;
}

/** The engine's quota.Control for one overlay2 home: probed once, then allocates ids and sets limits. */
export class QuotaControl {
  private next: number;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly blockDevice: string, firstId: number) {
    this.next = firstId;
  }

  /**
   * Probes home's backing filesystem for project quotas (see the file header) and returns a
   * control; InvalidOptionError saying why when a size cannot be enforced there.
   */
  static async probe(layout: Overlay2Layout, magic: number): Promise<QuotaControl> {
    const home = layout.home;
    const refuse = (why: string): InvalidOptionError =>
      new InvalidOptionError(`overlay2: a size (overlay2.size or storageOpt size) needs xfs with project quotas; ${why}`);
    if (magic !== FsMagic.Xfs) throw refuse(`${home} is on ${fsName(magic)} (use xfs mounted with prjquota)`);
    // The block device node, as the engine's makeBackingFsDev: replace whatever is there.
    const blockDevice = path.join(home, BACKING_FS_BLOCK_DEV);
    const { major, minor } = devMajorMinor((await fsp.stat(home)).dev);
    await fsp.rm(blockDevice, { force: true });
    try {
      await native.mknod(blockDevice, C.S_IFBLK | 0o600, major, minor);
    } catch (err) {
      throw refuse(`cannot make the block device node ${blockDevice} (${major}:${minor}) for quotactl: ${reason(err)}`);
    }
    let homeProjid: number;
    try {
      homeProjid = (await withDirFd(home, (fd) => native.fsGetXattrFd(fd))).projid;
    } catch (err) {
      throw refuse(`cannot read the project id of ${home}: ${reason(err)}`);
    }
    const first = nextProjectId(await usedProjectIds(layout), homeProjid + 1);
    await withProbeDir(layout, async (dir) => {
      try {
        await withDirFd(dir, (fd) => native.fsSetProjectFd(fd, first, true));
      } catch (err) {
        throw refuse(`cannot set a project id on ${dir}: ${reason(err)}`);
      }
      try {
        await native.xfsGetProjectQuota(blockDevice, first);
      } catch (err) {
        // ENOENT: quotas are on, the id just has no dquot yet. Anything else: not usable.
        if (hasCode(err, 'ENOENT')) return;
        const hint = (await prjquotaMounted(home)) ? '' : ` (mount the xfs holding ${home} with prjquota)`;
        throw refuse(`project quotas are not enabled on ${home}${hint}: ${reason(err)}`);
      }
    });
    return new QuotaControl(blockDevice, first);
  }

  /**
   * Gives the (staged, still empty) layer directory a new project id with PROJINHERIT, limits
   * that project to `size` bytes, and records both in <layerDir>/quota. Serialized.
   */
  applyTo(layerDir: string, size: number): Promise<QuotaRecord> {
    const run = this.queue.then(async () => {
      const projid = nextProjectId([], this.next);
      this.next = projid + 1;
      await withDirFd(layerDir, (fd) => native.fsSetProjectFd(fd, projid, true));
      await native.xfsSetProjectLimit(this.blockDevice, projid, size);
      const rec = { projid, size };
      await writeQuotaRecord(layerDir, rec);
      return rec;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}
