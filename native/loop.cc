// loop.cc: loop-device and block-device ioctls, one exported function per ioctl (see
// <linux/loop.h>, man 4 loop, <linux/fs.h>). Async: each call runs on the libuv pool.
//
// A `target` is a device path (opened for the one call and closed) or an fd the caller holds.
// Paths are opened O_RDONLY except where the ioctl needs a writer (BLKDISCARD: O_WRONLY);
// LOOP_SET_CAPACITY on a read-only open needs CAP_SYS_ADMIN, as the kernel checks.
// loopConfigure / loopSetFd bind one given /dev/loopN to one backing file — choosing the
// device (LOOP_CTL_GET_FREE), retrying when another process took it (EBUSY) and falling back
// from LOOP_CONFIGURE to LOOP_SET_FD are lib/devmapper/loop.ts's decisions, not made here.
// Errors carry the ioctl's name as `syscall` and the device path as `path`.
// Sizes and offsets are returned as numbers (EOVERFLOW past 2^53), inode numbers as BigInt.
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "napi_util.h"

namespace gd {

namespace {

constexpr const char* kLoopControl = "/dev/loop-control";
constexpr uint64_t kMaxSafe = (1ULL << 53);

// A device named by path (opened per call) or by a caller-held fd.
struct Target {
  bool isFd = false;
  int fd = -1;
  std::string path;
  std::string Describe() const { return isFd ? std::to_string(fd) : Quote(path); }
};

bool ArgTarget(const Napi::CallbackInfo& info, size_t i, Target* out) {
  if (info.Length() > i && info[i].IsNumber()) {
    int64_t fd = 0;
    if (!ArgInt(info, i, "target", &fd)) return false;
    out->isFd = true;
    out->fd = static_cast<int>(fd);
    return true;
  }
  return ArgString(info, i, "target", &out->path);
}

// Holds the fd of a Target for one call; closes it when the call opened it.
class TargetFd {
 public:
  TargetFd(const Target& t, int flags) : t_(t) {
    if (t.isFd) {
      fd_ = t.fd;
    } else {
      fd_ = ::open(t.path.c_str(), flags | O_CLOEXEC);
      if (fd_ < 0) err_ = errno;
    }
  }
  ~TargetFd() {
    if (!t_.isFd && fd_ >= 0) ::close(fd_);
  }
  TargetFd(const TargetFd&) = delete;
  TargetFd& operator=(const TargetFd&) = delete;
  int fd() const { return fd_; }
  // The open(2) failure, if any, shaped as such.
  SysFailure OpenFailure() const { return err_ != 0 ? Fail(err_, "open", t_.path) : Ok(); }

 private:
  const Target& t_;
  int fd_ = -1;
  int err_ = 0;
};

SysFailure IoctlFail(int err, const char* ioctl, const Target& t, const std::string& args = "") {
  return Fail(err, ioctl, t.isFd ? "" : t.path, "", "ioctl(" + t.Describe() + ", " + ioctl + args + ")");
}

Napi::Object DevToJs(Napi::Env env, uint64_t dev) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("major", Napi::Number::New(env, major(dev)));
  o.Set("minor", Napi::Number::New(env, minor(dev)));
  return o;
}

// Runs ioctl(fd, cmd, arg) on a target opened with `flags`; the common shape of the block calls.
template <typename Arg>
SysFailure TargetIoctl(const Target& t, int flags, unsigned long cmd, const char* name, Arg arg,
                       const std::string& args = "") {
  TargetFd fd(t, flags);
  if (fd.fd() < 0) return fd.OpenFailure();
  if (::ioctl(fd.fd(), cmd, arg) != 0) return IoctlFail(errno, name, t, args);
  return Ok();
}

// What loopConfigure / loopSetFd leave behind: the loop device's number and, when asked to
// keep it, its open fd.
struct Bound {
  int fd = -1;
  uint64_t rdev = 0;
};

Napi::Value BoundToJs(Napi::Env env, Bound* b) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", b->fd >= 0 ? Napi::Number::New(env, b->fd) : env.Null());
  o.Set("dev", DevToJs(env, b->rdev));
  return o;
}

