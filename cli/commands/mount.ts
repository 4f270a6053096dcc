// mount.ts: `mount ID` and `umount ID`, the driver's get and put across processes.
//
// get/put are counted inside one driver instance, i.e. inside one process. `graphdriver mount`
// is its own process, so it gets the layer, prints the path and exits WITHOUT put or the
// driver's cleanup(): for a driver that mounts (overlay2, overlay) the kernel mount stays; for
// vfs and btrfs the path is a plain directory and nothing is held. A later `graphdriver umount
// ID` starts with a count of zero, where a bare put() would throw NotMountedError, so it does
// get() (overlay2 and overlay take over a mount an earlier process left rather than stacking
// another) and then put() (the count goes 1 -> 0 and the driver unmounts, unless a live process
// holds the layer's in-use lock). Counts therefore do not add up across exited processes: any
// number of `mount` runs leave one mount; one `umount` ends it.
import type { Command } from '../command';
import { stringOpt } from '../command';

const CROSS_PROCESS = 'Counting: the library counts get/put inside one process. `mount` exits without releasing: with a driver that '
  + 'mounts (overlay2, overlay) the mount stays after the process ends; with vfs and btrfs the path is a plain directory and nothing stays held. '
  + '`umount ID` in a later process takes over that mount (the driver\'s get adopts an existing mount instead of stacking one) and '
  + 'releases it at once (put). So counts do not carry across processes: several `mount` runs leave one mount, and one `umount` '
  + 'releases it, unless a live process has the layer got through the library (its in-use lock keeps the mount). Within one program, use the library\'s get/put pairs.';

export const mount: Command = {
  name: 'mount',
  args: 'ID',
  summary: 'mount a layer (driver get) and print its path; stays mounted after exit',
  description: `Gets layer ID and prints the absolute path of its full tree (its changes over all its parents), writable. ${CROSS_PROCESS}`,
  options: { 'mount-label': { type: 'string', arg: 'LABEL', help: 'SELinux mount label' } },
  min: 1,
  max: 1,
  async run(ctx, [id], opts) {
    const driver = await ctx.driver();
    const label = stringOpt(opts, 'mount-label');
    const where = await driver.get(id!, label);
    ctx.keepMounts = true; // the driver's cleanup() would unmount what the user asked for
    ctx.print({ id, path: where, driver: driver.name }, where);
  },
};

export const umount: Command = {
  name: 'umount',
  args: 'ID',
  summary: 'release a layer mounted by `graphdriver mount` (driver get + put)',
  description: `Releases layer ID: for overlay2 and overlay, unmounts it if mounted; for vfs and btrfs there is nothing to release and this only checks the layer exists. ${CROSS_PROCESS}`,
  min: 1,
  max: 1,
  async run(ctx, [id]) {
    const driver = await ctx.driver();
    await driver.get(id!);
    await driver.put(id!);
    ctx.print({ id, released: true }, id!);
  },
};
