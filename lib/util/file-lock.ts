// file-lock.ts: locks between processes that share one driver home, with flock(2) on files
// in a lock directory. A lock file is opened for each acquisition and closed to release it
// (flock locks belong to the open file description), so a killed process never leaves a lock
// held. Waiting is by polling with LOCK_NB and a short backoff, never a blocking flock: a
// blocked call would hold a libuv pool thread, and a few of them would stall every fs
// operation of the process. Within the process, holders of one name take turns first, so the
// process never contends with itself. Lock files are never deleted (unlinking one while
// another process waits on it would let two processes lock different inodes).
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hasCode } from '../errors';
import { C, closeSync, flock, open } from '../native';

export class FileLocks {
  private made = false;
  private readonly turns = new Map<string, Promise<void>>();

  /** `dir` is created (0700) on first use. Names must be single path components. */
  constructor(readonly dir: string) {}

  private async openLock(name: string): Promise<number> {
    if (!this.made) {
      await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
      this.made = true;
    }
    return open(path.join(this.dir, name), C.O_RDWR | C.O_CREAT | C.O_NOFOLLOW, 0o600);
  }

  /** One flock attempt; false when another process holds it. */
  private async tryLock(fd: number, operation: number): Promise<boolean> {
    try {
      await flock(fd, operation | C.LOCK_NB);
      return true;
    } catch (err) {
      if (hasCode(err, 'EAGAIN') || hasCode(err, 'EWOULDBLOCK')) return false;
      throw err;
    }
  }

  /** Runs `fn` after this process's earlier holders of `name` are done. */
  private async turn<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.turns.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => { release = resolve; });
    const tail = previous.then(() => mine);
    this.turns.set(name, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.turns.get(name) === tail) this.turns.delete(name);
    }
  }

  private hold<T>(name: string, operation: number, fn: () => Promise<T>): Promise<T> {
    return this.turn(name, async () => {
      const fd = await this.openLock(name);
      try {
        for (let wait = 1; !(await this.tryLock(fd, operation)); wait = Math.min(wait * 2, 50)) await sleep(wait);
        return await fn();
      } finally {
        closeSync(fd); // releases the lock
      }
    });
  }

  /** Runs `fn` holding `name` exclusively (waits for other holders, in any process). */
  exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.hold(name, C.LOCK_EX, fn);
  }

  /**
   * Runs `fn` holding `name` shared against other processes (they may hold it shared too; an
   * exclusive holder waits). Within this process shared holders still take turns.
   */
  shared<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.hold(name, C.LOCK_SH, fn);
  }

  /** Runs `fn` holding `name` exclusively if nobody holds it now; resolves false (without running it) otherwise. */
  async tryExclusive(name: string, fn: () => Promise<void>): Promise<boolean> {
    return this.turn(name, async () => {
      const fd = await this.openLock(name);
      try {
        if (!(await this.tryLock(fd, C.LOCK_EX))) return false;
        await fn();
        return true;
      } finally {
        closeSync(fd);
      }
    });
  }
}
