// mounts.ts: pure functions from a layer's record to the mount(2) calls get() needs, and the
// codec of the `layers/<id>` file. No filesystem access and no syscalls: mount/apply.ts
// (applyMountSequence) makes the calls these return.
//
// The aufs mount of a layer with parents, as the engine makes it (daemon/graphdriver/aufs
// aufsMount):
//   1. mount("none", mnt/<id>, "aufs", 0,
//        "br:<diff/id>=rw:<diff/p1>=ro+wh:<diff/p2>=ro+wh:...,dio,xino=/dev/shm/aufs.xino[,dirperm1][,context=\"L\"]")
//      with as many ancestors, nearest first, as fit: the whole data string, options and label
//      included, must be at most one page minus its NUL (4095 bytes). A branch is taken whole or
//      not at all, so when the page ends inside a branch's path or inside its `=ro+wh` suffix,
//      that branch and every one after it go to step 2 (the order of branches is kept).
//   2. for each remaining ancestor, in order, one
//      mount("none", mnt/<id>, "aufs", MS_REMOUNT, "append:<diff/pN>=ro+wh[,context=\"L\"]").
// The engine reserves a fixed 54 bytes (+9 for dirperm1) for the options and now batches
// several `append:` per remount; here the options are counted byte for byte and each remount
// appends one branch, so the first call is filled exactly to the page.
import { MountLimitError } from '../../errors';
import { MOUNT_DATA_MAX } from '../../mount/apply';
import { type MountSpec, contextOption, mountData } from '../../mount/spec';
import { MS } from '../../native';
import { validateId } from '../../util/ids';

export const AUFS_TYPE = 'aufs';
export const AUFS_SOURCE = 'none';
export const DIO_OPTION = 'dio';
export const XINO_OPTION = 'xino=/dev/shm/aufs.xino';
export const DIRPERM1_OPTION = 'dirperm1';

/** What one layer's union mount is made of. */
export interface AufsMountInput {
  /** The layer's own diff dir: the writable top branch. */
  rw: string;
  /** The ancestors' diff dirs, nearest first: read-only branches that keep whiteouts. */
  ro: readonly string[];
  /** The mount point (mnt/<id>). */
  target: string;
  /** Whether the kernel's aufs takes `dirperm1` (probed at init). */
  dirperm1: boolean;
  mountLabel?: string;
  /** Longest data string of one call; default one page minus the NUL (4095). For tests. */
  maxData?: number;
}

/** `:<dir>=ro+wh`, a read-only branch (whiteouts honoured) as it follows another in `br:`. */
export function roBranch(dir: string): string {
  return `:${dir}=ro+wh`;
}

/** The options after the branch list of the first call, in the engine's order. */
export function firstCallOptions(dirperm1: boolean, mountLabel?: string): string[] {
  const out = [DIO_OPTION, XINO_OPTION];
  if (dirperm1) out.push(DIRPERM1_OPTION);
  if (mountLabel !== undefined && mountLabel !== '') out.push(contextOption(mountLabel));
  return out;
}

/**
 * The mount(2) calls that build the union of `input`: the first mounts, each later one is an
 * MS_REMOUNT appending one branch (see the file header). MountLimitError when even the writable
 * branch with the options, or one `append:` call, is longer than a page.
 */
export function aufsMounts(input: AufsMountInput): MountSpec[] {
  const max = input.maxData ?? MOUNT_DATA_MAX;
  const options = firstCallOptions(input.dirperm1, input.mountLabel);
  const label = input.mountLabel !== undefined && input.mountLabel !== '' ? [contextOption(input.mountLabel)] : [];
  const base = { type: AUFS_TYPE, source: AUFS_SOURCE, target: input.target };
  let branches = `br:${input.rw}=rw`;
  // Bytes of the first call's data: branches, then ',' + each option.
  const optionBytes = options.reduce((n, o) => n + 1 + Buffer.byteLength(o), 0);
  let bytes = Buffer.byteLength(branches) + optionBytes;
  if (bytes > max) {
    throw new MountLimitError(`aufs: the writable branch ${input.rw} with its options is ${bytes} bytes, over the page-size limit of ${max}`);
  }
  let index = 0;
  for (; index < input.ro.length; index++) {
    const branch = roBranch(input.ro[index]!);
    const len = Buffer.byteLength(branch);
    if (bytes + len > max) break;
    branches += branch;
    bytes += len;
  }
  const calls: MountSpec[] = [{ ...base, options: [branches, ...options], flags: 0 }];
  for (; index < input.ro.length; index++) {
    const spec: MountSpec = { ...base, options: [`append:${input.ro[index]!}=ro+wh`, ...label], flags: MS.MS_REMOUNT };
    const n = Buffer.byteLength(mountData(spec));
    if (n > max) throw new MountLimitError(`aufs: appending the branch ${input.ro[index]!} takes ${n} bytes of mount data, over the page-size limit of ${max}`);
    calls.push(spec);
  }
  return calls;
}

/** The dirperm1 probe's mount (the engine's useDirperm): one branch, dirperm1 and xino. */
export function dirperm1ProbeMount(branch: string, target: string): MountSpec {
  return { type: AUFS_TYPE, source: AUFS_SOURCE, target, options: [`br:${branch}`, DIRPERM1_OPTION, XINO_OPTION], flags: 0 };
}

/** The layers file of a child of `parent` whose own layers file lists `parentAncestors`. */
export function formatLayersFile(parent: string, parentAncestors: readonly string[]): string {
  if (parent === '') return '';
  return [parent, ...parentAncestors].map((id) => `${id}\n`).join('');
}

/** Decodes a layers file into ids (nearest first); empty lines are skipped, as the engine does. Throws on an invalid id. */
export function parseLayersFile(text: string): string[] {
  const ids = text.split('\n').filter((line) => line !== '');
  for (const id of ids) validateId(id, 'ancestor in a layers file');
  return ids;
}
