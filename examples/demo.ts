// demo.ts: a short tour of the library on a throwaway root — select a driver, import a base
// layer from a tar, stack a container layer, change it, and show its changes and diff size.
// Run as root: `npm run demo` (or `node dist/examples/demo.js [driver]`).
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ChangeKind, newDriver } from '../lib/index';

async function main(): Promise<void> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'graphdriver-demo-'));
  const driver = await newDriver(root, [], process.argv[2] ? { name: process.argv[2] } : {});
  console.log(`driver: ${driver.name} in ${root}`);
  try {
    // A base layer from a tar made by the library itself: build it in a scratch layer.
    await driver.create('scratch');
    const scratch = await driver.get('scratch');
    await fsp.mkdir(path.join(scratch, 'etc'));
    await fsp.writeFile(path.join(scratch, 'etc', 'motd'), 'hello from the base layer\n');
    await fsp.writeFile(path.join(scratch, 'etc', 'old'), 'to be deleted\n');
    await driver.put('scratch');
    const tarBytes: Buffer[] = [];
    for await (const chunk of (await driver.diff('scratch', '')) as Readable) tarBytes.push(chunk as Buffer);
    await driver.create('base');
    const applied = await driver.applyDiff('base', '', Readable.from([Buffer.concat(tarBytes)]));
    console.log(`base: applied ${applied} bytes from a ${Buffer.concat(tarBytes).length}-byte tar`);

    await driver.create('container', 'base');
    const rootfs = await driver.get('container');
    await fsp.appendFile(path.join(rootfs, 'etc', 'motd'), 'and from the container\n');
    await fsp.rm(path.join(rootfs, 'etc', 'old'));
    await fsp.writeFile(path.join(rootfs, 'new-file'), 'x'.repeat(1000));
    await driver.put('container');

    for (const c of await driver.changes('container', 'base')) console.log(`  ${ChangeKind[c.kind].padEnd(6)} ${c.path}`);
    console.log(`diffSize(container, base) = ${await driver.diffSize('container', 'base')}`);
    for (const [k, v] of await driver.status()) console.log(`status: ${k}: ${v}`);
  } finally {
    for (const id of ['container', 'base', 'scratch']) if (await driver.exists(id)) await driver.remove(id);
    await driver.cleanup();
    await fsp.rm(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
