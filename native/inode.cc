// inode.cc: fd-relative inode operations Node's fs lacks or only offers by path:
// mknod(at) for devices, fifos and overlay whiteouts, mkdirat, symlinkat, linkat, unlinkat,
// renameat2, readlinkat, fstatat, fchownat, fchmod(at), utimensat with nanoseconds.
// A dirfd of AT_FDCWD (-100) makes the name cwd-relative. Async. No path joining here.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/syscall.h>

#include <cerrno>

#include "napi_util.h"

namespace gd {

namespace {
std::string At(int64_t dirfd, const std::string& name) {
  return (dirfd == AT_FDCWD ? std::string("AT_FDCWD") : std::to_string(dirfd)) + ", " + Quote(name);
}
}  // namespace

// mknod(path, mode, makedev(major, minor)) — man 2 mknod
static Napi::Value JS_mknod(const Napi::CallbackInfo& info) {
  std::string path;
  uint64_t mode = 0, major = 0, minor = 0;
  if (!ArgString(info, 0, "path", &path) || !ArgUint(info, 1, "mode", &mode) ||
      !ArgUint(info, 2, "major", &major) || !ArgUint(info, 3, "minor", &minor)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::mknod(path.c_str(), static_cast<mode_t>(mode), makedev(major, minor)) != 0)
      return Fail(errno, "mknod", path);
    return Ok();
  });
}

// mknodat(dirfd, name, mode, makedev(major, minor)) — man 2 mknodat
static Napi::Value JS_mknodat(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0;
  std::string name;
  uint64_t mode = 0, major = 0, minor = 0;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "name", &name) ||
      !ArgUint(info, 2, "mode", &mode) || !ArgUint(info, 3, "major", &major) ||
      !ArgUint(info, 4, "minor", &minor)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::mknodat(static_cast<int>(dirfd), name.c_str(), static_cast<mode_t>(mode), makedev(major, minor)) != 0)
      return Fail(errno, "mknodat", name, "", "mknodat(" + At(dirfd, name) + ", " + std::to_string(mode) + ")");
    return Ok();
  });
}

// mkdirat(dirfd, name, mode) — man 2 mkdirat
static Napi::Value JS_mkdirat(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0;
  std::string name;
  uint64_t mode = 0;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "name", &name) ||
      !ArgUint(info, 2, "mode", &mode)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::mkdirat(static_cast<int>(dirfd), name.c_str(), static_cast<mode_t>(mode)) != 0)
      return Fail(errno, "mkdirat", name, "", "mkdirat(" + At(dirfd, name) + ")");
    return Ok();
  });
}

// symlinkat(target, dirfd, name) — man 2 symlinkat
static Napi::Value JS_symlinkat(const Napi::CallbackInfo& info) {
  std::string target, name;
  int64_t dirfd = 0;
  if (!ArgString(info, 0, "target", &target) || !ArgInt(info, 1, "dirfd", &dirfd) ||
      !ArgString(info, 2, "name", &name)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::symlinkat(target.c_str(), static_cast<int>(dirfd), name.c_str()) != 0)
      return Fail(errno, "symlinkat", name, target, "symlinkat(" + Quote(target) + ", " + At(dirfd, name) + ")");
    return Ok();
  });
}

// linkat(olddirfd, oldname, newdirfd, newname, flags) — man 2 linkat
static Napi::Value JS_linkat(const Napi::CallbackInfo& info) {
  int64_t olddirfd = 0, newdirfd = 0, flags = 0;
  std::string oldname, newname;
  if (!ArgInt(info, 0, "olddirfd", &olddirfd) || !ArgString(info, 1, "oldname", &oldname) ||
      !ArgInt(info, 2, "newdirfd", &newdirfd) || !ArgString(info, 3, "newname", &newname) ||
      !ArgInt(info, 4, "flags", &flags)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::linkat(static_cast<int>(olddirfd), oldname.c_str(), static_cast<int>(newdirfd), newname.c_str(),
                 static_cast<int>(flags)) != 0)
      return Fail(errno, "linkat", oldname, newname,
                  "linkat(" + At(olddirfd, oldname) + ", " + At(newdirfd, newname) + ", " + std::to_string(flags) + ")");
    return Ok();
  });
}

