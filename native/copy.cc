// copy.cc: file data copies between two open fds: ioctl(FICLONE) for a reflink where the
// filesystem shares extents (btrfs, xfs), copy_file_range(2) otherwise. Async. Which one to
// try first is the caller's choice (lib/util/copy-tree.ts).
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "napi_util.h"

namespace gd {

// ioctl(dstFd, FICLONE, srcFd) — man 2 ioctl_ficlone
static Napi::Value JS_ficlone(const Napi::CallbackInfo& info) {
  int64_t src = 0, dst = 0;
  if (!ArgInt(info, 0, "srcFd", &src) || !ArgInt(info, 1, "dstFd", &dst)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::ioctl(static_cast<int>(dst), FICLONE, static_cast<int>(src)) != 0)
      return Fail(errno, "ioctl", "", "", "ioctl(" + std::to_string(dst) + ", FICLONE, " + std::to_string(src) + ")");
    return Ok();
  });
}

// copy_file_range(srcFd, NULL, dstFd, NULL, len, 0) until len bytes or EOF — man 2 copy_file_range.
// Resolves to the number of bytes copied.
static Napi::Value JS_copyFileRange(const Napi::CallbackInfo& info) {
  int64_t src = 0, dst = 0;
  uint64_t length = 0;
  if (!ArgInt(info, 0, "srcFd", &src) || !ArgInt(info, 1, "dstFd", &dst) || !ArgUint(info, 2, "length", &length))
    return info.Env().Undefined();
  struct Copied { uint64_t n = 0; };
  return Worker<Copied>::Run(info.Env(), [=](Copied* c) {
    while (c->n < length) {
      ssize_t r = ::copy_file_range(static_cast<int>(src), nullptr, static_cast<int>(dst), nullptr,
                                    static_cast<size_t>(length - c->n), 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        return Fail(errno, "copy_file_range", "", "",
                    "copy_file_range(" + std::to_string(src) + ", NULL, " + std::to_string(dst) + ", NULL, " +
                    std::to_string(length - c->n) + ", 0)");
      }
      if (r == 0) break;
      c->n += static_cast<uint64_t>(r);
    }
    return Ok();
  }, [](Napi::Env env, Copied* c) -> Napi::Value { return Napi::Number::New(env, static_cast<double>(c->n)); });
}

void InitCopy(Napi::Env env, Napi::Object exports) {
  exports.Set("ficlone", Napi::Function::New(env, JS_ficlone, "ficlone"));
  exports.Set("copyFileRange", Napi::Function::New(env, JS_copyFileRange, "copyFileRange"));
}

}  // namespace gd
