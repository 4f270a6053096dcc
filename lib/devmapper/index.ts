// devmapper/: device-mapper and loop devices over the addon (native/dm.cc, native/loop.cc),
// thin and typed, without driver policy. `dm` and `loop` as namespaces, device numbers and
// nodes from devno.
export * as dm from './dm';
export * as loop from './loop';
export { blockDeviceNode, devString, isNodeOf, kernelDevName, parseDevString, sameDev, splitDev } from './devno';
export type { BlockNodeOptions } from './devno';
export type { DevNo, DmInfo, DmListEntry, DmTableStatus, DmTarget, DmTargetSpec, DmVersion, LoopStatus } from '../native';
export type { DeviceRef, ThinPoolStatus, ThinStatus, TableDev } from './dm';
export type { AttachOptions, FoundLoop, LoopDevice, LoopTarget } from './loop';
