// copytree.cc: the vfs driver's hot loop — an exact copy of a directory tree in one call on a
// pool thread (a pool round trip costs tens of microseconds here; a tree has thousands of
// entries). Keeps file data (FICLONE first, then copy_file_range, then read/write), every mode
// bit, owners, xattrs, hardlinks as hardlinks, symlink targets, devices, fifos, sockets and
// nanosecond times (a directory's after its children). Never follows a symlink in src: every
// name is opened relative to its parent's fd with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW. Order per
// entry: data, chown (clears setuid and capabilities), chmod, xattrs (an ACL set before chmod
// would be overwritten), times. Which tree to copy where is lib/util/copy-tree.ts's choice.
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "napi_util.h"

namespace gd {

namespace {

struct Ctx {
  int dstRoot = -1;
  std::map<std::pair<dev_t, ino_t>, std::string> links;  // first copy of a multiply-linked inode
  bool tryClone = true;
  bool tryCopyRange = true;
  uint64_t entries = 0;
};

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { if (fd_ >= 0) ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
 private:
  int fd_;
};

std::string Proc(int dirfd, const std::string& name) {
  return "/proc/self/fd/" + std::to_string(dirfd) + (name.empty() ? "" : "/" + name);
}

bool Refused(int err) { return err == EOPNOTSUPP || err == ENOTSUP || err == EXDEV || err == EINVAL || err == ENOTTY || err == EBADF || err == ENOSYS; }

SysFailure CopyData(int src, int dst, off_t size, Ctx* ctx, const std::string& rel) {
  if (size == 0) return Ok();
  if (ctx->tryClone) {
    if (::ioctl(dst, FICLONE, src) == 0) return Ok();
    if (!Refused(errno)) return Fail(errno, "ioctl", rel, "", "ioctl(FICLONE) for " + Quote(rel));
    ctx->tryClone = false;
  }
  off_t done = 0;
  if (ctx->tryCopyRange) {
    while (done < size) {
      ssize_t n = ::copy_file_range(src, nullptr, dst, nullptr, static_cast<size_t>(size - done), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (done == 0 && Refused(errno)) { ctx->tryCopyRange = false; break; }
        return Fail(errno, "copy_file_range", rel);
      }
      if (n == 0) break;
      done += n;
    }
    if (ctx->tryCopyRange) return Ok();
  }
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(src, buf.data(), buf.size());
    if (n < 0) { if (errno == EINTR) continue; return Fail(errno, "read", rel); }
    if (n == 0) return Ok();
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(dst, buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0) { if (errno == EINTR) continue; return Fail(errno, "write", rel); }
      off += w;
    }
  }
}

// Copies every xattr of `srcPath` to `dstPath` (both not following a final symlink).
SysFailure CopyXattrs(const std::string& srcPath, const std::string& dstPath, bool isSymlink, const std::string& rel) {
  ssize_t n = ::llistxattr(srcPath.c_str(), nullptr, 0);
  if (n < 0) return (errno == ENOTSUP || errno == EOPNOTSUPP) ? Ok() : Fail(errno, "llistxattr", rel);
  if (n == 0) return Ok();
  std::string list(static_cast<size_t>(n) + 256, '\0');
  n = ::llistxattr(srcPath.c_str(), &list[0], list.size());
  if (n < 0) return Fail(errno, "llistxattr", rel);
  list.resize(static_cast<size_t>(n));
  for (size_t start = 0; start < list.size();) {
    size_t end = list.find('\0', start);
    if (end == std::string::npos) end = list.size();
    std::string key = list.substr(start, end - start);
    start = end + 1;
    if (key.empty()) continue;
    ssize_t vn = ::lgetxattr(srcPath.c_str(), key.c_str(), nullptr, 0);
    if (vn < 0) { if (errno == ENODATA) continue; return Fail(errno, "lgetxattr", rel); }
    std::string value(static_cast<size_t>(vn), '\0');
    vn = ::lgetxattr(srcPath.c_str(), key.c_str(), value.empty() ? nullptr : &value[0], value.size());
    if (vn < 0) { if (errno == ENODATA) continue; return Fail(errno, "lgetxattr", rel); }
    value.resize(static_cast<size_t>(vn));
    if (::lsetxattr(dstPath.c_str(), key.c_str(), value.data(), value.size(), 0) != 0) {
      // The kernel refuses user.* on symlinks; nothing to keep there.
      if (isSymlink && (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP)) continue;
      return Fail(errno, "lsetxattr", rel, "", "lsetxattr(" + Quote(rel) + ", " + Quote(key) + ")");
    }
  }
  return Ok();
}

