// xattr.cc: extended attributes with binary values. The l* variants act on a path without
// following a final symlink; the f* variants act on an open fd; getxattr/setxattr follow
// (used on /proc/self/fd/N of an O_PATH fd, which names that exact inode). Async.
#include <sys/xattr.h>

#include <cerrno>
#include <vector>

#include "napi_util.h"

namespace gd {

namespace {

struct Bytes {
  std::string data;
};

// Reads a variable-size value: ask for the size, read, and retry if it grew meanwhile.
template <typename Call>
SysFailure ReadSized(Call call, std::string* out, const char* syscall, const std::string& path,
                     const std::string& name) {
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t size = call(nullptr, 0);
    if (size < 0) return Fail(errno, syscall, path, "", std::string(syscall) + "(" + Quote(path) + (name.empty() ? "" : ", " + Quote(name)) + ")");
    out->resize(static_cast<size_t>(size));
    if (size == 0) return Ok();
    ssize_t got = call(&(*out)[0], out->size());
    if (got >= 0) {
      out->resize(static_cast<size_t>(got));
      return Ok();
    }
    if (errno != ERANGE) return Fail(errno, syscall, path, "", std::string(syscall) + "(" + Quote(path) + (name.empty() ? "" : ", " + Quote(name)) + ")");
  }
  return Fail(ERANGE, syscall, path);
}

Napi::Value ToBuffer(Napi::Env env, Bytes* b) {
  return Napi::Buffer<char>::Copy(env, b->data.data(), b->data.size());
}

Napi::Value ToNameList(Napi::Env env, Bytes* b) {
  Napi::Array names = Napi::Array::New(env);
  uint32_t n = 0;
  size_t start = 0;
  const std::string& d = b->data;
  while (start < d.size()) {
    size_t end = d.find('\0', start);
    if (end == std::string::npos) end = d.size();
    if (end > start) names.Set(n++, Napi::String::New(env, d.substr(start, end - start)));
    start = end + 1;
  }
  return names;
}

std::string FdLabel(int64_t fd) { return "fd " + std::to_string(fd); }

}  // namespace

// lgetxattr(path, name, value, size) — man 2 lgetxattr
static Napi::Value JS_lgetxattr(const Napi::CallbackInfo& info) {
  std::string path, name;
  if (!ArgString(info, 0, "path", &path) || !ArgString(info, 1, "name", &name)) return info.Env().Undefined();
  return Worker<Bytes>::Run(info.Env(), [=](Bytes* b) {
    return ReadSized([&](char* buf, size_t n) { return ::lgetxattr(path.c_str(), name.c_str(), buf, n); },
                     &b->data, "lgetxattr", path, name);
  }, ToBuffer);
}

// getxattr(path, name, value, size) — man 2 getxattr (follows symlinks)
static Napi::Value JS_getxattr(const Napi::CallbackInfo& info) {
  std::string path, name;
  if (!ArgString(info, 0, "path", &path) || !ArgString(info, 1, "name", &name)) return info.Env().Undefined();
  return Worker<Bytes>::Run(info.Env(), [=](Bytes* b) {
    return ReadSized([&](char* buf, size_t n) { return ::getxattr(path.c_str(), name.c_str(), buf, n); },
                     &b->data, "getxattr", path, name);
  }, ToBuffer);
}

// fgetxattr(fd, name, value, size) — man 2 fgetxattr
static Napi::Value JS_fgetxattr(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  std::string name;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgString(info, 1, "name", &name)) return info.Env().Undefined();
  return Worker<Bytes>::Run(info.Env(), [=](Bytes* b) {
    return ReadSized([&](char* buf, size_t n) { return ::fgetxattr(static_cast<int>(fd), name.c_str(), buf, n); },
                     &b->data, "fgetxattr", FdLabel(fd), name);
  }, ToBuffer);
}

// llistxattr(path, list, size) — man 2 llistxattr
static Napi::Value JS_llistxattr(const Napi::CallbackInfo& info) {
  std::string path;
  if (!ArgString(info, 0, "path", &path)) return info.Env().Undefined();
  return Worker<Bytes>::Run(info.Env(), [=](Bytes* b) {
    return ReadSized([&](char* buf, size_t n) { return ::llistxattr(path.c_str(), buf, n); },
                     &b->data, "llistxattr", path, "");
  }, ToNameList);
}

// listxattr(path, list, size) — man 2 listxattr (follows symlinks)
static Napi::Value JS_listxattr(const Napi::CallbackInfo& info) {
  std::string path;
  if (!ArgString(info, 0, "path", &path)) return info.Env().Undefined();
  return Worker<Bytes>::Run(info.Env(), [=](Bytes* b) {
    return ReadSized([&](char* buf, size_t n) { return ::listxattr(path.c_str(), buf, n); },
                     &b->data, "listxattr", path, "");
  }, ToNameList);
}

