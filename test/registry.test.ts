// registry.test.ts: driver registration and selection (register, getDriver, newDriver) with
// small in-test drivers registered under unique names, whose init records its calls and throws
// the error a test chooses. Real drivers (vfs) are registered too, so each test passes its own
// priority list and a fresh root without their directories; the rules that depend on "every
// registered driver" run against an isolated copy of the registry module.
import * as assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import {
  DriverSelectionError, IncompatibleFsError, NotSupportedError, PrerequisitesError, getDriver, newDriver, priority,
  register, registeredDrivers,
} from '../lib/index';
import type { Change, Driver, HasLayersFunc } from '../lib/index';
import { unregisterForTest } from '../lib/registry';
import { withTmpDir } from './helpers/tmp';

type Registry = typeof import('../lib/registry');

/** A driver that only knows its name (selection never uses anything else). */
class NamedDriver implements Driver {
  constructor(readonly name: string, readonly home: string) {}
  toString(): string { return this.name; }
  private no(): never { throw new Error(`${this.name}: not part of this test`); }
  async create(): Promise<void> { this.no(); }
  async remove(): Promise<void> { this.no(); }
  async get(): Promise<string> { this.no(); }
  async put(): Promise<void> { this.no(); }
  async exists(): Promise<boolean> { this.no(); }
  async status(): Promise<Array<[string, string]>> { return []; }
  async cleanup(): Promise<void> {}
  async diff(): Promise<NodeJS.ReadableStream> { this.no(); }
  async changes(): Promise<Change[]> { this.no(); }
  async applyDiff(): Promise<number> { this.no(); }
  async diffSize(): Promise<number> { this.no(); }
}

/** Every init call of every test driver, by name, in call order. */
const initLog: string[] = [];

interface TestDriver {
  name: string;
  calls: Array<{ home: string; options: string[] }>;
}

/** Registers `test-<label>-<random>` whose init records the call, then throws `fails` or succeeds. */
function testDriver(t: TestContext, label: string, fails?: Error, hasLayers?: HasLayersFunc, reg: Pick<Registry, 'register' | 'unregisterForTest'> = { register, unregisterForTest }): TestDriver {
  const d: TestDriver = { name: `test-${label}-${randomBytes(4).toString('hex')}`, calls: [] };
  reg.register(d.name, async (home, options) => {
    d.calls.push({ home, options: [...options] });
    initLog.push(d.name);
    if (fails !== undefined) throw fails;
    return new NamedDriver(d.name, home);
  }, hasLayers);
  t.after(() => { reg.unregisterForTest(d.name); });
  return d;
}

/** Runs `fn` with DOCKER_DRIVER set to `value` (or unset), restoring it afterwards. */
async function withEnv<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.DOCKER_DRIVER;
  if (value === undefined) delete process.env.DOCKER_DRIVER;
  else process.env.DOCKER_DRIVER = value;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.DOCKER_DRIVER;
    else process.env.DOCKER_DRIVER = saved;
  }
}

/** A second, empty instance of the registry module (sharing the errors module, so instanceof holds). */
function isolatedRegistry(): Registry {
  const key = require.resolve('../lib/registry');
  const original = require.cache[key];
  delete require.cache[key];
  try {
    return require('../lib/registry') as Registry;
  } finally {
    if (original !== undefined) require.cache[key] = original;
  }
}

/** Gives `layerDir` (e.g. root/<name>) one entry, so the default probe sees layers there. */
async function holdLayers(dir: string): Promise<void> {
  await fsp.mkdir(path.join(dir, 'some-layer'), { recursive: true });
}

const notSupported = (): NotSupportedError => new NotSupportedError('test: not supported');