// The arguments both bind calls share.
struct BindArgs {
  std::string device, backing;
  uint32_t flags = 0, blockSize = 0;
  bool keepOpen = false;
};

bool ArgBind(const Napi::CallbackInfo& info, BindArgs* a) {
  uint64_t flags = 0, blockSize = 0;
  if (!ArgString(info, 0, "device", &a->device) || !ArgString(info, 1, "backing", &a->backing) ||
      !ArgUint(info, 2, "flags", &flags) || !ArgUint(info, 3, "blockSize", &blockSize))
    return false;
  if (flags > UINT32_MAX || blockSize > UINT32_MAX) {
    Napi::TypeError::New(info.Env(), "Expected 32-bit flags and blockSize").ThrowAsJavaScriptException();
    return false;
  }
  a->flags = static_cast<uint32_t>(flags);
  a->blockSize = static_cast<uint32_t>(blockSize);
  a->keepOpen = info.Length() > 4 && info[4].ToBoolean().Value();
  return true;
}

// Opens the backing file (read-only when LO_FLAGS_READ_ONLY) and the loop device (which must be
// a block device); on success both fds are the caller's to close.
SysFailure OpenPair(const BindArgs& a, int* backingFd, int* devFd, uint64_t* rdev) {
  const bool ro = (a.flags & LO_FLAGS_READ_ONLY) != 0;
  *backingFd = ::open(a.backing.c_str(), (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (*backingFd < 0) return Fail(errno, "open", a.backing);
  *devFd = ::open(a.device.c_str(), O_RDWR | O_CLOEXEC);
  if (*devFd < 0) {
    const int err = errno;
    ::close(*backingFd);
    return Fail(err, "open", a.device);
  }
  struct stat st;
  int err = 0;
  if (::fstat(*devFd, &st) != 0) err = errno;
  else if (!S_ISBLK(st.st_mode)) err = ENOTBLK;
  if (err != 0) {
    ::close(*backingFd);
    ::close(*devFd);
    return Fail(err, "fstat", a.device);
  }
  *rdev = st.st_rdev;
  return Ok();
}

// The name the kernel keeps for display (LOOP_GET_STATUS64's lo_file_name): the path,
// truncated to LO_NAME_SIZE - 1 bytes. sysfs backing_file has the full path regardless.
void SetFileName(struct loop_info64* li, const std::string& path) {
  const size_t n = path.size() < LO_NAME_SIZE - 1 ? path.size() : LO_NAME_SIZE - 1;
  std::memcpy(li->lo_file_name, path.data(), n);
  li->lo_file_name[n] = 0;
}

std::string BindCall(const char* ioctl, const BindArgs& a) {
  return "ioctl(" + Quote(a.device) + ", " + ioctl + ", {backing: " + Quote(a.backing) + ", lo_flags: " +
         std::to_string(a.flags) + ", block_size: " + std::to_string(a.blockSize) + "})";
}

}  // namespace

// ioctl(open("/dev/loop-control" or `path`), LOOP_CTL_GET_FREE) -> N of a free /dev/loopN
// (the kernel adds one when none is free). Free now; another process may bind it first.
static Napi::Value JS_loopCtlGetFree(const Napi::CallbackInfo& info) {
  std::string path;
  bool present = false;
  if (!ArgOptString(info, 0, "path", &path, &present)) return info.Env().Undefined();
  if (!present) path = kLoopControl;
  struct N { int n = -1; };
  return Worker<N>::Run(info.Env(), [=](N* r) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return Fail(errno, "open", path);
    r->n = ::ioctl(fd, LOOP_CTL_GET_FREE);
    const int err = errno;
    ::close(fd);
    if (r->n < 0) return Fail(err, "LOOP_CTL_GET_FREE", path, "", "ioctl(" + Quote(path) + ", LOOP_CTL_GET_FREE)");
    return Ok();
  }, [](Napi::Env env, N* r) -> Napi::Value { return Napi::Number::New(env, r->n); });
}

