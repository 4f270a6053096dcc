// demo.ts: `graphdriver demo` (and `npm start`), the README's "see it work" command. On a fresh
// temporary root (mkdtemp under $TMPDIR; --root is not used) it selects the best driver this
// machine supports (newDriver; --driver and DOCKER_DRIVER still apply), applies the three
// tarballs shipped in demo/ as a 3-layer image, creates a container layer on top, mounts it
// (get), prints the merged tree and each layer's changes, writes into the container and prints
// its changes and diff size. Everything is undone in `finally`, on failure or Ctrl-C too: put
// what was got, remove the layers, the driver's cleanup(), then the temporary root.
import { createReadStream, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Driver, newDriver } from '../../lib/index';
import type { Command } from '../command';
import { CliError, DriverInitError } from '../errors';
import { humanSize } from '../progress';
import { formatTree, listTree } from '../tree';
import { byPath, CHANGE_LETTER, CHANGE_NAME } from './common';

/** The shipped tarballs: <package>/demo/, from dist/cli/commands/. */
export const DEMO_DIR = path.resolve(__dirname, '..', '..', '..', 'demo');

const IMAGE: ReadonlyArray<{ id: string; tar: string; what: string }> = [
  { id: 'demo-base', tar: 'base.tar', what: 'a small root filesystem' },
  { id: 'demo-changes', tar: 'changes.tar', what: 'adds /app, modifies /etc/motd, deletes /etc/old.conf' },
  { id: 'demo-opaque', tar: 'opaque.tar', what: 'makes /var/cache/app opaque, adds fresh.db' },
];
const CONTAINER = 'demo-container';

export const demo: Command = {
  name: 'demo',
  args: '',
  summary: 'build a 3-layer image and a container on a temporary root, show it, clean up',
  description: 'A tour of the library on a throwaway root under $TMPDIR (--root is ignored): selects the best driver for this machine '
    + '(--driver / DOCKER_DRIVER override), applies demo/base.tar, demo/changes.tar and demo/opaque.tar as a 3-layer image, '
    + 'creates a container layer on top, mounts it and prints the merged tree and every layer\'s changes, writes a file in the '
    + 'container and prints its changes and diff size. Everything is removed afterwards, also on failure or Ctrl-C. Needs root.',
  min: 0,
  max: 0,
  async run(ctx) {
    const say = (lines: string | readonly string[]): void => { if (!ctx.globals.json) ctx.print(null, lines); };
    const report: Record<string, unknown> = {};
    const root = await fsp.realpath(await fsp.mkdtemp(path.join(os.tmpdir(), 'graphdriver-demo-')));
    let driver: Driver | undefined;
    const made: string[] = [];
    const got: string[] = [];
    let failure: unknown;
    try {
      const explicit = ctx.globals.driver;
      try {
        driver = await newDriver(root, ctx.globals.storageOpts, explicit !== undefined ? { name: explicit } : {});
      } catch (err) {
        throw new DriverInitError(`no storage driver could be initialised for the demo: ${err instanceof Error ? err.message : String(err)}`, err);
      }
      report.driver = driver.name;
      report.root = root;
      say([`graphdriver demo: driver ${driver.name} on a temporary root ${root}`, '']);

      const layers: unknown[] = [];
      let parent = '';
      for (const layer of IMAGE) {
        ctx.signal.throwIfAborted();
        const file = path.join(DEMO_DIR, layer.tar);
        const st = await fsp.stat(file).catch(() => undefined);
        if (st === undefined) throw new CliError(`the demo tarball ${file} is missing from the package`);
        await driver.create(layer.id, parent);
        made.push(layer.id);
        const size = await driver.applyDiff(layer.id, parent, createReadStream(file));
        layers.push({ id: layer.id, parent, tar: file, tarBytes: st.size, applied: size });
        say(`layer ${layer.id.padEnd(13)} <- demo/${layer.tar.padEnd(12)} ${humanSize(st.size).padStart(8)} tar, ${humanSize(size).padStart(8)} applied  (${layer.what})`);
        parent = layer.id;
      }
      report.layers = layers;

      ctx.signal.throwIfAborted();
      await driver.create(CONTAINER, parent);
      made.push(CONTAINER);
      const rootfs = await driver.get(CONTAINER);
      got.push(CONTAINER);
      say([`container ${CONTAINER} on ${parent}, mounted at ${rootfs}`, '', 'merged tree of the container:']);
      const tree = await listTree(rootfs);
      report.tree = tree;
      say(formatTree(tree));

      const layerChanges: Record<string, unknown> = {};
      parent = '';
      for (const layer of IMAGE) {
        ctx.signal.throwIfAborted();
        const list = byPath(await driver.changes(layer.id, parent));
        layerChanges[layer.id] = list.map((c) => ({ kind: CHANGE_NAME[c.kind], path: c.path }));
        say(['', `changes of ${layer.id}${parent === '' ? '' : ` (against ${parent})`}:`, ...list.map((c) => `  ${CHANGE_LETTER[c.kind]} ${c.path}`)]);
        parent = layer.id;
      }
      report.changes = layerChanges;

      ctx.signal.throwIfAborted();
      await fsp.mkdir(path.join(rootfs, 'srv'), { mode: 0o755 });
      await fsp.writeFile(path.join(rootfs, 'srv', 'notes.txt'), 'written by the container\n'.repeat(40));
      await fsp.writeFile(path.join(rootfs, 'etc', 'hostname'), 'demo-container\n');
      const ctrChanges = byPath(await driver.changes(CONTAINER, parent));
      const size = await driver.diffSize(CONTAINER, parent);
      report.container = { id: CONTAINER, parent, changes: ctrChanges.map((c) => ({ kind: CHANGE_NAME[c.kind], path: c.path })), diffSize: size };
      say(['', `the container writes /srv/notes.txt and /etc/hostname; changes of ${CONTAINER}:`,
        ...ctrChanges.map((c) => `  ${CHANGE_LETTER[c.kind]} ${c.path}`), '', `diff size of ${CONTAINER}: ${size} bytes (${humanSize(size)})`]);
    } catch (err) {
      failure = err;
    }
    // Clean-up runs whatever happened above; its own failures are reported after the first one.
    const problems: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try { await fn(); } catch (err) { problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`); }
    };
    if (driver !== undefined) {
      const d = driver;
      for (const id of got.reverse()) await attempt(`put ${id}`, () => d.put(id));
      // remove() also takes a layer left incomplete by a failed apply (exists() says false for those).
      for (const id of made.reverse()) {
        await attempt(`remove ${id}`, () => d.remove(id).catch((err: unknown) => {
          if ((err as { code?: unknown }).code !== 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND') throw err;
        }));
      }
      await attempt('cleanup', () => d.cleanup());
    }
    await attempt(`rm ${root}`, () => fsp.rm(root, { recursive: true, force: true }));
    if (failure !== undefined) {
      for (const p of problems) ctx.io.stderr.write(`graphdriver: demo clean-up: ${p}\n`);
      throw failure;
    }
    if (problems.length > 0) throw new CliError(`demo clean-up failed: ${problems.join('; ')}`);
    report.cleanedUp = true;
    if (ctx.globals.json) ctx.print(report, []);
    else say(['', `cleaned up: layers removed, driver cleaned up, ${root} deleted`]);
  },
};
