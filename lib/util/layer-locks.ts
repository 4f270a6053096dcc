// layer-locks.ts: the locks every driver takes, in one place, so processes sharing one driver
// home never corrupt each other's view. All of them are flock(2) on files under home/locks/
// (LOCKS_DIR), released by the kernel when their holder dies:
//
//   locks/driver          held shared by every process for as long as it has the driver open;
//                         init sweeps staging/ (what a crash left) only if it can take it
//                         exclusively, i.e. only when no other live process has the home open
//                         and so no one else's work in progress lives there
//   locks/layers/<0..63>  per-layer operation locks (util/locker.ts): one layer's operations
//                         run one at a time across processes; layers on other stripes in
//                         parallel
//   locks/in-use/<id>     held shared by each process that has <id> got. remove takes it
//                         exclusively without waiting (LayerBusyError if another process has
//                         the layer got); the last put of a process unmounts only if it can
//                         take it exclusively, so a mount another process uses stays: the
//                         lock is the cross-process mount count
//
// Why flock: it belongs to the open file, so a SIGKILLed process never leaves a lock held, and
// no lock file needs cleaning up. Lock files are made at open (layers/, driver) or on first use
// (in-use/<id>, unlinked by remove while held exclusively under the layer's lock).
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApplyGuard } from '../driver';
import { LayerBusyError, LayerNotFoundError, hasCode } from '../errors';
import { RefCounter } from '../mount/refcount';
import { C, closeSync, flock, open } from '../native';
import { FileLocks } from './file-lock';
import { Locker, STRIPES } from './locker';

/** home/locks: the lock directory, beside each driver's own layout. */
export const LOCKS_DIR = 'locks';
const LAYER_LOCKS_DIR = 'layers';
const IN_USE_DIR = 'in-use';
const DRIVER_LOCK = 'driver';
const LOCK_DIR_MODE = 0o700;
const OPEN_FLAGS = C.O_RDWR | C.O_CREAT | C.O_NOFOLLOW | C.O_CLOEXEC;

function isWouldBlock(err: unknown): boolean {
  return hasCode(err, 'EAGAIN') || hasCode(err, 'EWOULDBLOCK');
}

/** One non-blocking flock attempt; false when another open file holds a conflicting lock. */
async function tryFlock(fd: number, operation: number): Promise<boolean> {
  try {
    await flock(fd, operation | C.LOCK_NB);
    return true;
  } catch (err) {
    if (isWouldBlock(err)) return false;
    throw err;
  }
}

export class LayerLocks {
  /** Per-layer operation locks, in-process then across processes. */
  private readonly locker: Locker;
  /** This process's get counts (the in-use lock counts processes, this counts gets). */
  private readonly refs = new RefCounter();
  /** The in-use lock fd of each layer this process has got. */
  private readonly inUseFds = new Map<string, number>();
  /** The driver lock's fd while the driver is open. */
  private driverFd: number | undefined;

  private constructor(readonly dir: string) {
    this.locker = new Locker(new FileLocks(path.join(dir, LAYER_LOCKS_DIR)));
  }

  /**
   * Makes home/locks and its lock files, runs `sweep` if no other process has the home open
   * (holding the driver lock exclusively meanwhile), then holds the driver lock shared until
   * close(). `sweep` should remove what an interrupted process left (staging/, stale mounts).
   */
  static async open(home: string, sweep: () => Promise<void>): Promise<LayerLocks> {
    const locks = new LayerLocks(path.join(home, LOCKS_DIR));
    await fsp.mkdir(path.join(locks.dir, LAYER_LOCKS_DIR), { recursive: true, mode: LOCK_DIR_MODE });
    await fsp.mkdir(path.join(locks.dir, IN_USE_DIR), { recursive: true, mode: LOCK_DIR_MODE });
    // Made once (the first open), so later operations (even refused ones) create no files.
    const have = new Set(await fsp.readdir(path.join(locks.dir, LAYER_LOCKS_DIR)));
    for (let k = 0; k < STRIPES; k++) {
      if (!have.has(String(k))) await fsp.writeFile(path.join(locks.dir, LAYER_LOCKS_DIR, String(k)), '', { flag: 'a', mode: 0o600 });
    }
    const fd = await open(path.join(locks.dir, DRIVER_LOCK), OPEN_FLAGS, 0o600);
    try {
      if (await tryFlock(fd, C.LOCK_EX)) {
        await sweep();
        await flock(fd, C.LOCK_SH | C.LOCK_NB); // a conversion: nobody else can hold it now
      } else {
        // Another process has the home open (shared: we join at once) or is sweeping (wait).
        for (let wait = 1; !(await tryFlock(fd, C.LOCK_SH)); wait = Math.min(wait * 2, 50)) await sleep(wait);
      }
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    locks.driverFd = fd;
    return locks;
  }

  /** Runs `fn` holding the operation locks of every id in `ids` (any order; deadlock-free). */
  withLayers<T>(ids: readonly string[], fn: () => Promise<T>): Promise<T> {
    return this.locker.withAll(ids, fn);
  }

  /** Runs `fn` holding the operation lock of `id`. */
  withLayer<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.locker.withAll([id], fn);
  }

