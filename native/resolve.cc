// resolve.cc: file descriptors as root handles for the archive engine: open, openat,
// openat2 (RESOLVE_IN_ROOT / RESOLVE_BENEATH confinement by the kernel), close, fchmod,
// fchown, syncfs, flock, and removeAllAt — a fixed, fd-relative recursive removal that never follows a
// symlink. Async. Path policy (which resolve flags, which names) lives in lib/archive/root.ts.
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "fsops.h"
#include "napi_util.h"

namespace gd {

namespace {
struct Fd { int fd = -1; };
Napi::Value FdToJs(Napi::Env env, Fd* r) { return Napi::Number::New(env, r->fd); }
}  // namespace

// Depth-first removal of `name` under `dirfd`. Each directory is opened with
// O_NOFOLLOW|O_DIRECTORY relative to its parent's fd, so a symlink is unlinked, never entered.
SysFailure RemoveAllAt(int dirfd, const std::string& name, int depth) {
  if (depth > 4096) return Fail(ELOOP, "removeAllAt", name);
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Ok();
    return Fail(errno, "fstatat", name);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) return Fail(errno, "unlinkat", name);
    return Ok();
  }
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Fail(errno, "openat", name);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return Fail(err, "fdopendir", name);
  }
  SysFailure result = Ok();
  for (;;) {
    errno = 0;
    struct dirent* ent = ::readdir(dir);
    if (ent == nullptr) {
      if (errno != 0) result = Fail(errno, "readdir", name);
      break;
    }
    std::string child = ent->d_name;
    if (child == "." || child == "..") continue;
    result = RemoveAllAt(::dirfd(dir), child, depth + 1);
    if (result.err != 0) {
      if (!result.path.empty()) result.path = name + "/" + result.path;
      break;
    }
  }
  ::closedir(dir);
  if (result.err != 0) return result;
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) return Fail(errno, "unlinkat", name);
  return Ok();
}

// open(path, flags, mode) — man 2 open
static Napi::Value JS_open(const Napi::CallbackInfo& info) {
  std::string path;
  int64_t flags = 0, mode = 0;
  if (!ArgString(info, 0, "path", &path) || !ArgInt(info, 1, "flags", &flags) ||
      !ArgInt(info, 2, "mode", &mode)) return info.Env().Undefined();
  return Worker<Fd>::Run(info.Env(), [=](Fd* r) {
    r->fd = ::open(path.c_str(), static_cast<int>(flags) | O_CLOEXEC, static_cast<mode_t>(mode));
    if (r->fd < 0) return Fail(errno, "open", path, "", "open(" + Quote(path) + ", " + std::to_string(flags) + ")");
    return Ok();
  }, FdToJs);
}

// openat(dirfd, name, flags, mode) — man 2 openat
static Napi::Value JS_openat(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0, flags = 0, mode = 0;
  std::string name;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "name", &name) ||
      !ArgInt(info, 2, "flags", &flags) || !ArgInt(info, 3, "mode", &mode)) return info.Env().Undefined();
  return Worker<Fd>::Run(info.Env(), [=](Fd* r) {
    r->fd = ::openat(static_cast<int>(dirfd), name.c_str(), static_cast<int>(flags) | O_CLOEXEC, static_cast<mode_t>(mode));
    if (r->fd < 0)
      return Fail(errno, "openat", name, "",
                  "openat(" + std::to_string(dirfd) + ", " + Quote(name) + ", " + std::to_string(flags) + ")");
    return Ok();
  }, FdToJs);
}

// openat2(dirfd, path, {flags, mode, resolve}, sizeof how) — man 2 openat2
static Napi::Value JS_openat2(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0, flags = 0, mode = 0, resolve = 0;
  std::string path;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "path", &path) ||
      !ArgInt(info, 2, "flags", &flags) || !ArgInt(info, 3, "mode", &mode) ||
      !ArgInt(info, 4, "resolve", &resolve)) return info.Env().Undefined();
  return Worker<Fd>::Run(info.Env(), [=](Fd* r) {
    struct open_how how = {};
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
    how.mode = static_cast<uint64_t>(mode);
    how.resolve = static_cast<uint64_t>(resolve);
    long fd = ::syscall(SYS_openat2, static_cast<int>(dirfd), path.c_str(), &how, sizeof(how));
    if (fd < 0)
      return Fail(errno, "openat2", path, "",
                  "openat2(" + std::to_string(dirfd) + ", " + Quote(path) + ", {flags: " + std::to_string(flags) +
                  ", resolve: " + std::to_string(resolve) + "})");
    r->fd = static_cast<int>(fd);
    return Ok();
  }, FdToJs);
}