// chown, chmod (not for symlinks), xattrs; times are set by the caller.
SysFailure Meta(int srcDir, int dstDir, const std::string& name, const struct stat& st, const std::string& rel) {
  if (::fchownat(dstDir, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) return Fail(errno, "fchownat", rel);
  bool link = S_ISLNK(st.st_mode);
  if (!link && ::fchmodat(dstDir, name.c_str(), st.st_mode & 07777, 0) != 0) return Fail(errno, "fchmodat", rel);
  return CopyXattrs(Proc(srcDir, name), Proc(dstDir, name), link, rel);
}

SysFailure Times(int dstDir, const std::string& name, const struct stat& st, const std::string& rel) {
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(dstDir, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) return Fail(errno, "utimensat", rel);
  return Ok();
}

SysFailure CopyDir(int srcDir, int dstDir, const std::string& relDir, Ctx* ctx, int depth);

SysFailure CopyEntry(int srcDir, int dstDir, const std::string& name, const std::string& rel, Ctx* ctx, int depth) {
  struct stat st;
  if (::fstatat(srcDir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Ok();  // removed while we copied
    return Fail(errno, "fstatat", rel);
  }
  ctx->entries++;
  if (S_ISDIR(st.st_mode)) {
    if (::mkdirat(dstDir, name.c_str(), 0700) != 0) return Fail(errno, "mkdirat", rel);
    Fd s(::openat(srcDir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (s.get() < 0) return Fail(errno, "openat", rel);
    Fd d(::openat(dstDir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (d.get() < 0) return Fail(errno, "openat", rel);
    SysFailure f = CopyDir(s.get(), d.get(), rel, ctx, depth + 1);
    if (f.err != 0) return f;
    f = Meta(srcDir, dstDir, name, st, rel);
    return f.err != 0 ? f : Times(dstDir, name, st, rel);  // after its children
  }
  if (S_ISREG(st.st_mode)) {
    auto key = std::make_pair(st.st_dev, st.st_ino);
    if (st.st_nlink > 1) {
      auto it = ctx->links.find(key);
      if (it != ctx->links.end()) {
        if (::linkat(ctx->dstRoot, it->second.c_str(), dstDir, name.c_str(), 0) != 0) return Fail(errno, "linkat", rel, it->second);
        return Ok();
      }
    }
    Fd s(::openat(srcDir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (s.get() < 0) return Fail(errno, "openat", rel);
    Fd d(::openat(dstDir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (d.get() < 0) return Fail(errno, "openat", rel);
    SysFailure f = CopyData(s.get(), d.get(), st.st_size, ctx, rel);
    if (f.err != 0) return f;
    f = Meta(srcDir, dstDir, name, st, rel);
    if (f.err != 0) return f;
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::futimens(d.get(), ts) != 0) return Fail(errno, "futimens", rel);
    if (st.st_nlink > 1) ctx->links.emplace(key, rel);
    return Ok();
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 255) + 1, '\0');
    for (;;) {
      ssize_t n = ::readlinkat(srcDir, name.c_str(), &target[0], target.size());
      if (n < 0) return Fail(errno, "readlinkat", rel);
      if (static_cast<size_t>(n) < target.size()) { target.resize(static_cast<size_t>(n)); break; }
      target.resize(target.size() * 2);
    }
    if (::symlinkat(target.c_str(), dstDir, name.c_str()) != 0) return Fail(errno, "symlinkat", rel);
  } else if (::mknodat(dstDir, name.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
    return Fail(errno, "mknodat", rel);  // devices, fifos, sockets
  }
  SysFailure f = Meta(srcDir, dstDir, name, st, rel);
  return f.err != 0 ? f : Times(dstDir, name, st, rel);
}

SysFailure CopyDir(int srcDir, int dstDir, const std::string& relDir, Ctx* ctx, int depth) {
  if (depth > 4096) return Fail(ELOOP, "copyTree", relDir);
  int dupFd = ::dup(srcDir);
  if (dupFd < 0) return Fail(errno, "dup", relDir);
  DIR* dir = ::fdopendir(dupFd);
  if (dir == nullptr) {
    int err = errno;
    ::close(dupFd);
    return Fail(err, "fdopendir", relDir);
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* ent = ::readdir(dir);
    if (ent == nullptr) {
      if (errno != 0) {
        int err = errno;
        ::closedir(dir);
        return Fail(err, "getdents64", relDir);
      }
      break;
    }
    if (std::strcmp(ent->d_name, ".") != 0 && std::strcmp(ent->d_name, "..") != 0) names.emplace_back(ent->d_name);
  }
  ::closedir(dir);
  for (const std::string& name : names) {
    SysFailure f = CopyEntry(srcDir, dstDir, name, relDir.empty() ? name : relDir + "/" + name, ctx, depth);
    if (f.err != 0) return f;
  }
  return Ok();
}

struct Copied { uint64_t entries = 0; };

}  // namespace

// copyTreeInto(srcDirFd, dstDirFd): copies every entry below srcDirFd into dstDirFd (an empty
// directory), then the root's owner, mode, xattrs and times — getdents64, fstatat, mkdirat,
// openat, ioctl(FICLONE) / copy_file_range / read+write, linkat, symlinkat, mknodat,
// fchownat, fchmodat, l*xattr, utimensat: man 2 of each. Resolves to the number of entries.
static Napi::Value JS_copyTreeInto(const Napi::CallbackInfo& info) {
  int64_t src = 0, dst = 0;
  if (!ArgInt(info, 0, "srcDirFd", &src) || !ArgInt(info, 1, "dstDirFd", &dst)) return info.Env().Undefined();
  return Worker<Copied>::Run(info.Env(), [=](Copied* out) {
    Ctx ctx;
    ctx.dstRoot = static_cast<int>(dst);
    // Stat the root before reading it: the readdir below may move its atime (relatime).
    struct stat st;
    if (::fstat(static_cast<int>(src), &st) != 0) return Fail(errno, "fstat", ".");
    SysFailure f = CopyDir(static_cast<int>(src), static_cast<int>(dst), "", &ctx, 0);
    out->entries = ctx.entries;
    if (f.err != 0) return f;
    if (::fchown(static_cast<int>(dst), st.st_uid, st.st_gid) != 0) return Fail(errno, "fchown", ".");
    if (::fchmod(static_cast<int>(dst), st.st_mode & 07777) != 0) return Fail(errno, "fchmod", ".");
    f = CopyXattrs(Proc(static_cast<int>(src), ""), Proc(static_cast<int>(dst), ""), false, ".");
    if (f.err != 0) return f;
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::futimens(static_cast<int>(dst), ts) != 0) return Fail(errno, "futimens", ".");
    return Ok();
  }, [](Napi::Env env, Copied* c) -> Napi::Value { return Napi::Number::New(env, static_cast<double>(c->entries)); });
}

void InitCopyTree(Napi::Env env, Napi::Object exports) {
  exports.Set("copyTreeInto", Napi::Function::New(env, JS_copyTreeInto, "copyTreeInto"));
}

}  // namespace gd
