// mount_api.cc: the new mount API — fsopen(2), fsconfig(2) (one function per mode),
// fsmount(2), move_mount(2) — and reading an fs_context's error log. Raw syscall(SYS_...)
// calls: glibc 2.36's wrappers are not relied on. Async (each on the libuv pool: fsconfig
// resolves paths and CMD_CREATE builds a superblock, both can block), except fsReadLog, which
// only copies messages the kernel already holds in memory, and is synchronous.
// No policy: which keys to set, in what order, and what to do on failure is
// lib/mount/apply.ts's job. Never chdir here: the cwd is process-wide.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "napi_util.h"

namespace gd {

struct FdResult {
  int fd = -1;
};

static Napi::Value FdValue(Napi::Env env, FdResult* r) { return Napi::Number::New(env, r->fd); }

// fsopen(fstype, flags) — man 2 fsopen
static Napi::Value JS_fsopen(const Napi::CallbackInfo& info) {
  std::string fstype;
  uint64_t flags = 0;
  if (!ArgString(info, 0, "fstype", &fstype) || !ArgUint(info, 1, "flags", &flags)) {
    return info.Env().Undefined();
  }
  return Worker<FdResult>::Run(
      info.Env(),
      [=](FdResult* r) {
        long fd = ::syscall(SYS_fsopen, fstype.c_str(), static_cast<unsigned>(flags));
        if (fd < 0) {
          return Fail(errno, "fsopen", "", "",
                      "fsopen(" + Quote(fstype) + ", " + std::to_string(flags) + ")");
        }
        r->fd = static_cast<int>(fd);
        return Ok();
      },
      FdValue);
}

static SysFailure Fsconfig(int fd, unsigned cmd, const std::string& key, const std::string* value,
                           const char* cmdName) {
  long rc = ::syscall(SYS_fsconfig, fd, cmd, key.empty() ? nullptr : key.c_str(),
                      value != nullptr ? value->c_str() : nullptr, 0);
  if (rc != 0) {
    std::string call = "fsconfig(" + std::to_string(fd) + ", " + cmdName + ", " +
                       (key.empty() ? std::string("NULL") : Quote(key)) + ", " +
                       (value != nullptr ? Quote(*value) : std::string("NULL")) + ", 0)";
    return Fail(errno, "fsconfig", value != nullptr ? *value : "", "", call);
  }
  return Ok();
}

// fsconfig(fd, FSCONFIG_SET_STRING, key, value, 0) — man 2 fsconfig
static Napi::Value JS_fsconfigSetString(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  std::string key, value;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgString(info, 1, "key", &key) ||
      !ArgString(info, 2, "value", &value)) {
    return info.Env().Undefined();
  }
  return RunVoid(info.Env(), [=]() {
    return Fsconfig(static_cast<int>(fd), FSCONFIG_SET_STRING, key, &value, "FSCONFIG_SET_STRING");
  });
}

// for each v of values: fsconfig(fd, FSCONFIG_SET_STRING, key, v, 0), stopping at the first
// failure (its index is the error's opIndex) — man 2 fsconfig. One pool job for a list
// (e.g. one `lowerdir+` per layer, up to 500), the calls in order, nothing between them.
static Napi::Value JS_fsconfigSetStrings(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  std::string key;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgString(info, 1, "key", &key)) {
    return info.Env().Undefined();
  }
  if (info.Length() <= 2 || !info[2].IsArray()) {
    Napi::TypeError::New(info.Env(), "Expected an array of strings for argument 'values'")
        .ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  Napi::Array arr = info[2].As<Napi::Array>();
  std::vector<std::string> values;
  values.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
    if (!v.IsString() || s.find('\0') != std::string::npos) {
      Napi::TypeError::New(info.Env(), "Expected strings without NUL in argument 'values'")
          .ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    values.push_back(std::move(s));
  }
  return RunVoid(info.Env(), [=]() {
    for (size_t i = 0; i < values.size(); i++) {
      SysFailure f = Fsconfig(static_cast<int>(fd), FSCONFIG_SET_STRING, key, &values[i],
                              "FSCONFIG_SET_STRING");
      if (f.err != 0) {
        f.opIndex = static_cast<int64_t>(i);
        return f;
      }
    }
    return Ok();
  });
}

// fsconfig(fd, FSCONFIG_SET_FLAG, key, NULL, 0) — man 2 fsconfig
static Napi::Value JS_fsconfigSetFlag(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  std::string key;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgString(info, 1, "key", &key)) {
    return info.Env().Undefined();
  }
  return RunVoid(info.Env(), [=]() {
    return Fsconfig(static_cast<int>(fd), FSCONFIG_SET_FLAG, key, nullptr, "FSCONFIG_SET_FLAG");
  });
}

// fsconfig(fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) — man 2 fsconfig
static Napi::Value JS_fsconfigCreate(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    return Fsconfig(static_cast<int>(fd), FSCONFIG_CMD_CREATE, "", nullptr, "FSCONFIG_CMD_CREATE");
  });
}

