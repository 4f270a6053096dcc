// index.ts: the public API, exports only. Importing the package registers every driver.
export { ChangeKind, isApplyGuard } from './driver';
export type { ApplyGuard, Change, CreateOptions, Driver, InitFunc, ProtoDriver } from './driver';
export { register, getDriver, newDriver, priority, registeredDrivers } from './registry';
export type { HasLayersFunc, SelectionOptions } from './registry';
export { NaiveDiffDriver } from './naive-diff';
export {
  ArchiveError, DriverSelectionError, GraphdriverError, IncompatibleFsError, InvalidIdError, InvalidOptionError,
  LayerBusyError, LayerExistsError, LayerNotFoundError, MkfsError, MountLimitError, NotMountedError, NotSupportedError, PrerequisitesError, SyscallError,
  ThinPoolError, CorruptMetadataError, InvalidArgumentError,
} from './errors';
export { FsMagic, fsName, getFsMagic } from './fsmagic';

import './drivers/vfs';
import './drivers/btrfs';
import './drivers/overlay2';
import './drivers/overlay';
import './drivers/aufs';
import './drivers/devicemapper';
