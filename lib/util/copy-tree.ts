// copy-tree.ts: an exact copy of a directory tree, as vfs needs to start a layer from its
// parent. Keeps everything `cp -a` keeps and more: file data (reflink first), every mode bit
// (setuid/setgid/sticky included), owners, xattrs of every namespace root can list
// (user, trusted, security incl. security.capability, system ACLs), hardlinks as hardlinks,
// symlink targets byte for byte, char/block devices, fifos, sockets, and nanosecond
// atime/mtime (a directory's after its children are written).
//
// The walk and every per-entry syscall run in the addon in one call (native/copytree.cc: a
// pool round trip per syscall would cost more than the copy of a small file); here the
// destination is prepared and the roots are opened. Never follows a symlink in src, not even
// the root: every name is looked up relative to an fd of its parent with O_NOFOLLOW /
// AT_SYMLINK_NOFOLLOW. Must not: spawn processes, touch anything outside src and dst, or leave
// an fd open when it returns or throws.
//
// Order per entry, and why: data first (writing clears setuid and security.capability), then
// chown (which also clears them), then chmod, then xattrs (an ACL set before chmod would be
// overwritten by it; a default ACL set before the children exist would change their modes),
// then times (everything before bumps mtime/ctime; ctime cannot be set at all).
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import { SyscallError, hasCode } from '../errors';
import * as native from '../native';
import { C } from '../native';

const DIR_OPEN_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;

/**
 * Copies the tree at `src` (a directory, not a symlink) to `dst`, which must not exist or be
 * an empty directory. dst's root gets src root's mode, owner, xattrs and times too.
 * On failure dst is left partly written; the caller removes it.
 */
export async function copyTree(src: string, dst: string): Promise<void> {
  if (typeof src !== 'string' || src === '') throw new TypeError('Expected a non-empty string for src');
  if (typeof dst !== 'string' || dst === '') throw new TypeError('Expected a non-empty string for dst');
  const srcFd = await native.open(src, DIR_OPEN_FLAGS, 0);
  try {
    await prepareDestination(dst);
    const dstFd = await native.open(dst, DIR_OPEN_FLAGS, 0);
    try {
      await native.copyTreeInto(srcFd, dstFd);
    } finally {
      native.closeSync(dstFd);
    }
  } finally {
    native.closeSync(srcFd);
  }
}

/** Makes dst (mode 0700 until the copy sets src's) or checks that it is an empty directory. */
async function prepareDestination(dst: string): Promise<void> {
  try {
    await fsp.mkdir(dst, 0o700);
    return;
  } catch (err) {
    if (!hasCode(err, 'EEXIST')) throw err;
  }
  const st = await fsp.lstat(dst);
  if (!st.isDirectory()) throw errnoError('ENOTDIR', 'copyTree', dst, 'destination is not a directory');
  if ((await fsp.readdir(dst)).length > 0) {
    throw errnoError('ENOTEMPTY', 'copyTree', dst, 'destination directory is not empty');
  }
}

function errnoError(code: string, syscall: string, where: string, message: string): SyscallError {
  const errno = (os.constants.errno as Record<string, number | undefined>)[code] ?? 0;
  return new SyscallError(`${code}: ${message}, ${syscall} '${where}'`, { code, errno: -errno, syscall, path: where });
}
