// errors.ts: every error class the library throws. Syscall failures are SyscallError, shaped
// like Node's own fs errors (code, errno, syscall, path, dest); driver-level conditions are
// GraphdriverError subclasses with stable ERR_GRAPHDRIVER_* codes. Callers branch on `code`.

/** A failed syscall or ioctl, shaped like Node's fs errors. `errno` is negative, as in Node. */
export class SyscallError extends Error {
  override name = 'SyscallError';
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  // `declare`: absent fields stay absent (not own properties set to undefined), as in Node's errors.
  declare readonly path?: string;
  declare readonly dest?: string;

  constructor(message: string, fields: { code: string; errno: number; syscall: string; path?: string; dest?: string }) {
    super(message);
    this.code = fields.code;
    this.errno = fields.errno;
    this.syscall = fields.syscall;
    if (fields.path !== undefined) (this as { path?: string }).path = fields.path;
    if (fields.dest !== undefined) (this as { dest?: string }).dest = fields.dest;
  }
}

/** Base class of the driver-level errors; `code` is stable across releases. */
export class GraphdriverError extends Error {
  override name = 'GraphdriverError';
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** The driver is not supported on this kernel or machine: try the next one. */
export class NotSupportedError extends GraphdriverError {
  override name = 'NotSupportedError';
  static readonly code = 'ERR_GRAPHDRIVER_NOT_SUPPORTED';
  constructor(message = 'driver not supported', options?: { cause?: unknown }) {
    super(NotSupportedError.code, message, options);
  }
}

/** A prerequisite is missing (e.g. the home is not on the filesystem the driver needs): try the next one. */
export class PrerequisitesError extends GraphdriverError {
  override name = 'PrerequisitesError';
  static readonly code = 'ERR_GRAPHDRIVER_PREREQUISITES';
  constructor(message = 'prerequisites for driver not satisfied (wrong filesystem?)', options?: { cause?: unknown }) {
    super(PrerequisitesError.code, message, options);
  }
}

/** The backing filesystem cannot host this driver (e.g. overlay on overlay): try the next one. */
export class IncompatibleFsError extends GraphdriverError {
  override name = 'IncompatibleFsError';
  static readonly code = 'ERR_GRAPHDRIVER_INCOMPATIBLE_FS';
  constructor(message = 'backing file system is unsupported for this graph driver', options?: { cause?: unknown }) {
    super(IncompatibleFsError.code, message, options);
  }
}

/** A layer id that is empty, too long, or contains `/` or NUL, or is `.` / `..`. */
export class InvalidIdError extends GraphdriverError {
  override name = 'InvalidIdError';
  static readonly code = 'ERR_GRAPHDRIVER_INVALID_ID';
  constructor(message: string) {
    super(InvalidIdError.code, message);
  }
}

/** The named layer does not exist (or is incomplete). */
export class LayerNotFoundError extends GraphdriverError {
  override name = 'LayerNotFoundError';
  static readonly code = 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND';
  readonly id: string;
  constructor(id: string, message = `layer ${JSON.stringify(id)} does not exist`) {
    super(LayerNotFoundError.code, message);
    this.id = id;
  }
}

/** create() of an id that already exists. */
export class LayerExistsError extends GraphdriverError {
  override name = 'LayerExistsError';
  static readonly code = 'ERR_GRAPHDRIVER_LAYER_EXISTS';
  readonly id: string;
  constructor(id: string) {
    super(LayerExistsError.code, `layer ${JSON.stringify(id)} already exists`);
    this.id = id;
  }
}

/** The layer is in use (got by another process) and cannot be removed now. */
export class LayerBusyError extends GraphdriverError {
  override name = 'LayerBusyError';
  static readonly code = 'ERR_GRAPHDRIVER_LAYER_BUSY';
  readonly id: string;
  constructor(id: string, message = `layer ${JSON.stringify(id)} is in use by another process`) {
    super(LayerBusyError.code, message);
    this.id = id;
  }
}

/** put() without a matching get(). */
export class NotMountedError extends GraphdriverError {
  override name = 'NotMountedError';
  static readonly code = 'ERR_GRAPHDRIVER_NOT_MOUNTED';
  constructor(id: string) {
    super(NotMountedError.code, `layer ${JSON.stringify(id)} is not got: put() without get()`);
  }
}

/** Selection found no usable driver, an unknown driver name, or a duplicate registration. */
export class DriverSelectionError extends GraphdriverError {
  override name = 'DriverSelectionError';
  static readonly code = 'ERR_GRAPHDRIVER_SELECTION';
  constructor(message: string, options?: { cause?: unknown }) {
    super(DriverSelectionError.code, message, options);
  }
}

/** A layer tar that is malformed or tries to act outside the layer. */
export class ArchiveError extends GraphdriverError {
  override name = 'ArchiveError';
  static readonly code = 'ERR_GRAPHDRIVER_ARCHIVE';
  declare readonly entry?: string;
  constructor(message: string, entry?: string, options?: { cause?: unknown }) {
    super(ArchiveError.code, entry !== undefined ? `${message}: ${JSON.stringify(entry)}` : message, options);
    if (entry !== undefined) (this as { entry?: string }).entry = entry;
  }
}

/** An option string (`key=value`) that is unknown or malformed. */
export class InvalidOptionError extends GraphdriverError {
  override name = 'InvalidOptionError';
  static readonly code = 'ERR_GRAPHDRIVER_INVALID_OPTION';
  constructor(message: string) {
    super(InvalidOptionError.code, message);
  }
}

/** A mount the kernel cannot take: too many lower layers, or an option string over its limit. */
export class MountLimitError extends GraphdriverError {
  override name = 'MountLimitError';
  static readonly code = 'ERR_GRAPHDRIVER_MOUNT_LIMIT';
  constructor(message: string) {
    super(MountLimitError.code, message);
  }
}

/**
 * mkfsExt4 failed for a reason that is not an errno (those stay SyscallError: ENOENT, EBUSY,
 * ENOSPC...): a libext2fs error code (`ext2Code`, e.g. 'EXT2_ET_TOOSMALL', the message being
 * libext2fs's own) or a size check against the device (no `ext2Code`). `syscall` names the
 * failing libext2fs call ('ext2fs_initialize', or 'mkfsExt4' for our own checks).
 */
export class MkfsError extends GraphdriverError {
  override name = 'MkfsError';
  static readonly code = 'ERR_GRAPHDRIVER_MKFS';
  readonly syscall: string;
  declare readonly path?: string;
  declare readonly ext2Code?: string;
  constructor(message: string, fields: { syscall: string; path?: string; ext2Code?: string }) {
    super(MkfsError.code, message);
    this.syscall = fields.syscall;
    if (fields.path !== undefined) (this as { path?: string }).path = fields.path;
    if (fields.ext2Code !== undefined) (this as { ext2Code?: string }).ext2Code = fields.ext2Code;
  }
}

/**
 * An argument the library refuses before making any call (e.g. a device-mapper name over 127
 * bytes or with '/'); `argument` names it.
 */
export class InvalidArgumentError extends GraphdriverError {
  override name = 'InvalidArgumentError';
  static readonly code = 'ERR_GRAPHDRIVER_INVALID_ARGUMENT';
  readonly argument: string;
  constructor(argument: string, message: string) {
    super(InvalidArgumentError.code, message);
    this.argument = argument;
  }
}

/**
 * The thin pool cannot take the operation: too little free data or metadata space
 * (dm.min_free_space), a pool in read-only or failed mode, or a pool that holds data this
 * home did not make. `pool` names the device-mapper pool.
 */
export class ThinPoolError extends GraphdriverError {
  override name = 'ThinPoolError';
  static readonly code = 'ERR_GRAPHDRIVER_THIN_POOL';
  constructor(readonly pool: string, message: string) {
    super(ThinPoolError.code, message);
  }
}

/** A driver's metadata file exists but is not what it must be; `path` names it. */
export class CorruptMetadataError extends GraphdriverError {
  override name = 'CorruptMetadataError';
  static readonly code = 'ERR_GRAPHDRIVER_CORRUPT_METADATA';
  constructor(readonly path: string, why: string) {
    super(CorruptMetadataError.code, `metadata file ${path} is corrupt: ${why}`);
  }
}

/** True when `err` is one of the three "try the next driver" errors of selection. */
export function isTryNextError(err: unknown): boolean {
  return err instanceof NotSupportedError || err instanceof PrerequisitesError || err instanceof IncompatibleFsError;
}

/** True for a SyscallError (or any Node fs error) with the given code. */
export function hasCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