describe('registry: register and getDriver', () => {
  test('the default priority is the engine order', () => {
    assert.deepEqual([...priority], ['btrfs', 'overlay2', 'aufs', 'overlay', 'devicemapper', 'vfs']);
    assert.ok(Object.isFrozen(priority));
  });

  test('vfs registers itself on import', () => {
    assert.ok(registeredDrivers().includes('vfs'));
  });

  test('registering a taken name throws DriverSelectionError', (t) => {
    const a = testDriver(t, 'dup');
    assert.ok(registeredDrivers().includes(a.name));
    assert.throws(() => register(a.name, async (home) => new NamedDriver('x', home)),
      (e: unknown) => e instanceof DriverSelectionError && e.code === 'ERR_GRAPHDRIVER_SELECTION' && e.message.includes(a.name));
    assert.throws(() => register('vfs', async (home) => new NamedDriver('x', home)), DriverSelectionError);
  });

  test('register rejects names with "/" or empty names', () => {
    assert.throws(() => register('', async (home) => new NamedDriver('x', home)), TypeError);
    assert.throws(() => register('a/b', async (home) => new NamedDriver('x', home)), TypeError);
  });

  test('getDriver of an unknown name throws NotSupportedError', async () => {
    await assert.rejects(getDriver(`test-unknown-${randomBytes(4).toString('hex')}`, '/nonexistent-root'),
      (e: unknown) => e instanceof NotSupportedError && e.code === 'ERR_GRAPHDRIVER_NOT_SUPPORTED');
  });

  test('getDriver inits with home root/<name> and the options', async (t) => {
    const a = testDriver(t, 'get');
    const d = await getDriver(a.name, '/var/lib/test-root', ['k=v', 'x=y']);
    assert.equal(d.name, a.name);
    assert.deepEqual(a.calls, [{ home: path.join('/var/lib/test-root', a.name), options: ['k=v', 'x=y'] }]);
    await assert.rejects(getDriver(a.name, 'relative/root'), TypeError);
  });

  test('getDriver passes the init error through unchanged', async (t) => {
    const err = new PrerequisitesError('test: wrong fs');
    const a = testDriver(t, 'prereq', err);
    await assert.rejects(getDriver(a.name, '/r'), (e: unknown) => e === err);
  });
});

describe('registry: newDriver selection', () => {
  test('an explicit name argument wins over DOCKER_DRIVER, prior layers and priority', async (t) => {
    await withTmpDir(async (tmp) => {
      const a = testDriver(t, 'first');
      const b = testDriver(t, 'named');
      const c = testDriver(t, 'env');
      await holdLayers(tmp.join(a.name));
      const d = await withEnv(c.name, () => newDriver(tmp.path, ['o=1'], { name: b.name, priority: [a.name, c.name] }));
      assert.equal(d.name, b.name);
      assert.deepEqual(b.calls, [{ home: tmp.join(b.name), options: ['o=1'] }]);
      assert.equal(a.calls.length + c.calls.length, 0);
    });
  });

  test('DOCKER_DRIVER wins when no name is given', async (t) => {
    await withTmpDir(async (tmp) => {
      const a = testDriver(t, 'first');
      const c = testDriver(t, 'env');
      await holdLayers(tmp.join(a.name));
      const d = await withEnv(c.name, () => newDriver(tmp.path, [], { priority: [a.name] }));
      assert.equal(d.name, c.name);
      assert.equal(a.calls.length, 0);
      await assert.rejects(withEnv(`test-nope-${randomBytes(3).toString('hex')}`, () => newDriver(tmp.path, [], { priority: [a.name] })),
        NotSupportedError);
      assert.equal(a.calls.length, 0, 'an unknown DOCKER_DRIVER fell back to selection');
    });
  });

  test('a driver whose home holds layers is chosen even if not first in priority', async (t) => {
    await withTmpDir(async (tmp) => {
      const a = testDriver(t, 'a');
      const b = testDriver(t, 'b');
      const c = testDriver(t, 'c');
      await fsp.mkdir(tmp.join(a.name)); // exists but empty: no layers
      await holdLayers(tmp.join(b.name));
      const d = await withEnv(undefined, () => newDriver(tmp.path, ['x=1'], { priority: [a.name, c.name, b.name] }));
      assert.equal(d.name, b.name);
      assert.deepEqual(b.calls, [{ home: tmp.join(b.name), options: ['x=1'] }]);
      assert.equal(a.calls.length + c.calls.length, 0);
    });
  });

  test('a custom hasLayers probe (register third argument) decides prior drivers', async (t) => {
    await withTmpDir(async (tmp) => {
      const probed: string[] = [];
      const a = testDriver(t, 'a');
      const b = testDriver(t, 'probe', undefined, async (home) => { probed.push(home); return true; });
      const d = await withEnv(undefined, () => newDriver(tmp.path, [], { priority: [a.name] }));
      assert.equal(d.name, b.name);
      assert.deepEqual(probed, [tmp.join(b.name)]);
      assert.equal(a.calls.length, 0);
    });
  });

  test('a prior driver whose init fails is an error, not a fallback', async (t) => {
    await withTmpDir(async (tmp) => {
      const a = testDriver(t, 'a');
      const b = testDriver(t, 'broken', notSupported());
      await holdLayers(tmp.join(b.name));
      await assert.rejects(withEnv(undefined, () => newDriver(tmp.path, [], { priority: [a.name] })),
        (e: unknown) => e instanceof NotSupportedError);
      assert.equal(b.calls.length, 1);
      assert.equal(a.calls.length, 0, 'fell back to the priority list');
    });
  });

  test('two drivers holding layers is an error naming both', async (t) => {
    await withTmpDir(async (tmp) => {
      const a = testDriver(t, 'a');
      const b = testDriver(t, 'b');
      await holdLayers(tmp.join(a.name));
      await holdLayers(tmp.join(b.name));
      await assert.rejects(withEnv(undefined, () => newDriver(tmp.path, [], { priority: [a.name, b.name] })),
        (e: unknown) => e instanceof DriverSelectionError && e.message.includes(a.name) && e.message.includes(b.name));
      assert.equal(a.calls.length + b.calls.length, 0);
    });
  });

  test('priority skips not-supported, prerequisites and incompatible-fs, in order', async (t) => {
    await withTmpDir(async (tmp) => {
      const a = testDriver(t, 'ns', notSupported());
      const b = testDriver(t, 'pre', new PrerequisitesError('test: prerequisites'));
      const c = testDriver(t, 'inc', new IncompatibleFsError('test: incompatible'));
      const d4 = testDriver(t, 'ok');
      const e5 = testDriver(t, 'later');
      const d = await withEnv(undefined, () => newDriver(tmp.path, ['p=q'], { priority: [a.name, b.name, c.name, d4.name, e5.name] }));
      const mine = new Set([a, b, c, d4, e5].map((x) => x.name));
      const order = initLog.filter((n) => mine.has(n));
      assert.equal(d.name, d4.name);
      assert.deepEqual(order, [a.name, b.name, c.name, d4.name]);
      assert.deepEqual(d4.calls, [{ home: tmp.join(d4.name), options: ['p=q'] }]);
    });
  });

  test('any other init error stops selection and propagates', async (t) => {
    await withTmpDir(async (tmp) => {
      const boom = new Error('test: boom');
      const a = testDriver(t, 'boom', boom);
      const b = testDriver(t, 'ok');
      await assert.rejects(withEnv(undefined, () => newDriver(tmp.path, [], { priority: [a.name, b.name] })), (e: unknown) => e === boom);
      assert.equal(b.calls.length, 0);
    });
  });

  test('with priority [] selection still finds a registered driver', async (t) => {
    await withTmpDir(async (tmp) => {
      const a = testDriver(t, 'ns', notSupported());
      const d = await withEnv(undefined, () => newDriver(tmp.path, [], { priority: [] }));
      try {
        assert.ok(registeredDrivers().includes(d.name), `${d.name} is not registered`);
        assert.notEqual(d.name, a.name);
        // vfs registered on import, before any test driver, and inits anywhere.
        assert.equal(d.name, registeredDrivers()[0]);
        assert.equal(a.calls.length, 0, 'a driver registered after the chosen one was tried');
      } finally {
        await d.cleanup();
      }
    });
  });
});