// ioctl(open(device), LOOP_CONFIGURE, {fd: open(backing), block_size, info: {lo_flags,
// lo_file_name}}) -> {fd, dev}. Binds in one step (Linux 5.8+; EINVAL or ENOTTY before).
// EBUSY: the device is bound already. `keepOpen` returns the device's fd (null otherwise):
// with LO_FLAGS_AUTOCLEAR the binding ends at the device's last close, so someone must hold it.
static Napi::Value JS_loopConfigure(const Napi::CallbackInfo& info) {
  BindArgs a;
  if (!ArgBind(info, &a)) return info.Env().Undefined();
  return Worker<Bound>::Run(info.Env(), [=](Bound* out) {
    int backing = -1, dev = -1;
    SysFailure f = OpenPair(a, &backing, &dev, &out->rdev);
    if (f.err != 0) return f;
    struct loop_config cfg;
    std::memset(&cfg, 0, sizeof(cfg));
    cfg.fd = static_cast<uint32_t>(backing);
    cfg.block_size = a.blockSize;
    cfg.info.lo_flags = a.flags;
    SetFileName(&cfg.info, a.backing);
    const int rc = ::ioctl(dev, LOOP_CONFIGURE, &cfg);
    const int err = errno;
    ::close(backing);  // the kernel holds its own reference to the file now
    if (rc != 0) {
      ::close(dev);
      return Fail(err, "LOOP_CONFIGURE", a.device, a.backing, BindCall("LOOP_CONFIGURE", a));
    }
    if (a.keepOpen) out->fd = dev;
    else ::close(dev);
    return Ok();
  }, BoundToJs);
}

// The pre-5.8 way to bind: ioctl(dev, LOOP_SET_FD, backing) then LOOP_SET_STATUS64 {lo_flags
// (LO_FLAGS_AUTOCLEAR / PARTSCAN), lo_file_name}, then LOOP_SET_DIRECT_IO and
// LOOP_SET_BLOCK_SIZE when asked. Read-only comes from the backing file's open mode. If a later
// step fails the device is unbound again (LOOP_CLR_FD) and that step's error returned.
static Napi::Value JS_loopSetFd(const Napi::CallbackInfo& info) {
  BindArgs a;
  if (!ArgBind(info, &a)) return info.Env().Undefined();
  return Worker<Bound>::Run(info.Env(), [=](Bound* out) {
    int backing = -1, dev = -1;
    SysFailure f = OpenPair(a, &backing, &dev, &out->rdev);
    if (f.err != 0) return f;
    const int rc = ::ioctl(dev, LOOP_SET_FD, backing);
    const int err = errno;
    ::close(backing);
    if (rc != 0) {
      ::close(dev);
      return Fail(err, "LOOP_SET_FD", a.device, a.backing, BindCall("LOOP_SET_FD", a));
    }
    auto undo = [&](int e, const char* ioctl) {
      ::ioctl(dev, LOOP_CLR_FD, 0);
      ::close(dev);
      return Fail(e, ioctl, a.device, a.backing, BindCall(ioctl, a));
    };
    struct loop_info64 li;
    std::memset(&li, 0, sizeof(li));
    li.lo_flags = a.flags & (LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN);
    SetFileName(&li, a.backing);
    if (::ioctl(dev, LOOP_SET_STATUS64, &li) != 0) return undo(errno, "LOOP_SET_STATUS64");
    if ((a.flags & LO_FLAGS_DIRECT_IO) != 0 && ::ioctl(dev, LOOP_SET_DIRECT_IO, 1UL) != 0)
      return undo(errno, "LOOP_SET_DIRECT_IO");
    if (a.blockSize != 0 && ::ioctl(dev, LOOP_SET_BLOCK_SIZE, static_cast<unsigned long>(a.blockSize)) != 0)
      return undo(errno, "LOOP_SET_BLOCK_SIZE");
    if (a.keepOpen) out->fd = dev;
    else ::close(dev);
    return Ok();
  }, BoundToJs);
}

