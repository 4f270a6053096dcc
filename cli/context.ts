// context.ts: what every command gets: the global options, stdio, the selected driver (opened
// on first use, with the reason it was chosen), the CLI's layer record, output in text or JSON,
// a progress meter, and an AbortSignal raised by SIGINT/SIGTERM. Driver selection goes through
// the public newDriver(); the reason is worked out beside it, never by re-implementing it.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { type Driver, newDriver, priority, registeredDrivers } from '../lib/index';
import { DriverInitError } from './errors';
import { LayerStore } from './metadata';
import { type MeterSink, Progress } from './progress';

export const DEFAULT_ROOT = '/var/lib/graphdriver';

/** The options every command takes. */
export interface Globals {
  root: string;
  driver?: string;
  storageOpts: string[];
  json: boolean;
  quiet: boolean;
}

/** The streams a run uses (the process's own, or fakes in tests). */
export interface Stdio {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & MeterSink & { isTTY?: boolean };
}

/** How the driver was chosen, as `info` reports it. */
export type SelectionReason = 'explicit' | 'env' | 'prior' | 'priority';

export interface Selection {
  reason: SelectionReason;
  /** One sentence saying why. */
  detail: string;
}

/** A directory with at least one entry (the registry's default "holds layers" probe). */
async function nonEmptyDir(dir: string): Promise<boolean> {
  try {
    return (await fsp.readdir(dir)).length > 0;
  } catch {
    return false;
  }
}

export class Ctx {
  readonly abort = new AbortController();
  /** Set by `mount`: the driver's cleanup() would undo the mount the user asked for. */
  keepMounts = false;
  private opened: { driver: Driver; selection: Selection } | undefined;
  private layerStore: LayerStore | undefined;

  constructor(readonly globals: Globals, readonly io: Stdio) {}

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Draw progress meters: stderr is a terminal, and neither --json nor --quiet. */
  get progressEnabled(): boolean {
    return this.io.stderr.isTTY === true && !this.globals.json && !this.globals.quiet;
  }

  /** A progress meter on stderr (a no-op one when progress is off). */
  progress(label: string, total?: number): Progress {
    return new Progress(this.io.stderr, label, this.progressEnabled, total);
  }

  /** The driver, selected on first use by the engine's rules (see `info`). */
  async driver(): Promise<Driver> {
    return (await this.open()).driver;
  }

  /** Why the driver was chosen. */
  async selection(): Promise<Selection> {
    return (await this.open()).selection;
  }

  /** The CLI's record of layers for the selected driver. */
  async store(): Promise<LayerStore> {
    if (this.layerStore === undefined) this.layerStore = new LayerStore(this.globals.root, (await this.driver()).name);
    return this.layerStore;
  }

  private async open(): Promise<{ driver: Driver; selection: Selection }> {
    if (this.opened !== undefined) return this.opened;
    const { root, storageOpts } = this.globals;
    const explicit = this.globals.driver;
    const env = process.env.DOCKER_DRIVER;
    const named = explicit !== undefined && explicit !== '' ? explicit : env !== undefined && env !== '' ? env : undefined;
    if (named !== undefined && !registeredDrivers().includes(named)) {
      throw new DriverInitError(`unknown storage driver ${JSON.stringify(named)}${explicit === named ? '' : ' (from DOCKER_DRIVER)'}; registered: ${registeredDrivers().join(', ')}`, undefined);
    }
    // Which homes held something before selection: the registry prefers such a driver.
    const before = new Map<string, boolean>();
    for (const name of registeredDrivers()) before.set(name, await nonEmptyDir(path.join(root, name)));
    let driver: Driver;
    try {
      driver = await newDriver(root, storageOpts, explicit !== undefined && explicit !== '' ? { name: explicit } : {});
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      const code = (err as { code?: unknown }).code;
      if (code === 'ERR_GRAPHDRIVER_INVALID_OPTION') throw err;
      throw new DriverInitError(named !== undefined
        ? `storage driver ${named} cannot be used on ${root}: ${why}`
        : `no storage driver could be initialised on ${root}: ${why}`, err);
    }
    let selection: Selection;
    if (explicit !== undefined && explicit !== '') {
      selection = { reason: 'explicit', detail: `named with --driver ${explicit}` };
    } else if (named !== undefined) {
      selection = { reason: 'env', detail: `named by DOCKER_DRIVER=${named}` };
    } else if (before.get(driver.name) === true) {
      selection = { reason: 'prior', detail: `${path.join(root, driver.name)} already held state from an earlier run` };
    } else {
      const order = [...priority.filter((n) => registeredDrivers().includes(n)), ...registeredDrivers().filter((n) => !priority.includes(n))];
      const skipped = order.slice(0, Math.max(0, order.indexOf(driver.name)));
      selection = {
        reason: 'priority',
        detail: `first of the priority list (${order.join(', ')}) to initialise on this root${skipped.length > 0 ? `; skipped as unsupported here: ${skipped.join(', ')}` : ''}`,
      };
    }
    this.opened = { driver, selection };
    return this.opened;
  }

  /** Releases what the driver holds (unless a command asked to keep mounts). Idempotent. */
  async close(): Promise<void> {
    const o = this.opened;
    this.opened = undefined;
    if (o !== undefined && !this.keepMounts) await o.driver.cleanup();
  }

  /** Prints `value` as one JSON line with --json, else `text` (lines). */
  print(value: unknown, text: string | readonly string[]): void {
    if (this.globals.json) {
      this.io.stdout.write(`${JSON.stringify(value)}\n`);
      return;
    }
    const lines = typeof text === 'string' ? [text] : text;
    if (lines.length > 0) this.io.stdout.write(`${lines.join('\n')}\n`);
  }

  /** A note on stderr for humans (suppressed by --json and --quiet). */
  note(line: string): void {
    if (!this.globals.json && !this.globals.quiet) this.io.stderr.write(`${line}\n`);
  }
}