describe('registry: selection over an isolated registry', () => {
  test('after the priority list, registered drivers are tried in registration order, each once', async (t) => {
    const reg = isolatedRegistry();
    assert.deepEqual(reg.registeredDrivers(), []);
    const f = testDriver(t, 'ns', notSupported(), undefined, reg);
    const g = testDriver(t, 'g', undefined, undefined, reg);
    const h = testDriver(t, 'h', undefined, undefined, reg);
    await withTmpDir(async (tmp) => {
      const d1 = await withEnv(undefined, () => reg.newDriver(tmp.path, [], { priority: [] }));
      assert.equal(d1.name, g.name);
      assert.deepEqual([f.calls.length, g.calls.length, h.calls.length], [1, 1, 0]);
      const d2 = await withEnv(undefined, () => reg.newDriver(tmp.path, [], { priority: ['test-unregistered', f.name] }));
      assert.equal(d2.name, g.name);
      assert.deepEqual([f.calls.length, g.calls.length, h.calls.length], [2, 2, 0], 'f was tried twice in one selection');
      const d3 = await withEnv(undefined, () => reg.newDriver(tmp.path, [], { priority: [h.name] }));
      assert.equal(d3.name, h.name);
    });
  });

  test('nothing usable is a DriverSelectionError naming what was skipped', async (t) => {
    const reg = isolatedRegistry();
    const f = testDriver(t, 'ns', notSupported(), undefined, reg);
    const p = testDriver(t, 'pre', new PrerequisitesError('test: prerequisites'), undefined, reg);
    await withTmpDir(async (tmp) => {
      await assert.rejects(withEnv(undefined, () => reg.newDriver(tmp.path, [], { priority: [p.name] })),
        (e: unknown) => e instanceof DriverSelectionError && e.code === 'ERR_GRAPHDRIVER_SELECTION' &&
          e.message.includes(f.name) && e.message.includes(p.name));
      assert.deepEqual([f.calls.length, p.calls.length], [1, 1]);
      const empty = isolatedRegistry();
      await assert.rejects(withEnv(undefined, () => empty.newDriver(tmp.path, [], {})), DriverSelectionError);
    });
  });
});