// ioctl(target, LOOP_CLR_FD): unbinds. The kernel defers the unbind to the device's last close
// (it marks it autoclear), so a device someone still holds stays bound until they close it.
// ENXIO: not bound.
static Napi::Value JS_loopClrFd(const Napi::CallbackInfo& info) {
  Target t;
  if (!ArgTarget(info, 0, &t)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() { return TargetIoctl(t, O_RDONLY, LOOP_CLR_FD, "LOOP_CLR_FD", 0UL); });
}

// ioctl(target, LOOP_SET_CAPACITY): re-reads the backing file's size (after it grew).
static Napi::Value JS_loopSetCapacity(const Napi::CallbackInfo& info) {
  Target t;
  if (!ArgTarget(info, 0, &t)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() { return TargetIoctl(t, O_RDONLY, LOOP_SET_CAPACITY, "LOOP_SET_CAPACITY", 0UL); });
}

// ioctl(target, LOOP_GET_STATUS64) -> {number, backing: {dev, inode}, offset, sizeLimit, flags,
// rawFlags, fileName}. ENXIO: not bound.
static Napi::Value JS_loopGetStatus64(const Napi::CallbackInfo& info) {
  Target t;
  if (!ArgTarget(info, 0, &t)) return info.Env().Undefined();
  struct Status { struct loop_info64 li; };
  return Worker<Status>::Run(info.Env(), [=](Status* out) {
    std::memset(&out->li, 0, sizeof(out->li));
    SysFailure f = TargetIoctl(t, O_RDONLY, LOOP_GET_STATUS64, "LOOP_GET_STATUS64", &out->li);
    if (f.err != 0) return f;
    if (out->li.lo_offset >= kMaxSafe || out->li.lo_sizelimit >= kMaxSafe)
      return IoctlFail(EOVERFLOW, "LOOP_GET_STATUS64", t);
    return Ok();
  }, [](Napi::Env env, Status* s) -> Napi::Value {
    const struct loop_info64& li = s->li;
    Napi::Object o = Napi::Object::New(env);
    o.Set("number", Napi::Number::New(env, li.lo_number));
    Napi::Object backing = Napi::Object::New(env);
    backing.Set("dev", DevToJs(env, li.lo_device));  // huge_encode_dev: glibc's major/minor decode it
    backing.Set("inode", Napi::BigInt::New(env, static_cast<uint64_t>(li.lo_inode)));
    o.Set("backing", backing);
    o.Set("offset", Napi::Number::New(env, static_cast<double>(li.lo_offset)));
    o.Set("sizeLimit", Napi::Number::New(env, static_cast<double>(li.lo_sizelimit)));
    o.Set("rawFlags", Napi::Number::New(env, li.lo_flags));
    Napi::Object f = Napi::Object::New(env);
    f.Set("readOnly", Napi::Boolean::New(env, (li.lo_flags & LO_FLAGS_READ_ONLY) != 0));
    f.Set("autoclear", Napi::Boolean::New(env, (li.lo_flags & LO_FLAGS_AUTOCLEAR) != 0));
    f.Set("partscan", Napi::Boolean::New(env, (li.lo_flags & LO_FLAGS_PARTSCAN) != 0));
    f.Set("directIo", Napi::Boolean::New(env, (li.lo_flags & LO_FLAGS_DIRECT_IO) != 0));
    o.Set("flags", f);
    const char* name = reinterpret_cast<const char*>(li.lo_file_name);
    o.Set("fileName", Napi::String::New(env, std::string(name, ::strnlen(name, LO_NAME_SIZE))));
    return o;
  });
}

