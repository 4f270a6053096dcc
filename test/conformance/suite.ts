// suite.ts: the driver conformance suite. runDriverSuite(name, variants) runs every case in
// cases/index.ts once per option variant, each case with a fresh temp root and a fresh driver
// from getDriver(name, root, options). After each case, outstanding gets are put, the driver is
// cleaned up and the root removed (unmounting leftovers). A driver whose init throws a "try
// the next driver" error (not supported / prerequisites / incompatible fs) has every case of
// that variant skipped with the init error's message: never a silent pass. A variant may bring
// its own place for roots (e.g. a loop-device filesystem made once in `before`, a fresh
// directory on it per case from `makeRoot`); by default the root is in the case's temp dir.
import { readdirSync, readlinkSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { IncompatibleFsError, NotSupportedError, PrerequisitesError, getDriver } from '../../lib/index';
import type { Driver } from '../../lib/index';
import { requireRoot } from '../helpers/requires-root';
import { TmpDir } from '../helpers/tmp';
import { cases } from './cases/index';

/** What a case gets: the driver (gets/puts tracked for cleanup), its root, and scratch space. */
export interface CaseContext {
  driver: Driver;
  /** The same driver without get/put tracking, for cases that end gets themselves (remove racing get). */
  raw: Driver;
  driverName: string;
  /** The root passed to getDriver (the driver's home is root/<name>). */
  root: string;
  /** The case's temp dir (root lives in it); scratch files go under tmp.join('scratch'). */
  tmp: TmpDir;
  t: TestContext;
}

export interface ConformanceCase {
  name: string;
  /** When set, the case is skipped unless root, with this reason. */
  needsRoot?: string;
  run(ctx: CaseContext): Promise<void>;
}

/** A case's root made by a variant, and how to remove it (runs even when the case failed). */
export interface VariantRoot {
  root: string;
  teardown(): Promise<void>;
}

export interface Variant {
  label: string;
  options: string[];
  /** Skip every case of the variant with this reason (e.g. a missing mkfs tool). */
  skip?: string | false;
  /** Runs once before the variant's cases (e.g. make a filesystem). */
  before?: () => Promise<void>;
  /** Runs once after the variant's cases, even when they or `before` failed. */
  after?: () => Promise<void>;
  /** Makes a fresh root for one case; default: `tmp/root` in the case's temp dir. */
  makeRoot?: (tmp: TmpDir) => Promise<VariantRoot>;
  /**
   * Makes the driver for one case instead of getDriver(name, root, options) — for a driver
   * that cannot init on this machine but can be opened through a documented test seam (aufs).
   */
  driverFactory?: (root: string, options: string[]) => Promise<Driver>;
  /** A reason to skip one case in this variant (e.g. it needs a kernel feature the seam cannot give), or undefined to run it. */
  skipCase?: (c: ConformanceCase) => string | undefined;
}

/** Forwards to `d`, counting successful gets and puts per id so cleanup can balance them. */
function tracked(d: Driver, counts: Map<string, number>): Driver {
  return new Proxy(d, {
    get(target, prop) {
      if (prop === 'get') {
        return async (id: string, mountLabel?: string): Promise<string> => {
          const p = await target.get(id, mountLabel);
          counts.set(id, (counts.get(id) ?? 0) + 1);
          return p;
        };
      }
      if (prop === 'put') {
        return async (id: string): Promise<void> => {
          await target.put(id);
          const n = counts.get(id) ?? 0;
          if (n > 0) counts.set(id, n - 1);
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function isTryNext(err: unknown): err is Error {
  return err instanceof NotSupportedError || err instanceof PrerequisitesError || err instanceof IncompatibleFsError;
}

async function runCase(t: TestContext, driverName: string, variant: Variant, c: ConformanceCase): Promise<void> {
  if (c.needsRoot !== undefined && !requireRoot(t, c.needsRoot)) return;
  const skipReason = variant.skipCase?.(c);
  if (skipReason !== undefined) {
    t.skip(skipReason);
    return;
  }
  const tmp = await TmpDir.create(`${driverName}-`);
  const fdsBefore = new Set(readdirSync('/proc/self/fd'));
  const counts = new Map<string, number>();
  let raw: Driver | undefined;
  let failed = false;
  let made: VariantRoot | undefined;
  const cleanupErrors: string[] = [];
  try {
    made = variant.makeRoot !== undefined ? await variant.makeRoot(tmp) : undefined;
    const root = made !== undefined ? made.root : await tmp.mkdir('root', 0o700);
    await tmp.mkdir('scratch');
    try {
      raw = variant.driverFactory !== undefined ? await variant.driverFactory(root, variant.options) : await getDriver(driverName, root, variant.options);
    } catch (err) {
      if (isTryNext(err)) {
        t.skip(`${driverName} [${variant.label}] cannot init here: ${err.message}`);
        return;
      }
      throw err;
    }
    await c.run({ driver: tracked(raw, counts), raw, driverName, root, tmp, t });
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    if (raw !== undefined) {
      for (const [id, n] of counts) {
        for (let i = 0; i < n; i++) {
          try {
            await raw.put(id);
          } catch (err) {
            cleanupErrors.push(`put(${JSON.stringify(id)}) during cleanup: ${(err as Error).message}`);
          }
        }
      }
      try {
        await raw.cleanup();
      } catch (err) {
        cleanupErrors.push(`cleanup(): ${(err as Error).message}`);
      }
    }
    // The library must not leave file descriptors open on anything of the case's.
    for (const fd of readdirSync('/proc/self/fd')) {
      if (fdsBefore.has(fd)) continue;
      let target = '';
      try { target = readlinkSync(`/proc/self/fd/${fd}`); } catch { continue; } // closed meanwhile
      if (target.startsWith(tmp.path)) cleanupErrors.push(`file descriptor ${fd} left open on ${target}`);
    }
    if (made !== undefined) {
      try {
        await made.teardown();
      } catch (err) {
        cleanupErrors.push(`root teardown: ${(err as Error).message}`);
      }
    }
    await tmp.cleanup();
    // Report cleanup failures only when the case itself passed (else they hide the real error).
    if (!failed && cleanupErrors.length > 0) throw new Error(cleanupErrors.join('\n'));
  }
}

/** Registers the conformance suite for `driverName` with node:test, once per variant. */
export function runDriverSuite(driverName: string, variants: Variant[] = [{ label: 'default', options: [] }]): void {
  for (const variant of variants) {
    describe(`${driverName} conformance [${variant.label}]`, { skip: variant.skip ?? false }, () => {
      if (variant.before !== undefined) before(variant.before);
      if (variant.after !== undefined) after(variant.after);
      for (const c of cases) {
        test(c.name, { timeout: 300_000 }, (t) => runCase(t, driverName, variant, c));
      }
    });
  }
}
