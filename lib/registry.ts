// registry.ts: driver registration and selection, as the Docker engine does it.
//   register(name, init)          each driver module registers itself once
//   getDriver(name, root, opts)   init(root/name, opts); unknown name -> NotSupportedError
//   newDriver(root, opts, sel)    explicit name (argument, then $DOCKER_DRIVER) > the one
//                                 driver whose home already holds layers > the priority list,
//                                 skipping drivers whose init throws a "try next" error >
//                                 any other registered driver.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Driver, InitFunc } from './driver';
import { DriverSelectionError, NotSupportedError, hasCode, isTryNextError } from './errors';

/** Tells whether a driver's home already holds layers (for prior-driver detection). */
export type HasLayersFunc = (home: string) => Promise<boolean>;

interface Registration {
  init: InitFunc;
  hasLayers: HasLayersFunc;
}

/**
 * The default order of preference. btrfs only inits on a btrfs home, so it can go first;
 * overlay2 is the modern default; vfs, which works everywhere but copies whole trees, is last.
 */
export const priority: readonly string[] = Object.freeze(['btrfs', 'overlay2', 'aufs', 'overlay', 'devicemapper', 'vfs']);

const drivers = new Map<string, Registration>();

/** A directory that exists and has at least one entry. The default layer probe. */
export async function isNonEmptyDir(dir: string): Promise<boolean> {
  try {
    const d = await fsp.opendir(dir);
    try {
      return (await d.read()) !== null;
    } finally {
      await d.close();
    }
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** Registers a driver. Throws DriverSelectionError if the name is already taken. */
export function register(name: string, init: InitFunc, hasLayers: HasLayersFunc = isNonEmptyDir): void {
  if (typeof name !== 'string' || name === '' || name.includes('/')) {
    throw new TypeError(`Expected a driver name without '/' but received ${JSON.stringify(name)}`);
  }
  if (typeof init !== 'function') throw new TypeError(`Expected an init function for driver ${name}`);
  if (drivers.has(name)) throw new DriverSelectionError(`a driver named ${JSON.stringify(name)} is already registered`);
  drivers.set(name, { init, hasLayers });
}

/** The names of all registered drivers, in registration order. */
export function registeredDrivers(): string[] {
  return [...drivers.keys()];
}

function checkOptions(options: unknown): asserts options is string[] {
  if (!Array.isArray(options) || options.some((o) => typeof o !== 'string')) {
    throw new TypeError('Expected an array of "key=value" strings for options');
  }
}

/** Inits the driver `name` with home `root/name`. Unknown names throw NotSupportedError. */
export async function getDriver(name: string, root: string, options: string[] = []): Promise<Driver> {
  if (typeof root !== 'string' || !path.isAbsolute(root)) {
    throw new TypeError(`Expected an absolute path for root but received ${JSON.stringify(root)}`);
  }
  checkOptions(options);
  const reg = drivers.get(name);
  if (reg === undefined) throw new NotSupportedError(`storage driver ${JSON.stringify(name)} is not registered`);
  return reg.init(path.join(root, name), options);
}

export interface SelectionOptions {
  /** Use this driver and no other (before $DOCKER_DRIVER). */
  name?: string;
  /** The order to try drivers in; defaults to `priority`. */
  priority?: readonly string[];
}

/** Selects and inits a driver for `root` by the engine's rules (see the file header). */
export async function newDriver(root: string, options: string[] = [], selection: SelectionOptions = {}): Promise<Driver> {
  if (typeof root !== 'string' || !path.isAbsolute(root)) {
    throw new TypeError(`Expected an absolute path for root but received ${JSON.stringify(root)}`);
  }
  checkOptions(options);
  const explicit = selection.name !== undefined && selection.name !== '' ? selection.name : process.env.DOCKER_DRIVER;
  if (explicit !== undefined && explicit !== '') return getDriver(explicit, root, options);

  const prior: string[] = [];
  for (const [name, reg] of drivers) {
    if (await reg.hasLayers(path.join(root, name))) prior.push(name);
  }
  if (prior.length > 1) {
    throw new DriverSelectionError(
      `${root} contains several graphdrivers: ${prior.join(', ')}; remove all but one or choose one explicitly (name or DOCKER_DRIVER)`);
  }
  if (prior.length === 1) return getDriver(prior[0]!, root, options);

  const order = selection.priority ?? priority;
  const tried = new Set<string>();
  const skipped: string[] = [];
  const attempt = async (name: string): Promise<Driver | undefined> => {
    tried.add(name);
    try {
      return await getDriver(name, root, options);
    } catch (err) {
      if (isTryNextError(err)) {
        skipped.push(`${name}: ${(err as Error).message}`);
        return undefined;
      }
      throw err;
    }
  };
  for (const name of order) {
    if (!drivers.has(name) || tried.has(name)) continue;
    const d = await attempt(name);
    if (d !== undefined) return d;
  }
  for (const name of drivers.keys()) {
    if (tried.has(name)) continue;
    const d = await attempt(name);
    if (d !== undefined) return d;
  }
  throw new DriverSelectionError(`no supported storage driver found${skipped.length ? ` (${skipped.join('; ')})` : ''}`);
}

/** For tests: forget a registration. Not exported from the package root. */
export function unregisterForTest(name: string): boolean {
  return drivers.delete(name);
}
