// statfs.cc: statfs(2), every field of struct statfs. Async. f_type is returned as an
// unsigned 32-bit number so magic numbers like 0x9123683E compare equal to FsMagic values.
#include <sys/statfs.h>

#include <cerrno>
#include <cstring>

#include "napi_util.h"

namespace gd {

// statfs(path, &buf) — man 2 statfs
static Napi::Value JS_statfs(const Napi::CallbackInfo& info) {
  std::string path;
  if (!ArgString(info, 0, "path", &path)) return info.Env().Undefined();
  return Worker<struct statfs>::Run(
      info.Env(),
      [path](struct statfs* st) {
        if (::statfs(path.c_str(), st) != 0) return Fail(errno, "statfs", path);
        return Ok();
      },
      [](Napi::Env env, struct statfs* st) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        auto n = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
        n("f_type", static_cast<double>(static_cast<uint32_t>(st->f_type)));
        n("f_bsize", static_cast<double>(st->f_bsize));
        n("f_blocks", static_cast<double>(st->f_blocks));
        n("f_bfree", static_cast<double>(st->f_bfree));
        n("f_bavail", static_cast<double>(st->f_bavail));
        n("f_files", static_cast<double>(st->f_files));
        n("f_ffree", static_cast<double>(st->f_ffree));
        Napi::Array fsid = Napi::Array::New(env, 2);
        int raw[2];
        static_assert(sizeof(raw) == sizeof(st->f_fsid), "fsid is two ints");
        std::memcpy(raw, &st->f_fsid, sizeof(raw));
        fsid.Set(0u, Napi::Number::New(env, static_cast<double>(static_cast<uint32_t>(raw[0]))));
        fsid.Set(1u, Napi::Number::New(env, static_cast<double>(static_cast<uint32_t>(raw[1]))));
        o.Set("f_fsid", fsid);
        n("f_namelen", static_cast<double>(st->f_namelen));
        n("f_frsize", static_cast<double>(st->f_frsize));
        n("f_flags", static_cast<double>(st->f_flags));
        return o;
      });
}

void InitStatfs(Napi::Env env, Napi::Object exports) {
  exports.Set("statfs", Napi::Function::New(env, JS_statfs, "statfs"));
}

}  // namespace gd
