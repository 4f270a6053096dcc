// fsops.h: fixed fd-relative sequences shared by native families (no JS types here).
#ifndef GRAPHDRIVER_NATIVE_FSOPS_H_
#define GRAPHDRIVER_NATIVE_FSOPS_H_

#include <string>

#include "napi_util.h"

namespace gd {

// Removes `name` under `dirfd` depth-first without ever following a symlink; a missing name
// is success. Implemented in resolve.cc.
SysFailure RemoveAllAt(int dirfd, const std::string& name, int depth);

}  // namespace gd

#endif  // GRAPHDRIVER_NATIVE_FSOPS_H_