// fsmount(fd, flags, attrFlags) — man 2 fsmount
static Napi::Value JS_fsmount(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  uint64_t flags = 0, attrs = 0;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgUint(info, 1, "flags", &flags) ||
      !ArgUint(info, 2, "attrFlags", &attrs)) {
    return info.Env().Undefined();
  }
  return Worker<FdResult>::Run(
      info.Env(),
      [=](FdResult* r) {
        long mfd = ::syscall(SYS_fsmount, static_cast<int>(fd), static_cast<unsigned>(flags),
                             static_cast<unsigned>(attrs));
        if (mfd < 0) {
          return Fail(errno, "fsmount", "", "",
                      "fsmount(" + std::to_string(fd) + ", " + std::to_string(flags) + ", " +
                          std::to_string(attrs) + ")");
        }
        r->fd = static_cast<int>(mfd);
        return Ok();
      },
      FdValue);
}

// move_mount(fromDirfd, fromPath, toDirfd, toPath, flags) — man 2 move_mount
static Napi::Value JS_moveMount(const Napi::CallbackInfo& info) {
  int64_t fromFd = 0, toFd = 0;
  std::string fromPath, toPath;
  uint64_t flags = 0;
  if (!ArgInt(info, 0, "fromDirfd", &fromFd) || !ArgString(info, 1, "fromPath", &fromPath) ||
      !ArgInt(info, 2, "toDirfd", &toFd) || !ArgString(info, 3, "toPath", &toPath) ||
      !ArgUint(info, 4, "flags", &flags)) {
    return info.Env().Undefined();
  }
  return RunVoid(info.Env(), [=]() {
    long rc = ::syscall(SYS_move_mount, static_cast<int>(fromFd), fromPath.c_str(),
                        static_cast<int>(toFd), toPath.c_str(), static_cast<unsigned>(flags));
    if (rc != 0) {
      return Fail(errno, "move_mount", fromPath, toPath,
                  "move_mount(" + std::to_string(fromFd) + ", " + Quote(fromPath) + ", " +
                      std::to_string(toFd) + ", " + Quote(toPath) + ", " + std::to_string(flags) +
                      ")");
    }
    return Ok();
  });
}

// read(fd, buf, sizeof buf) until ENODATA — man 2 fsopen ("Message retrieval interface").
// Each read returns one message ("e overlay: ..."); the log is drained by reading it.
static Napi::Value JS_fsReadLog(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  Napi::Array out = Napi::Array::New(info.Env());
  char buf[4096];
  for (uint32_t n = 0; n < 256; n++) {
    ssize_t got = ::read(static_cast<int>(fd), buf, sizeof buf);
    if (got < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == ENODATA) break;
      MakeErrnoError(info.Env(), Fail(err, "read", "", "",
                                      "read(" + std::to_string(fd) + ", buf, 4096)"))
          .ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    if (got == 0) break;
    out.Set(out.Length(), Napi::String::New(info.Env(), buf, static_cast<size_t>(got)));
  }
  return out;
}