// flistxattr(fd, list, size) — man 2 flistxattr
static Napi::Value JS_flistxattr(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  return Worker<Bytes>::Run(info.Env(), [=](Bytes* b) {
    return ReadSized([&](char* buf, size_t n) { return ::flistxattr(static_cast<int>(fd), buf, n); },
                     &b->data, "flistxattr", FdLabel(fd), "");
  }, ToNameList);
}

// lsetxattr(path, name, value, size, flags) — man 2 lsetxattr
static Napi::Value JS_lsetxattr(const Napi::CallbackInfo& info) {
  std::string path, name, value;
  int64_t flags = 0;
  if (!ArgString(info, 0, "path", &path) || !ArgString(info, 1, "name", &name) ||
      !ArgBuffer(info, 2, "value", &value) || !ArgInt(info, 3, "flags", &flags)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), static_cast<int>(flags)) != 0)
      return Fail(errno, "lsetxattr", path, "", "lsetxattr(" + Quote(path) + ", " + Quote(name) + ")");
    return Ok();
  });
}

// setxattr(path, name, value, size, flags) — man 2 setxattr (follows symlinks)
static Napi::Value JS_setxattr(const Napi::CallbackInfo& info) {
  std::string path, name, value;
  int64_t flags = 0;
  if (!ArgString(info, 0, "path", &path) || !ArgString(info, 1, "name", &name) ||
      !ArgBuffer(info, 2, "value", &value) || !ArgInt(info, 3, "flags", &flags)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::setxattr(path.c_str(), name.c_str(), value.data(), value.size(), static_cast<int>(flags)) != 0)
      return Fail(errno, "setxattr", path, "", "setxattr(" + Quote(path) + ", " + Quote(name) + ")");
    return Ok();
  });
}

// fsetxattr(fd, name, value, size, flags) — man 2 fsetxattr
static Napi::Value JS_fsetxattr(const Napi::CallbackInfo& info) {
  int64_t fd = 0, flags = 0;
  std::string name, value;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgString(info, 1, "name", &name) ||
      !ArgBuffer(info, 2, "value", &value) || !ArgInt(info, 3, "flags", &flags)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::fsetxattr(static_cast<int>(fd), name.c_str(), value.data(), value.size(), static_cast<int>(flags)) != 0)
      return Fail(errno, "fsetxattr", FdLabel(fd), "", "fsetxattr(" + std::to_string(fd) + ", " + Quote(name) + ")");
    return Ok();
  });
}

// lremovexattr(path, name) — man 2 lremovexattr
static Napi::Value JS_lremovexattr(const Napi::CallbackInfo& info) {
  std::string path, name;
  if (!ArgString(info, 0, "path", &path) || !ArgString(info, 1, "name", &name)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::lremovexattr(path.c_str(), name.c_str()) != 0)
      return Fail(errno, "lremovexattr", path, "", "lremovexattr(" + Quote(path) + ", " + Quote(name) + ")");
    return Ok();
  });
}

void InitXattr(Napi::Env env, Napi::Object exports) {
  exports.Set("lgetxattr", Napi::Function::New(env, JS_lgetxattr, "lgetxattr"));
  exports.Set("getxattr", Napi::Function::New(env, JS_getxattr, "getxattr"));
  exports.Set("fgetxattr", Napi::Function::New(env, JS_fgetxattr, "fgetxattr"));
  exports.Set("llistxattr", Napi::Function::New(env, JS_llistxattr, "llistxattr"));
  exports.Set("listxattr", Napi::Function::New(env, JS_listxattr, "listxattr"));
  exports.Set("flistxattr", Napi::Function::New(env, JS_flistxattr, "flistxattr"));
  exports.Set("lsetxattr", Napi::Function::New(env, JS_lsetxattr, "lsetxattr"));
  exports.Set("setxattr", Napi::Function::New(env, JS_setxattr, "setxattr"));
  exports.Set("fsetxattr", Napi::Function::New(env, JS_fsetxattr, "fsetxattr"));
  exports.Set("lremovexattr", Napi::Function::New(env, JS_lremovexattr, "lremovexattr"));
  Napi::Object c = Napi::Object::New(env);
  c.Set("XATTR_CREATE", Napi::Number::New(env, XATTR_CREATE));
  c.Set("XATTR_REPLACE", Napi::Number::New(env, XATTR_REPLACE));
  exports.Set("xattrConstants", c);
}

}  // namespace gd