// unlinkat(dirfd, name, flags) — man 2 unlinkat
static Napi::Value JS_unlinkat(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0, flags = 0;
  std::string name;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "name", &name) ||
      !ArgInt(info, 2, "flags", &flags)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::unlinkat(static_cast<int>(dirfd), name.c_str(), static_cast<int>(flags)) != 0)
      return Fail(errno, "unlinkat", name, "", "unlinkat(" + At(dirfd, name) + ", " + std::to_string(flags) + ")");
    return Ok();
  });
}

// renameat2(olddirfd, oldname, newdirfd, newname, flags) — man 2 renameat2
static Napi::Value JS_renameat2(const Napi::CallbackInfo& info) {
  int64_t olddirfd = 0, newdirfd = 0, flags = 0;
  std::string oldname, newname;
  if (!ArgInt(info, 0, "olddirfd", &olddirfd) || !ArgString(info, 1, "oldname", &oldname) ||
      !ArgInt(info, 2, "newdirfd", &newdirfd) || !ArgString(info, 3, "newname", &newname) ||
      !ArgInt(info, 4, "flags", &flags)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::renameat2(static_cast<int>(olddirfd), oldname.c_str(), static_cast<int>(newdirfd), newname.c_str(),
                    static_cast<unsigned>(flags)) != 0)
      return Fail(errno, "renameat2", oldname, newname,
                  "renameat2(" + At(olddirfd, oldname) + ", " + At(newdirfd, newname) + ", " + std::to_string(flags) + ")");
    return Ok();
  });
}

// readlinkat(dirfd, name, buf, size) — man 2 readlinkat
static Napi::Value JS_readlinkat(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0;
  std::string name;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "name", &name)) return info.Env().Undefined();
  struct Target { std::string value; };
  return Worker<Target>::Run(info.Env(), [=](Target* t) {
    std::string buf(4096, '\0');
    ssize_t n = ::readlinkat(static_cast<int>(dirfd), name.c_str(), &buf[0], buf.size());
    if (n < 0) return Fail(errno, "readlinkat", name, "", "readlinkat(" + At(dirfd, name) + ")");
    buf.resize(static_cast<size_t>(n));
    t->value = buf;
    return Ok();
  }, [](Napi::Env env, Target* t) -> Napi::Value {
    return Napi::Buffer<char>::Copy(env, t->value.data(), t->value.size());
  });
}

// fstatat(dirfd, name, &st, flags) — man 2 fstatat. Times split into sec/nsec; ino as BigInt.
static Napi::Value JS_fstatat(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0, flags = 0;
  std::string name;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "name", &name) ||
      !ArgInt(info, 2, "flags", &flags)) return info.Env().Undefined();
  return Worker<struct stat>::Run(info.Env(), [=](struct stat* st) {
    if (::fstatat(static_cast<int>(dirfd), name.c_str(), st, static_cast<int>(flags)) != 0)
      return Fail(errno, "fstatat", name, "", "fstatat(" + At(dirfd, name) + ", " + std::to_string(flags) + ")");
    return Ok();
  }, [](Napi::Env env, struct stat* st) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    auto n = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
    n("dev", static_cast<double>(st->st_dev));
    o.Set("ino", Napi::BigInt::New(env, static_cast<uint64_t>(st->st_ino)));
    n("mode", st->st_mode);
    n("nlink", static_cast<double>(st->st_nlink));
    n("uid", st->st_uid);
    n("gid", st->st_gid);
    n("rdevMajor", major(st->st_rdev));
    n("rdevMinor", minor(st->st_rdev));
    n("size", static_cast<double>(st->st_size));
    n("blocks", static_cast<double>(st->st_blocks));
    n("atimeSec", static_cast<double>(st->st_atim.tv_sec));
    n("atimeNsec", static_cast<double>(st->st_atim.tv_nsec));
    n("mtimeSec", static_cast<double>(st->st_mtim.tv_sec));
    n("mtimeNsec", static_cast<double>(st->st_mtim.tv_nsec));
    n("ctimeSec", static_cast<double>(st->st_ctim.tv_sec));
    n("ctimeNsec", static_cast<double>(st->st_ctim.tv_nsec));
    return o;
  });
}