// close(fd) — man 2 close. Synchronous: it never blocks on these fds (dirs, O_PATH).
static Napi::Value JS_closeSync(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  if (::close(static_cast<int>(fd)) != 0) {
    MakeErrnoError(info.Env(), Fail(errno, "close", "", "", "close(" + std::to_string(fd) + ")")).ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

// fchmod(fd, mode) — man 2 fchmod
static Napi::Value JS_fchmod(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  uint64_t mode = 0;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgUint(info, 1, "mode", &mode)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::fchmod(static_cast<int>(fd), static_cast<mode_t>(mode)) != 0)
      return Fail(errno, "fchmod", "", "", "fchmod(" + std::to_string(fd) + ", " + std::to_string(mode) + ")");
    return Ok();
  });
}

// fchown(fd, uid, gid) — man 2 fchown
static Napi::Value JS_fchown(const Napi::CallbackInfo& info) {
  int64_t fd = 0, uid = 0, gid = 0;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgInt(info, 1, "uid", &uid) || !ArgInt(info, 2, "gid", &gid))
    return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::fchown(static_cast<int>(fd), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0)
      return Fail(errno, "fchown", "", "", "fchown(" + std::to_string(fd) + ")");
    return Ok();
  });
}

// flock(fd, operation) — man 2 flock. Async: LOCK_EX without LOCK_NB waits for the holder.
static Napi::Value JS_flock(const Napi::CallbackInfo& info) {
  int64_t fd = 0, op = 0;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgInt(info, 1, "operation", &op)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    while (::flock(static_cast<int>(fd), static_cast<int>(op)) != 0) {
      if (errno == EINTR) continue;
      return Fail(errno, "flock", "", "", "flock(" + std::to_string(fd) + ", " + std::to_string(op) + ")");
    }
    return Ok();
  });
}

// syncfs(fd) — man 2 syncfs: flush the whole filesystem holding fd (a layer after an apply).
static Napi::Value JS_syncfs(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::syncfs(static_cast<int>(fd)) != 0) return Fail(errno, "syncfs", "", "", "syncfs(" + std::to_string(fd) + ")");
    return Ok();
  });
}

// removeAllAt(dirfd, name): unlinkat(2) depth-first through fd-relative, non-following opens.
static Napi::Value JS_removeAllAt(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0;
  std::string name;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "name", &name)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() { return RemoveAllAt(static_cast<int>(dirfd), name, 0); });
}

void InitResolve(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, JS_open, "open"));
  exports.Set("openat", Napi::Function::New(env, JS_openat, "openat"));
  exports.Set("openat2", Napi::Function::New(env, JS_openat2, "openat2"));
  exports.Set("closeSync", Napi::Function::New(env, JS_closeSync, "closeSync"));
  exports.Set("fchmod", Napi::Function::New(env, JS_fchmod, "fchmod"));
  exports.Set("fchown", Napi::Function::New(env, JS_fchown, "fchown"));
  exports.Set("syncfs", Napi::Function::New(env, JS_syncfs, "syncfs"));
  exports.Set("flock", Napi::Function::New(env, JS_flock, "flock"));
  exports.Set("removeAllAt", Napi::Function::New(env, JS_removeAllAt, "removeAllAt"));
  Napi::Object c = Napi::Object::New(env);
#define GD_CONST(name) c.Set(#name, Napi::Number::New(env, static_cast<double>(name)))
  GD_CONST(O_RDONLY); GD_CONST(O_WRONLY); GD_CONST(O_RDWR); GD_CONST(O_CREAT); GD_CONST(O_EXCL);
  GD_CONST(O_TRUNC); GD_CONST(O_APPEND); GD_CONST(O_NOFOLLOW); GD_CONST(O_DIRECTORY);
  GD_CONST(O_PATH); GD_CONST(O_CLOEXEC); GD_CONST(O_NONBLOCK); GD_CONST(O_NOATIME);
  GD_CONST(RESOLVE_NO_XDEV); GD_CONST(RESOLVE_NO_MAGICLINKS); GD_CONST(RESOLVE_NO_SYMLINKS);
  GD_CONST(RESOLVE_BENEATH); GD_CONST(RESOLVE_IN_ROOT);
  GD_CONST(AT_FDCWD); GD_CONST(AT_SYMLINK_NOFOLLOW); GD_CONST(AT_REMOVEDIR); GD_CONST(AT_EMPTY_PATH);
  GD_CONST(AT_SYMLINK_FOLLOW);
  GD_CONST(RENAME_NOREPLACE); GD_CONST(RENAME_EXCHANGE); GD_CONST(RENAME_WHITEOUT);
  GD_CONST(S_IFMT); GD_CONST(S_IFREG); GD_CONST(S_IFDIR); GD_CONST(S_IFLNK); GD_CONST(S_IFCHR);
  GD_CONST(S_IFBLK); GD_CONST(S_IFIFO); GD_CONST(S_IFSOCK);
  GD_CONST(LOCK_SH); GD_CONST(LOCK_EX); GD_CONST(LOCK_NB); GD_CONST(LOCK_UN);
#undef GD_CONST
  exports.Set("fileConstants", c);
}

}  // namespace gd