// ioctl(target, BLKGETSIZE64) -> the device's size in bytes.
static Napi::Value JS_blkGetSize64(const Napi::CallbackInfo& info) {
  Target t;
  if (!ArgTarget(info, 0, &t)) return info.Env().Undefined();
  struct Size { uint64_t bytes = 0; };
  return Worker<Size>::Run(info.Env(), [=](Size* out) {
    SysFailure f = TargetIoctl(t, O_RDONLY, BLKGETSIZE64, "BLKGETSIZE64", &out->bytes);
    if (f.err == 0 && out->bytes >= kMaxSafe) return IoctlFail(EOVERFLOW, "BLKGETSIZE64", t);
    return f;
  }, [](Napi::Env env, Size* s) -> Napi::Value { return Napi::Number::New(env, static_cast<double>(s->bytes)); });
}

// ioctl(target, BLKSSZGET) -> the logical sector size in bytes (the unit discards align to).
static Napi::Value JS_blkSszGet(const Napi::CallbackInfo& info) {
  Target t;
  if (!ArgTarget(info, 0, &t)) return info.Env().Undefined();
  struct Size { int bytes = 0; };
  return Worker<Size>::Run(info.Env(), [=](Size* out) {
    return TargetIoctl(t, O_RDONLY, BLKSSZGET, "BLKSSZGET", &out->bytes);
  }, [](Napi::Env env, Size* s) -> Napi::Value { return Napi::Number::New(env, s->bytes); });
}

// ioctl(target, BLKDISCARD, [offset, length]): discards a byte range (both multiples of the
// logical sector size, else EINVAL). Needs a writer: a path is opened O_WRONLY, an fd must be.
// On a loop device the kernel punches the range out of the backing file.
static Napi::Value JS_blkDiscard(const Napi::CallbackInfo& info) {
  Target t;
  uint64_t offset = 0, length = 0;
  if (!ArgTarget(info, 0, &t) || !ArgUint(info, 1, "offset", &offset) || !ArgUint(info, 2, "length", &length))
    return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    uint64_t range[2] = {offset, length};
    return TargetIoctl(t, O_WRONLY, BLKDISCARD, "BLKDISCARD", range,
                       ", [" + std::to_string(offset) + ", " + std::to_string(length) + "]");
  });
}

void InitLoop(Napi::Env env, Napi::Object exports) {
  auto fn = [&](const char* name, Napi::Value (*f)(const Napi::CallbackInfo&)) {
    exports.Set(name, Napi::Function::New(env, f, name));
  };
  fn("loopCtlGetFree", JS_loopCtlGetFree);
  fn("loopConfigure", JS_loopConfigure);
  fn("loopSetFd", JS_loopSetFd);
  fn("loopClrFd", JS_loopClrFd);
  fn("loopSetCapacity", JS_loopSetCapacity);
  fn("loopGetStatus64", JS_loopGetStatus64);
  fn("blkGetSize64", JS_blkGetSize64);
  fn("blkSszGet", JS_blkSszGet);
  fn("blkDiscard", JS_blkDiscard);
  Napi::Object k = Napi::Object::New(env);
  k.Set("LO_FLAGS_READ_ONLY", Napi::Number::New(env, LO_FLAGS_READ_ONLY));
  k.Set("LO_FLAGS_AUTOCLEAR", Napi::Number::New(env, LO_FLAGS_AUTOCLEAR));
  k.Set("LO_FLAGS_PARTSCAN", Napi::Number::New(env, LO_FLAGS_PARTSCAN));
  k.Set("LO_FLAGS_DIRECT_IO", Napi::Number::New(env, LO_FLAGS_DIRECT_IO));
  k.Set("LO_NAME_SIZE", Napi::Number::New(env, LO_NAME_SIZE));
  k.Set("LOOP_MAJOR", Napi::Number::New(env, 7));
  exports.Set("loopConstants", k);
}

}  // namespace gd