// fchownat(dirfd, name, uid, gid, flags) — man 2 fchownat
static Napi::Value JS_fchownat(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0, uid = 0, gid = 0, flags = 0;
  std::string name;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "name", &name) || !ArgInt(info, 2, "uid", &uid) ||
      !ArgInt(info, 3, "gid", &gid) || !ArgInt(info, 4, "flags", &flags)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::fchownat(static_cast<int>(dirfd), name.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid),
                   static_cast<int>(flags)) != 0)
      return Fail(errno, "fchownat", name, "", "fchownat(" + At(dirfd, name) + ", " + std::to_string(uid) + ", " +
                  std::to_string(gid) + ", " + std::to_string(flags) + ")");
    return Ok();
  });
}

// fchmodat(dirfd, name, mode, 0) — man 2 fchmodat (follows a final symlink; callers pass
// names they know are not symlinks, or use fchmod on an fd)
static Napi::Value JS_fchmodat(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0;
  uint64_t mode = 0;
  std::string name;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "name", &name) ||
      !ArgUint(info, 2, "mode", &mode)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::fchmodat(static_cast<int>(dirfd), name.c_str(), static_cast<mode_t>(mode), 0) != 0)
      return Fail(errno, "fchmodat", name, "", "fchmodat(" + At(dirfd, name) + ", 0" + std::to_string(mode) + ")");
    return Ok();
  });
}

// utimensat(dirfd, name, [atime, mtime], flags) — man 2 utimensat. An empty name with
// AT_EMPTY_PATH acts on dirfd itself.
static Napi::Value JS_utimensat(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0, as = 0, ans = 0, ms = 0, mns = 0, flags = 0;
  std::string name;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "name", &name) ||
      !ArgInt(info, 2, "atimeSec", &as) || !ArgInt(info, 3, "atimeNsec", &ans) ||
      !ArgInt(info, 4, "mtimeSec", &ms) || !ArgInt(info, 5, "mtimeNsec", &mns) ||
      !ArgInt(info, 6, "flags", &flags)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    struct timespec ts[2];
    ts[0].tv_sec = as; ts[0].tv_nsec = ans;
    ts[1].tv_sec = ms; ts[1].tv_nsec = mns;
    if (::utimensat(static_cast<int>(dirfd), name.c_str(), ts, static_cast<int>(flags)) != 0)
      return Fail(errno, "utimensat", name, "", "utimensat(" + At(dirfd, name) + ", " + std::to_string(flags) + ")");
    return Ok();
  });
}

void InitInode(Napi::Env env, Napi::Object exports) {
  exports.Set("mknod", Napi::Function::New(env, JS_mknod, "mknod"));
  exports.Set("mknodat", Napi::Function::New(env, JS_mknodat, "mknodat"));
  exports.Set("mkdirat", Napi::Function::New(env, JS_mkdirat, "mkdirat"));
  exports.Set("symlinkat", Napi::Function::New(env, JS_symlinkat, "symlinkat"));
  exports.Set("linkat", Napi::Function::New(env, JS_linkat, "linkat"));
  exports.Set("unlinkat", Napi::Function::New(env, JS_unlinkat, "unlinkat"));
  exports.Set("renameat2", Napi::Function::New(env, JS_renameat2, "renameat2"));
  exports.Set("readlinkat", Napi::Function::New(env, JS_readlinkat, "readlinkat"));
  exports.Set("fstatat", Napi::Function::New(env, JS_fstatat, "fstatat"));
  exports.Set("fchownat", Napi::Function::New(env, JS_fchownat, "fchownat"));
  exports.Set("fchmodat", Napi::Function::New(env, JS_fchmodat, "fchmodat"));
  exports.Set("utimensat", Napi::Function::New(env, JS_utimensat, "utimensat"));
}

}  // namespace gd