namespace {
// Drains an fs_context's messages into one string ("; "-separated), for an error message.
std::string DrainLog(int fd) {
  std::string out;
  char buf[4096];
  for (int n = 0; n < 64; n++) {
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (!out.empty()) out += "; ";
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

struct MountSequence {
  std::string fstype, source, target;
  std::vector<std::string> lowerdirs;
  std::vector<std::pair<std::string, std::pair<bool, std::string>>> options;  // key, (has value, value)
  unsigned attrs = 0;
};

SysFailure RunMountSequence(const MountSequence& m) {
  long fd = ::syscall(SYS_fsopen, m.fstype.c_str(), FSOPEN_CLOEXEC);
  if (fd < 0) return Fail(errno, "fsopen", "", "", "fsopen(" + Quote(m.fstype) + ", FSOPEN_CLOEXEC)");
  int ctx = static_cast<int>(fd);
  SysFailure f = Fsconfig(ctx, FSCONFIG_SET_STRING, "source", &m.source, "FSCONFIG_SET_STRING");
  for (size_t i = 0; f.err == 0 && i < m.lowerdirs.size(); i++) {
    f = Fsconfig(ctx, FSCONFIG_SET_STRING, "lowerdir+", &m.lowerdirs[i], "FSCONFIG_SET_STRING");
  }
  for (size_t i = 0; f.err == 0 && i < m.options.size(); i++) {
    const auto& [key, value] = m.options[i];
    f = value.first ? Fsconfig(ctx, FSCONFIG_SET_STRING, key, &value.second, "FSCONFIG_SET_STRING")
                    : Fsconfig(ctx, FSCONFIG_SET_FLAG, key, nullptr, "FSCONFIG_SET_FLAG");
  }
  if (f.err == 0) f = Fsconfig(ctx, FSCONFIG_CMD_CREATE, "", nullptr, "FSCONFIG_CMD_CREATE");
  if (f.err == 0) {
    long mfd = ::syscall(SYS_fsmount, ctx, FSMOUNT_CLOEXEC, m.attrs);
    if (mfd < 0) {
      f = Fail(errno, "fsmount", "", "", "fsmount(" + std::to_string(ctx) + ", FSMOUNT_CLOEXEC, " + std::to_string(m.attrs) + ")");
    } else {
      if (::syscall(SYS_move_mount, static_cast<int>(mfd), "", AT_FDCWD, m.target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
        f = Fail(errno, "move_mount", "", m.target, "move_mount(" + std::to_string(mfd) + ", \"\", AT_FDCWD, " + Quote(m.target) + ", MOVE_MOUNT_F_EMPTY_PATH)");
      }
      ::close(static_cast<int>(mfd));
    }
  }
  if (f.err != 0) {
    std::string log = DrainLog(ctx);
    if (!log.empty()) f.call += " (kernel: " + log + ")";
  }
  ::close(ctx);
  return f;
}
}  // namespace

// fsMountSequence(fstype, source, target, lowerdirs, options, attrFlags): fsopen, fsconfig
// "source", one fsconfig "lowerdir+" per lower, each option (string or flag), CMD_CREATE,
// fsmount, move_mount to target — one fixed sequence in one pool job (man 2 fsopen, fsconfig,
// fsmount, move_mount), so a mount costs one round trip, not one per call. On failure the
// kernel's fs_context messages are added to the error's message.
static Napi::Value JS_fsMountSequence(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MountSequence m;
  uint64_t attrs = 0;
  if (!ArgString(info, 0, "fstype", &m.fstype) || !ArgString(info, 1, "source", &m.source) ||
      !ArgString(info, 2, "target", &m.target) || !ArgUint(info, 5, "attrFlags", &attrs)) {
    return env.Undefined();
  }
  if (!info[3].IsArray() || !info[4].IsArray()) {
    Napi::TypeError::New(env, "Expected arrays for lowerdirs and options").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  m.attrs = static_cast<unsigned>(attrs);
  Napi::Array lowers = info[3].As<Napi::Array>();
  for (uint32_t i = 0; i < lowers.Length(); i++) {
    Napi::Value v = lowers.Get(i);
    if (!v.IsString()) {
      Napi::TypeError::New(env, "Expected strings in lowerdirs").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    m.lowerdirs.push_back(v.As<Napi::String>().Utf8Value());
  }
  Napi::Array options = info[4].As<Napi::Array>();
  for (uint32_t i = 0; i < options.Length(); i++) {
    Napi::Value pair = options.Get(i);
    if (!pair.IsArray() || pair.As<Napi::Array>().Length() != 2 || !pair.As<Napi::Array>().Get(0u).IsString()) {
      Napi::TypeError::New(env, "Expected [key, value | null] pairs in options").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Value value = pair.As<Napi::Array>().Get(1u);
    m.options.push_back({pair.As<Napi::Array>().Get(0u).As<Napi::String>().Utf8Value(),
                         {value.IsString(), value.IsString() ? value.As<Napi::String>().Utf8Value() : std::string()}});
  }
  return RunVoid(env, [m]() { return RunMountSequence(m); });
}

void InitMountApi(Napi::Env env, Napi::Object exports) {
  exports.Set("fsMountSequence", Napi::Function::New(env, JS_fsMountSequence, "fsMountSequence"));
  exports.Set("fsopen", Napi::Function::New(env, JS_fsopen, "fsopen"));
  exports.Set("fsconfigSetString", Napi::Function::New(env, JS_fsconfigSetString, "fsconfigSetString"));
  exports.Set("fsconfigSetStrings", Napi::Function::New(env, JS_fsconfigSetStrings, "fsconfigSetStrings"));
  exports.Set("fsconfigSetFlag", Napi::Function::New(env, JS_fsconfigSetFlag, "fsconfigSetFlag"));
  exports.Set("fsconfigCreate", Napi::Function::New(env, JS_fsconfigCreate, "fsconfigCreate"));
  exports.Set("fsmount", Napi::Function::New(env, JS_fsmount, "fsmount"));
  exports.Set("moveMount", Napi::Function::New(env, JS_moveMount, "moveMount"));
  exports.Set("fsReadLog", Napi::Function::New(env, JS_fsReadLog, "fsReadLog"));
  Napi::Object c = Napi::Object::New(env);
#define GD_CONST(name) c.Set(#name, Napi::Number::New(env, static_cast<double>(name)))
  GD_CONST(FSOPEN_CLOEXEC); GD_CONST(FSMOUNT_CLOEXEC);
  GD_CONST(FSCONFIG_SET_FLAG); GD_CONST(FSCONFIG_SET_STRING); GD_CONST(FSCONFIG_CMD_CREATE);
  GD_CONST(MOUNT_ATTR_RDONLY); GD_CONST(MOUNT_ATTR_NOSUID); GD_CONST(MOUNT_ATTR_NODEV);
  GD_CONST(MOUNT_ATTR_NOEXEC); GD_CONST(MOUNT_ATTR_NOATIME); GD_CONST(MOUNT_ATTR_NODIRATIME);
  GD_CONST(MOVE_MOUNT_F_EMPTY_PATH); GD_CONST(MOVE_MOUNT_T_EMPTY_PATH);
#undef GD_CONST
  exports.Set("mountApiConstants", c);
}

}  // namespace gd