  private inUsePath(id: string): string {
    return path.join(this.dir, IN_USE_DIR, id);
  }

  /** Marks `id` in use by this process; LayerBusyError if another process is removing it right now. */
  private async holdInUse(id: string): Promise<void> {
    if (this.inUseFds.has(id)) return;
    const fd = await open(this.inUsePath(id), OPEN_FLAGS, 0o600);
    try {
      // A remover holds it exclusively only briefly and under the layer's lock, which we hold.
      if (!(await tryFlock(fd, C.LOCK_SH))) throw new LayerBusyError(id, `layer ${JSON.stringify(id)} is being removed by another process`);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.inUseFds.set(id, fd);
  }

  /** Drops this process's in-use mark of `id`. */
  private releaseInUse(id: string): void {
    const fd = this.inUseFds.get(id);
    if (fd === undefined) return;
    this.inUseFds.delete(id);
    closeSync(fd);
  }

  /** Whether no other process has `id` got (under the layer's lock, after releaseInUse). */
  private async unusedElsewhere(id: string): Promise<boolean> {
    let fd: number;
    try {
      fd = await open(this.inUsePath(id), C.O_RDWR | C.O_NOFOLLOW | C.O_CLOEXEC, 0);
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return true; // never got by anyone since it was made
      throw err;
    }
    try {
      return await tryFlock(fd, C.LOCK_EX);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Runs `fn` (the removal) holding `id`'s in-use lock exclusively; call under the layer's
   * lock. This process's own gets of the layer end; LayerBusyError, without running `fn`, when
   * another process has it got. The lock file is unlinked after `fn` succeeds.
   */
  async removing<T>(id: string, fn: () => Promise<T>): Promise<T> {
    // This process's own gets end here.
    this.refs.forget(id);
    this.releaseInUse(id);
    const fd = await open(this.inUsePath(id), OPEN_FLAGS, 0o600);
    try {
      if (!(await tryFlock(fd, C.LOCK_EX))) throw new LayerBusyError(id);
      const result = await fn();
      // Unlinked while held and under the layer's lock: no getter can be opening it now.
      await fsp.rm(this.inUsePath(id), { force: true });
      return result;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * A get of `id` (call under the layer's lock): the first one in this process marks the
   * layer in use, then runs `activate` (mount; nothing for a plain directory).
   */
  async use(id: string, activate: () => Promise<void> = async () => undefined): Promise<void> {
    await this.refs.acquire(id, async () => {
      await this.holdInUse(id);
      try {
        await activate();
      } catch (err) {
        this.releaseInUse(id);
        throw err;
      }
    });
  }

  /**
   * A put of `id` (call under the layer's lock; NotMountedError without a get): the last one
   * in this process drops the in-use mark, then runs `deactivate` (unmount) unless another
   * process still has the layer got.
   */
  async unuse(id: string, deactivate: () => Promise<unknown> = async () => undefined): Promise<void> {
    await this.refs.release(id, async () => {
      this.releaseInUse(id);
      if (await this.unusedElsewhere(id)) await deactivate();
    });
  }

  /**
   * Runs an apply into `id` under its lock (ApplyGuard.guardApply for every driver):
   * LayerNotFoundError unless `present()`, then `guard.beginApply` (marks it incomplete),
   * `apply`, `guard.endApply` (syncs, unmarks). A failed apply leaves the mark.
   */
  applyGuarded<T>(id: string, present: () => Promise<boolean>, guard: ApplyGuard, apply: () => Promise<T>): Promise<T> {
    return this.withLayer(id, async () => {
      if (!(await present())) throw new LayerNotFoundError(id);
      await guard.beginApply(id);
      const result = await apply();
      await guard.endApply(id);
      return result;
    });
  }

  /** This process's get count of `id`. */
  count(id: string): number {
    return this.refs.count(id);
  }

  /**
   * Driver cleanup: ends every get of this process (running `deactivate` for the layers no
   * other process has got), runs `lastOut` if no other process has the home open (e.g. to tear
   * down a shared device), then releases the driver lock. The object is done after.
   */
  async close(deactivate: (id: string) => Promise<unknown> = async () => undefined, lastOut?: () => Promise<void>): Promise<void> {
    for (const id of this.refs.active()) {
      await this.withLayer(id, async () => {
        this.refs.forget(id);
        this.releaseInUse(id);
        if (await this.unusedElsewhere(id)) await deactivate(id);
      });
    }
    for (const id of [...this.inUseFds.keys()]) this.releaseInUse(id);
    const fd = this.driverFd;
    if (fd === undefined) return;
    this.driverFd = undefined;
    try {
      // A conversion to exclusive succeeds only when no other process holds the driver lock.
      if (lastOut !== undefined && (await tryFlock(fd, C.LOCK_EX))) await lastOut();
    } finally {
      closeSync(fd);
    }
  }
}
