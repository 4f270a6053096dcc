// apply.cc: the archive engine's hot loop — one call applies a batch of already-parsed tar
// entries to a layer root, in order, on a libuv pool thread, so a layer of 25k small files
// costs a few hundred crossings instead of a few hundred thousand. Each entry's parent is
// resolved by the kernel inside the root with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
// (consecutive entries with the same parent reuse its fd: an entry only touches a child of
// its parent, so it cannot change what the parent path resolves to); the final name is only
// ever acted on with non-following *at calls. Which entries to send, whiteout semantics,
// opaque directories and name cleaning are decided in lib/archive/apply.ts.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "fsops.h"
#include "napi_util.h"

namespace gd {

namespace {

enum Kind : int { kFile = 0, kDir, kSymlink, kLink, kChar, kBlock, kFifo, kWhiteout, kDirTimes };

struct Op {
  int kind = kFile;
  std::string parent;      // components joined by '/', "" for the root
  std::string name;        // the final component (never "", ".", "..", never contains '/')
  std::string linkname;    // symlink target (verbatim)
  std::string linkParent;  // hardlink target's parent and name, root-relative
  std::string linkName;
  uint32_t mode = 0, uid = 0, gid = 0, devMajor = 0, devMinor = 0;
  struct timespec times[2] = {};
  std::vector<std::pair<std::string, std::string>> xattrs;
  std::vector<std::pair<const char*, size_t>> data;  // views into JS Buffers kept alive by `keep`
};

// What a freshly created inode gets without being told, so chown/chmod can be skipped when
// the entry asks for exactly that (they are a third of the syscalls of a small file).
struct Defaults {
  uid_t euid = 0;
  gid_t newGid = 0;      // the parent's gid when it is setgid, else our egid
  mode_t umask = 0777;   // unknown until read: then nothing is skipped
  bool parentSetgid = true;
};

// Whether a fresh inode made with `mode` already has this op's owner and mode.
bool OwnerIsDefault(const Defaults& d, const Op& op) { return op.uid == d.euid && op.gid == d.newGid; }
bool ModeIsDefault(const Defaults& d, const Op& op) {
  return !d.parentSetgid && (op.mode & 07000) == 0 && (op.mode & d.umask) == 0;
}

// The process umask from /proc/self/status (umask(2) cannot read it without changing it).
mode_t ReadUmask() {
  int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0777;
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return 0777;
  buf[n] = '\0';
  const char* p = std::strstr(buf, "Umask:");
  if (p == nullptr) return 0777;
  return static_cast<mode_t>(std::strtoul(p + 6, nullptr, 8)) & 0777;
}

struct Batch {
  int rootFd = -1;
  std::vector<Op> ops;
  std::shared_ptr<Napi::ObjectReference> keep;  // the JS array of data ArrayBuffers: keeps them alive
  size_t done = 0;
};

class FdGuard {
 public:
  explicit FdGuard(int fd = -1) : fd_(fd) {}
  ~FdGuard() { reset(-1); }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

int OpenInRoot(int rootFd, const std::string& path) {
  struct open_how how = {};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, rootFd, path.empty() ? "." : path.c_str(), &how, sizeof(how)));
}

// Resolves `parent` inside the root, creating missing directories 0755 root-owned (whatever
// the umask) one component at a time, each created relative to the fd of the one before.
SysFailure OpenParent(int rootFd, const std::string& parent, bool create, int* out) {
  int fd = OpenInRoot(rootFd, parent);
  if (fd >= 0 || errno != ENOENT || !create) {
    if (fd < 0) return Fail(errno, "openat2", parent);
    *out = fd;
    return Ok();
  }
  FdGuard cur(-1);
  size_t start = 0;
  while (start <= parent.size()) {
    size_t slash = parent.find('/', start);
    if (slash == std::string::npos) slash = parent.size();
    std::string prefix = parent.substr(0, slash);
    std::string comp = parent.substr(start, slash - start);
    int next = OpenInRoot(rootFd, prefix);
    if (next < 0 && errno == ENOENT) {
      int at = cur.get() >= 0 ? cur.get() : rootFd;
      if (::mkdirat(at, comp.c_str(), 0755) != 0 && errno != EEXIST) return Fail(errno, "mkdirat", prefix);
      if (::fchownat(at, comp.c_str(), 0, 0, AT_SYMLINK_NOFOLLOW) != 0) return Fail(errno, "fchownat", prefix);
      if (::fchmodat(at, comp.c_str(), 0755, 0) != 0) return Fail(errno, "fchmodat", prefix);
      next = OpenInRoot(rootFd, prefix);
    }
    if (next < 0) return Fail(errno, "openat2", prefix);
    cur.reset(next);
    start = slash + 1;
  }
  *out = cur.release();
  return Ok();
}

bool IgnorableXattrError(int err) { return err == ENOTSUP || err == EPERM; }

std::string ProcPath(int dirfd, const std::string& name) {
  return "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
}

SysFailure SetXattrsAt(int dirfd, const Op& op) {
  if (op.xattrs.empty()) return Ok();
  std::string p = ProcPath(dirfd, op.name);
  for (const auto& [key, value] : op.xattrs) {
    if (::lsetxattr(p.c_str(), key.c_str(), value.data(), value.size(), 0) != 0 && !IgnorableXattrError(errno))
      return Fail(errno, "lsetxattr", op.name, "", "lsetxattr(" + Quote(op.name) + ", " + Quote(key) + ")");
  }
  return Ok();
}

// Runs `create` (returning 0 or an errno); where the name is taken, removes what is there
// and tries once more. Creating first and looking only on EEXIST saves a stat per entry.
template <typename Create>
SysFailure CreateReplacing(int dirfd, const Op& op, const char* syscall, Create create) {
  int err = create();
  if (err == EEXIST) {
    SysFailure f = RemoveAllAt(dirfd, op.name, 0);
    if (f.err != 0) return f;
    err = create();
  }
  if (err != 0) return Fail(err, syscall, op.name);
  return Ok();
}

SysFailure WriteFile(int dirfd, const Op& op, const Defaults& d) {
  int raw = -1;
  bool modeIsDefault = ModeIsDefault(d, op);
  mode_t createMode = modeIsDefault ? op.mode : 0600;
  SysFailure f = CreateReplacing(dirfd, op, "openat", [&]() {
    raw = ::openat(dirfd, op.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, createMode);
    return raw < 0 ? errno : 0;
  });
  if (f.err != 0) return f;
  FdGuard fd(raw);
  for (const auto& [ptr, len] : op.data) {
    size_t off = 0;
    while (off < len) {
      ssize_t n = ::write(fd.get(), ptr + off, len - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Fail(errno, "write", op.name);
      }
      off += static_cast<size_t>(n);
    }
  }
  // The engine's order: chown (it clears setuid and security.capability), xattrs, chmod, times.
  if (!OwnerIsDefault(d, op) && ::fchown(fd.get(), op.uid, op.gid) != 0) return Fail(errno, "fchown", op.name);
  for (const auto& [key, value] : op.xattrs) {
    if (::fsetxattr(fd.get(), key.c_str(), value.data(), value.size(), 0) != 0 && !IgnorableXattrError(errno))
      return Fail(errno, "fsetxattr", op.name, "", "fsetxattr(" + Quote(op.name) + ", " + Quote(key) + ")");
  }
  if (!modeIsDefault && ::fchmod(fd.get(), op.mode) != 0) return Fail(errno, "fchmod", op.name);
  if (::futimens(fd.get(), op.times) != 0) return Fail(errno, "futimens", op.name);
  if (::close(fd.release()) != 0) return Fail(errno, "close", op.name);
  return Ok();
}

SysFailure Link(int rootFd, int dirfd, const Op& op, bool* isSymlink) {
  int tfd = -1;
  SysFailure f = OpenParent(rootFd, op.linkParent, false, &tfd);
  if (f.err != 0) return Fail(f.err, "openat2", op.name, op.linkParent + "/" + op.linkName);
  FdGuard target(tfd);
  struct stat st;
  if (::fstatat(target.get(), op.linkName.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return Fail(errno, "fstatat", op.name, op.linkParent + "/" + op.linkName);
  if (S_ISDIR(st.st_mode)) return Fail(EPERM, "linkat", op.name, op.linkParent + "/" + op.linkName);
  // No AT_SYMLINK_FOLLOW: a hardlink to a symlink links the symlink itself.
  SysFailure f2 = CreateReplacing(dirfd, op, "linkat", [&]() {
    return ::linkat(target.get(), op.linkName.c_str(), dirfd, op.name.c_str(), 0) == 0 ? 0 : errno;
  });
  if (f2.err != 0) return Fail(f2.err, f2.syscall, op.name, op.linkParent + "/" + op.linkName);
  *isSymlink = S_ISLNK(st.st_mode);
  return Ok();
}

// Creates (or, for a directory over a directory, merges) one entry and applies its metadata.
SysFailure ApplyOne(int rootFd, int dirfd, const Op& op, const Defaults& d) {
  if (op.kind == kWhiteout) return RemoveAllAt(dirfd, op.name, 0);
  if (op.kind == kDirTimes) {
    struct stat st;
    if (::fstatat(dirfd, op.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return Ok();  // removed by a later whiteout
      return Fail(errno, "fstatat", op.name);
    }
    if (!S_ISDIR(st.st_mode)) return Ok();
    if (::utimensat(dirfd, op.name.c_str(), op.times, AT_SYMLINK_NOFOLLOW) != 0) return Fail(errno, "utimensat", op.name);
    return Ok();
  }
  bool isSymlink = false;
  // Whether the inode was made here just now with the op's owner and mode (then no chown/chmod).
  bool ownerDone = OwnerIsDefault(d, op);
  bool modeDone = ModeIsDefault(d, op);
  mode_t createMode = modeDone ? op.mode : 0600;
  SysFailure f = Ok();
  switch (op.kind) {
    case kFile:
      return WriteFile(dirfd, op, d);
    case kDir: {
      mode_t dirMode = modeDone ? op.mode : 0700;
      // A directory over a directory merges (only metadata is applied); over anything else it replaces.
      if (::mkdirat(dirfd, op.name.c_str(), dirMode) == 0) break;
      if (errno != EEXIST) return Fail(errno, "mkdirat", op.name);
      struct stat st;
      if (::fstatat(dirfd, op.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Fail(errno, "fstatat", op.name);
      if (S_ISDIR(st.st_mode)) {
        ownerDone = modeDone = false;  // merged: its owner and mode are whatever they were
        break;
      }
      f = CreateReplacing(dirfd, op, "mkdirat", [&]() { return ::mkdirat(dirfd, op.name.c_str(), dirMode) == 0 ? 0 : errno; });
      break;
    }
    case kSymlink:
      // Stored verbatim even when it points outside: nothing here ever follows it.
      f = CreateReplacing(dirfd, op, "symlinkat", [&]() {
        return ::symlinkat(op.linkname.c_str(), dirfd, op.name.c_str()) == 0 ? 0 : errno;
      });
      isSymlink = true;
      break;
    case kLink:
      // The new name shares the target's inode: its metadata is the target's, set by the
      // target's own entry. Nothing more is applied, so a link to a file this layer shares
      // with its parent (a hardlink farm) can never change the parent's inode. (GNU tar does
      // the same; the engine re-applies the header, which would write through the farm.)
      return Link(rootFd, dirfd, op, &isSymlink);
    case kChar:
    case kBlock:
    case kFifo: {
      mode_t type = op.kind == kChar ? S_IFCHR : op.kind == kBlock ? S_IFBLK : S_IFIFO;
      f = CreateReplacing(dirfd, op, "mknodat", [&]() {
        return ::mknodat(dirfd, op.name.c_str(), type | createMode, makedev(op.devMajor, op.devMinor)) == 0 ? 0 : errno;
      });
      break;
    }
    default:
      return Fail(EINVAL, "applyBatch", op.name);
  }
  if (f.err != 0) return f;
  if (!ownerDone && ::fchownat(dirfd, op.name.c_str(), op.uid, op.gid, AT_SYMLINK_NOFOLLOW) != 0)
    return Fail(errno, "fchownat", op.name);
  f = SetXattrsAt(dirfd, op);
  if (f.err != 0) return f;
  // fchmodat follows a final symlink, so it is never called on one.
  if (!isSymlink && !modeDone && ::fchmodat(dirfd, op.name.c_str(), op.mode, 0) != 0) return Fail(errno, "fchmodat", op.name);
  if (op.kind != kDir && ::utimensat(dirfd, op.name.c_str(), op.times, AT_SYMLINK_NOFOLLOW) != 0)
    return Fail(errno, "utimensat", op.name);
  return Ok();
}

SysFailure RunBatch(Batch* b) {
  FdGuard parent(-1);
  const std::string* parentPath = nullptr;
  Defaults defaults;
  defaults.euid = ::geteuid();
  defaults.umask = ReadUmask();
  const gid_t egid = ::getegid();
  for (size_t i = 0; i < b->ops.size(); i++) {
    const Op& op = b->ops[i];
    if (parentPath == nullptr || *parentPath != op.parent) {
      parent.reset(-1);
      parentPath = nullptr;
      int fd = -1;
      SysFailure f = OpenParent(b->rootFd, op.parent, op.kind != kDirTimes, &fd);
      if (f.err != 0) {
        if (op.kind == kDirTimes && f.err == ENOENT) { b->done = i + 1; continue; }
        f.opIndex = static_cast<int64_t>(i);
        return f;
      }
      parent.reset(fd);
      parentPath = &op.parent;
      struct stat pst;
      if (::fstat(fd, &pst) != 0) {
        SysFailure sf = Fail(errno, "fstat", op.parent);
        sf.opIndex = static_cast<int64_t>(i);
        return sf;
      }
      defaults.parentSetgid = (pst.st_mode & S_ISGID) != 0;
      defaults.newGid = defaults.parentSetgid ? pst.st_gid : egid;
    }
    SysFailure f = ApplyOne(b->rootFd, parent.get(), op, defaults);
    if (f.err != 0) {
      f.opIndex = static_cast<int64_t>(i);
      return f;
    }
    b->done = i + 1;
  }
  return Ok();
}

// The op encoding written by lib/archive/apply-batch.ts: a fixed little-endian header, then
// the strings it counts. Offsets are checked against the buffer; a short buffer is EINVAL.
constexpr size_t kOpHeader = 92;

uint32_t ReadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
double ReadF64(const uint8_t* p) {
  double v;
  std::memcpy(&v, p, 8);
  return v;
}

bool DecodeOps(const uint8_t* buf, size_t len, uint32_t count, std::vector<Op>* ops, std::vector<std::pair<uint32_t, uint32_t>>* dataRefs,
               std::vector<std::pair<uint32_t, uint32_t>>* xattrRefs) {
  ops->resize(count);
  dataRefs->resize(count);
  xattrRefs->resize(count);
  size_t off = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (len - off < kOpHeader) return false;
    const uint8_t* h = buf + off;
    Op& op = (*ops)[i];
    op.kind = h[0];
    op.mode = ReadU32(h + 4) & 07777;
    op.uid = ReadU32(h + 8);
    op.gid = ReadU32(h + 12);
    op.devMajor = ReadU32(h + 16);
    op.devMinor = ReadU32(h + 20);
    op.times[0].tv_sec = static_cast<time_t>(ReadF64(h + 24));
    op.times[0].tv_nsec = static_cast<long>(ReadF64(h + 32));
    op.times[1].tv_sec = static_cast<time_t>(ReadF64(h + 40));
    op.times[1].tv_nsec = static_cast<long>(ReadF64(h + 48));
    uint32_t lens[5];
    for (int k = 0; k < 5; k++) lens[k] = ReadU32(h + 56 + 4 * k);
    (*dataRefs)[i] = {ReadU32(h + 76), ReadU32(h + 80)};
    (*xattrRefs)[i] = {ReadU32(h + 84), ReadU32(h + 88)};
    off += kOpHeader;
    std::string* fields[5] = {&op.parent, &op.name, &op.linkname, &op.linkParent, &op.linkName};
    for (int k = 0; k < 5; k++) {
      if (len - off < lens[k]) return false;
      fields[k]->assign(reinterpret_cast<const char*>(buf + off), lens[k]);
      if (fields[k]->find('\0') != std::string::npos) return false;
      off += lens[k];
    }
  }
  return true;
}

}  // namespace

// applyBatch(rootFd, ops, count, buffers, xattrs, extents): for each op in order, openat2(rootFd, parent, RESOLVE_IN_ROOT) then
// mkdirat/openat(O_EXCL|O_NOFOLLOW)+write/symlinkat/linkat/mknodat, fchown(at), (l|f)setxattr,
// fchmod(at), utimensat — see the file header. Resolves to the number of ops applied; rejects
// with the failing op's index as `opIndex`.
static Napi::Value JS_applyBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t rootFd = 0;
  uint64_t count = 0;
  if (!ArgInt(info, 0, "rootFd", &rootFd) || !ArgUint(info, 2, "count", &count)) return env.Undefined();
  if (!info[1].IsBuffer() || info.Length() < 6 || !info[3].IsArray() || !info[4].IsArray() || !info[5].IsBuffer()) {
    Napi::TypeError::New(env, "Expected (rootFd, ops: Buffer, count, buffers: ArrayBuffer[], xattrs: Array, extents: Buffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto encoded = info[1].As<Napi::Buffer<uint8_t>>();
  auto batch = std::make_shared<Batch>();
  batch->rootFd = static_cast<int>(rootFd);
  std::vector<std::pair<uint32_t, uint32_t>> dataRefs, xattrRefs;
  if (!DecodeOps(encoded.Data(), encoded.Length(), static_cast<uint32_t>(count), &batch->ops, &dataRefs, &xattrRefs)) {
    Napi::TypeError::New(env, "applyBatch: malformed op encoding").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // File data: a few whole ArrayBuffers (the tar stream's read buffers) and (buffer, offset,
  // length) extents into them, so a batch of thousands of files costs a handful of lookups.
  Napi::Array buffers = info[3].As<Napi::Array>();
  Napi::Array xattrs = info[4].As<Napi::Array>();
  auto extents = info[5].As<Napi::Buffer<uint8_t>>();
  batch->keep = std::make_shared<Napi::ObjectReference>(Napi::Persistent(buffers.As<Napi::Object>()));
  std::vector<std::pair<const char*, size_t>> bases(buffers.Length());
  for (uint32_t j = 0; j < buffers.Length(); j++) {
    Napi::Value b = buffers.Get(j);
    if (!b.IsArrayBuffer()) {
      Napi::TypeError::New(env, "applyBatch: expected ArrayBuffers for data").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::ArrayBuffer ab = b.As<Napi::ArrayBuffer>();
    bases[j] = {static_cast<const char*>(ab.Data()), ab.ByteLength()};
  }
  size_t extentCount = extents.Length() / 12;
  for (size_t i = 0; i < batch->ops.size(); i++) {
    Op& op = batch->ops[i];
    auto [first, n] = dataRefs[i];
    for (uint32_t j = first; j < first + n; j++) {
      if (j >= extentCount) {
        Napi::RangeError::New(env, "applyBatch: data extent out of range").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      uint32_t buf = ReadU32(extents.Data() + 12 * j), off = ReadU32(extents.Data() + 12 * j + 4), len = ReadU32(extents.Data() + 12 * j + 8);
      if (buf >= bases.size() || off > bases[buf].second || len > bases[buf].second - off) {
        Napi::RangeError::New(env, "applyBatch: data extent outside its buffer").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      op.data.emplace_back(bases[buf].first + off, len);
    }
    auto [xfirst, xn] = xattrRefs[i];
    for (uint32_t j = xfirst; j + 1 < xattrs.Length() && j < xfirst + 2 * xn; j += 2) {
      Napi::Value k = xattrs.Get(j), v = xattrs.Get(j + 1);
      if (!k.IsString() || !v.IsBuffer()) continue;
      auto buf = v.As<Napi::Buffer<char>>();
      op.xattrs.emplace_back(k.As<Napi::String>().Utf8Value(), std::string(buf.Data(), buf.Length()));
    }
  }
  return Worker<std::shared_ptr<Batch>>::Run(
      env,
      [batch](std::shared_ptr<Batch>* out) {
        *out = batch;
        return RunBatch(batch.get());
      },
      [](Napi::Env e, std::shared_ptr<Batch>* b) -> Napi::Value {
        return Napi::Number::New(e, static_cast<double>((*b)->done));
      });
}

void InitApply(Napi::Env env, Napi::Object exports) {
  exports.Set("applyBatch", Napi::Function::New(env, JS_applyBatch, "applyBatch"));
}

}  // namespace gd
