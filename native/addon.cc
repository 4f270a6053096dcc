// addon.cc: module init only. Each syscall family registers its own functions.
#include "napi_util.h"

namespace gd {
// native/dm.cc and native/loop.cc (declared here to keep napi_util.h untouched).
void InitDm(Napi::Env env, Napi::Object exports);
void InitLoop(Napi::Env env, Napi::Object exports);
}  // namespace gd

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
  gd::InitDm(env, exports);
  gd::InitLoop(env, exports);
  gd::InitMkfsExt4(env, exports);
  return exports;
}

NODE_API_MODULE(graphdriver, Init)
