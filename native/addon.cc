// addon.cc: module init only. Each syscall family registers its own functions.
#include "napi_util.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  gd::InitMount(env, exports);
  gd::InitMountApi(env, exports);
  gd::InitStatfs(env, exports);
  gd::InitXattr(env, exports);
  gd::InitInode(env, exports);
  gd::InitResolve(env, exports);
  gd::InitCopy(env, exports);
  gd::InitApply(env, exports);
  gd::InitScan(env, exports);
  gd::InitRead(env, exports);
  gd::InitCopyTree(env, exports);
  gd::InitBtrfs(env, exports);
  gd::InitQuota(env, exports);
  return exports;
}

NODE_API_MODULE(graphdriver, Init)
