// mount.cc: mount(2) and umount2(2), plus the MS_* / MNT_* constants. Async: a mount can
// block on I/O. No option-string building, no retries: that is lib/mount/apply.ts's job.
// Never chdir the process or a pool thread: the cwd is process-wide (mountFrom uses a thread
// of its own with an unshared fs struct).
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>

#include "napi_util.h"

namespace gd {

// mount(source, target, fstype, flags, data) — man 2 mount
static Napi::Value JS_mount(const Napi::CallbackInfo& info) {
  std::string source, target, fstype, data;
  bool hasSource = false, hasFstype = false, hasData = false;
  uint64_t flags = 0;
  if (!ArgOptString(info, 0, "source", &source, &hasSource) ||
      !ArgString(info, 1, "target", &target) ||
      !ArgOptString(info, 2, "fstype", &fstype, &hasFstype) ||
      !ArgUint(info, 3, "flags", &flags) ||
      !ArgOptString(info, 4, "data", &data, &hasData)) {
    return info.Env().Undefined();
  }
  return RunVoid(info.Env(), [=]() {
    int rc = ::mount(hasSource ? source.c_str() : nullptr, target.c_str(),
                     hasFstype ? fstype.c_str() : nullptr, static_cast<unsigned long>(flags),
                     hasData ? data.c_str() : nullptr);
    if (rc != 0) {
      int err = errno;
      std::string call = "mount(" + (hasSource ? Quote(source) : std::string("NULL")) + ", " +
                         Quote(target) + ", " + (hasFstype ? Quote(fstype) : std::string("NULL")) +
                         ", " + std::to_string(flags) + ", " +
                         (hasData ? Quote(data) : std::string("NULL")) + ")";
      return Fail(err, "mount", source, target, call);
    }
    return Ok();
  });
}

namespace {
struct MountFromJob {
  std::string dir;
  const char* source;
  std::string target;
  const char* fstype;
  unsigned long flags;
  const char* data;
  SysFailure result;
};

void* MountFromThread(void* arg) {
  auto* job = static_cast<MountFromJob*>(arg);
  if (::unshare(CLONE_FS) != 0) {
    job->result = Fail(errno, "unshare", job->dir, "", "unshare(CLONE_FS)");
  } else if (::chdir(job->dir.c_str()) != 0) {
    job->result = Fail(errno, "chdir", job->dir);
  } else if (::mount(job->source, job->target.c_str(), job->fstype, job->flags, job->data) != 0) {
    int err = errno;
    job->result = Fail(err, "mount", job->source != nullptr ? job->source : "", job->target,
                       "mount(..., " + Quote(job->target) + ", ..., data relative to " + Quote(job->dir) + ")");
  }
  return nullptr;
}
}  // namespace

// mountFrom(dir, source, target, fstype, flags, data): on a new thread, unshare(CLONE_FS),
// chdir(dir), then mount(source, target, fstype, flags, data) — man 2 unshare, man 2 mount.
// Relative paths in `data` (overlay's lowerdir=) resolve against `dir`, so more layers fit in
// a page; the thread's private fs struct means neither the process nor a pool thread ever
// changes its cwd.
static Napi::Value JS_mountFrom(const Napi::CallbackInfo& info) {
  std::string dir, source, target, fstype, data;
  bool hasSource = false, hasFstype = false, hasData = false;
  uint64_t flags = 0;
  if (!ArgString(info, 0, "dir", &dir) || !ArgOptString(info, 1, "source", &source, &hasSource) ||
      !ArgString(info, 2, "target", &target) || !ArgOptString(info, 3, "fstype", &fstype, &hasFstype) ||
      !ArgUint(info, 4, "flags", &flags) || !ArgOptString(info, 5, "data", &data, &hasData)) {
    return info.Env().Undefined();
  }
  return RunVoid(info.Env(), [=]() {
    MountFromJob job{dir, hasSource ? source.c_str() : nullptr, target, hasFstype ? fstype.c_str() : nullptr,
                     static_cast<unsigned long>(flags), hasData ? data.c_str() : nullptr, Ok()};
    // pthread_create, not std::thread: a failure to start is an errno here, not an abort.
    pthread_t thread;
    int err = ::pthread_create(&thread, nullptr, MountFromThread, &job);
    if (err != 0) return Fail(err, "pthread_create", dir);
    ::pthread_join(thread, nullptr);
    return job.result;
  });
}

// umount2(target, flags) — man 2 umount2
static Napi::Value JS_umount2(const Napi::CallbackInfo& info) {
  std::string target;
  int64_t flags = 0;
  if (!ArgString(info, 0, "target", &target) || !ArgInt(info, 1, "flags", &flags)) {
    return info.Env().Undefined();
  }
  return RunVoid(info.Env(), [=]() {
    if (::umount2(target.c_str(), static_cast<int>(flags)) != 0) {
      return Fail(errno, "umount2", target, "",
                  "umount2(" + Quote(target) + ", " + std::to_string(flags) + ")");
    }
    return Ok();
  });
}

void InitMount(Napi::Env env, Napi::Object exports) {
  exports.Set("mount", Napi::Function::New(env, JS_mount, "mount"));
  exports.Set("umount2", Napi::Function::New(env, JS_umount2, "umount2"));
  exports.Set("mountFrom", Napi::Function::New(env, JS_mountFrom, "mountFrom"));
  Napi::Object c = Napi::Object::New(env);
#define GD_CONST(name) c.Set(#name, Napi::Number::New(env, static_cast<double>(name)))
  GD_CONST(MS_RDONLY); GD_CONST(MS_NOSUID); GD_CONST(MS_NODEV); GD_CONST(MS_NOEXEC);
  GD_CONST(MS_SYNCHRONOUS); GD_CONST(MS_REMOUNT); GD_CONST(MS_MANDLOCK); GD_CONST(MS_DIRSYNC);
  GD_CONST(MS_NOATIME); GD_CONST(MS_NODIRATIME); GD_CONST(MS_BIND); GD_CONST(MS_MOVE);
  GD_CONST(MS_REC); GD_CONST(MS_SILENT); GD_CONST(MS_POSIXACL); GD_CONST(MS_UNBINDABLE);
  GD_CONST(MS_PRIVATE); GD_CONST(MS_SLAVE); GD_CONST(MS_SHARED); GD_CONST(MS_RELATIME);
  GD_CONST(MS_KERNMOUNT); GD_CONST(MS_I_VERSION); GD_CONST(MS_STRICTATIME);
  GD_CONST(MS_LAZYTIME);
  GD_CONST(MNT_FORCE); GD_CONST(MNT_DETACH); GD_CONST(MNT_EXPIRE); GD_CONST(UMOUNT_NOFOLLOW);
#undef GD_CONST
  exports.Set("mountConstants", c);
}

}  // namespace gd
