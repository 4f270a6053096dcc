// kill-worker.ts: the victim of the kill test. It opens driver argv[3] on root argv[2] and runs
// create / applyDiff (the tar at argv[4]) / get+put / remove on layers L0..L9 (all children of
// 'base') in a loop until it is killed. It prints nothing; the test judges the store afterwards.
import { createReadStream } from 'node:fs';
import { getDriver } from '../../lib/index';

async function main(): Promise<void> {
  const [root, driverName, tar] = process.argv.slice(2);
  const d = await getDriver(driverName!, root!);
  for (;;) {
    const id = `L${Math.floor(Math.random() * 10)}`;
    try {
      switch (Math.floor(Math.random() * 4)) {
        case 0: await d.create(id, 'base'); break;
        case 1: await d.applyDiff(id, 'base', createReadStream(tar!, { highWaterMark: 1 << 20 })); break;
        case 2: await d.get(id); await d.put(id); break;
        default: await d.remove(id);
      }
    } catch {
      // exists / not found / busy: the loop goes on; the kill decides when it ends
    }
  }
}

void main();
