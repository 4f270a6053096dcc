// info.ts: `graphdriver info`: which driver was selected and why (explicit --driver, the
// DOCKER_DRIVER environment variable, a driver whose home already held state, or the priority
// list), the backing filesystem of its home, and the driver's own status pairs.
import * as path from 'node:path';
import { fsName, getFsMagic, priority, registeredDrivers } from '../../lib/index';
import type { Command } from '../command';

export const info: Command = {
  name: 'info',
  args: '',
  summary: 'show the selected driver, why it was chosen, its backing filesystem and status',
  description: 'Selects a driver for --root exactly as every other command does and reports it. Selection: --driver NAME, else '
    + '$DOCKER_DRIVER (reason "explicit" / "env"; an init failure is an error, not a fallback); else a driver whose home '
    + '(<root>/<name>) already holds state ("prior"); else the first driver of the priority list that initialises here ("priority").',
  min: 0,
  max: 0,
  async run(ctx) {
    const driver = await ctx.driver();
    const sel = await ctx.selection();
    const home = path.join(ctx.globals.root, driver.name);
    const backingFs = fsName(await getFsMagic(home));
    const status = await driver.status();
    const value = {
      driver: driver.name,
      reason: sel.reason,
      detail: sel.detail,
      root: ctx.globals.root,
      home,
      backingFs,
      storageOpts: ctx.globals.storageOpts,
      status: Object.fromEntries(status),
      registered: registeredDrivers(),
      priority: [...priority],
    };
    const width = Math.max(...status.map(([k]) => k.length), 0);
    ctx.print(value, [
      `Driver:             ${driver.name}`,
      `Selected by:        ${sel.reason} (${sel.detail})`,
      `Root:               ${ctx.globals.root}`,
      `Home:               ${home}`,
      `Backing Filesystem: ${backingFs}`,
      ...(ctx.globals.storageOpts.length > 0 ? [`Storage options:    ${ctx.globals.storageOpts.join(' ')}`] : []),
      `Registered drivers: ${registeredDrivers().join(', ')}`,
      'Status:',
      ...status.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
    ]);
  },
};
