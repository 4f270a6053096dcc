// scan.cc: listing trees in bulk for changes() and diff(): one call lists a directory (or a
// whole tree) with the lstat of every entry (and optionally its xattrs). A round trip to the
// thread pool costs tens of microseconds here, so calls are per tree, not per file. Both open the directory with O_NOFOLLOW|O_DIRECTORY and act
// on entries only relative to that fd, never following a final symlink. Async. What to walk
// and how to compare is decided in lib/archive/.
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "napi_util.h"

namespace gd {

namespace {

constexpr int kStatFields = 13;  // see JS_scanDir's doc line for the order
constexpr int kWithCapability = 1;
constexpr int kWithAllXattrs = 2;

struct Entry {
  std::string name;
  struct stat st;
  std::vector<std::pair<std::string, std::string>> xattrs;
  std::string linkTarget;  // for a symlink, when kWithLinkTargets
};

constexpr int kWithLinkTargets = 4;

// readlinkat(dirfd, name) into e->linkTarget; a symlink changed meanwhile just reads as it is now.
SysFailure ReadLinkTarget(int dirfd, Entry* e) {
  std::string buf(static_cast<size_t>(e->st.st_size > 0 ? e->st.st_size : 255) + 1, '\0');
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t n = ::readlinkat(dirfd, e->name.c_str(), &buf[0], buf.size());
    if (n < 0) return Fail(errno, "readlinkat", e->name);
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      e->linkTarget = std::move(buf);
      return Ok();
    }
    buf.resize(buf.size() * 2);
  }
  return Fail(ENAMETOOLONG, "readlinkat", e->name);
}

struct Scan {
  std::vector<Entry> entries;
};

std::string ProcPath(int dirfd, const std::string& name) {
  return "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
}

// getxattrat(2) / listxattrat(2) (Linux 6.13; one number on every architecture) act on a name
// relative to a dir fd, four times cheaper than resolving /proc/self/fd/N/name. Older kernels
// answer ENOSYS, and the /proc path is used instead.
constexpr long kSysGetxattrat = 464;
constexpr long kSysListxattrat = 465;
struct XattrArgs {
  uint64_t value;
  uint32_t size;
  uint32_t flags;
};

// An entry named relative to a directory fd, for the xattr calls.
struct At {
  int dirfd;
  const std::string& name;
  bool useAt;  // the *xattrat syscalls exist
};

ssize_t ListXattr(const At& at, char* buf, size_t size) {
  if (at.useAt) return ::syscall(kSysListxattrat, at.dirfd, at.name.c_str(), AT_SYMLINK_NOFOLLOW, buf, size);
  return ::llistxattr(ProcPath(at.dirfd, at.name).c_str(), buf, size);
}

ssize_t GetXattrRaw(const At& at, const std::string& key, char* buf, size_t size) {
  if (at.useAt) {
    XattrArgs args = {reinterpret_cast<uint64_t>(buf), static_cast<uint32_t>(size), 0};
    return ::syscall(kSysGetxattrat, at.dirfd, at.name.c_str(), AT_SYMLINK_NOFOLLOW, key.c_str(), &args, sizeof(args));
  }
  return ::lgetxattr(ProcPath(at.dirfd, at.name).c_str(), key.c_str(), buf, size);
}

// Reads one xattr value (not following); false when it is absent.
bool GetXattr(const At& at, const std::string& key, std::string* out, int* err) {
  for (int attempt = 0; attempt < 4; attempt++) {
    ssize_t n = GetXattrRaw(at, key, nullptr, 0);
    if (n < 0) {
      if (errno == ENODATA || errno == ENOTSUP) return false;
      *err = errno;
      return false;
    }
    out->resize(static_cast<size_t>(n));
    ssize_t got = n == 0 ? 0 : GetXattrRaw(at, key, &(*out)[0], out->size());
    if (got >= 0) {
      out->resize(static_cast<size_t>(got));
      return true;
    }
    if (errno != ERANGE) {
      if (errno == ENODATA) return false;
      *err = errno;
      return false;
    }
  }
  *err = ERANGE;
  return false;
}

SysFailure ReadXattrs(int dirfd, Entry* e, int flags, bool* useAt) {
  At at{dirfd, e->name, *useAt};
  int err = 0;
  if (flags & kWithAllXattrs) {
    std::string list;
    ssize_t n = ListXattr(at, nullptr, 0);
    if (n < 0 && errno == ENOSYS && at.useAt) {
      *useAt = at.useAt = false;
      n = ListXattr(at, nullptr, 0);
    }
    if (n < 0) return errno == ENOTSUP ? Ok() : Fail(errno, "llistxattr", e->name);
    if (n == 0) return Ok();
    list.resize(static_cast<size_t>(n) + 256);
    n = ListXattr(at, &list[0], list.size());
    if (n < 0) return Fail(errno, "llistxattr", e->name);
    list.resize(static_cast<size_t>(n));
    for (size_t start = 0; start < list.size();) {
      size_t end = list.find('\0', start);
      if (end == std::string::npos) end = list.size();
      std::string key = list.substr(start, end - start);
      start = end + 1;
      if (key.empty()) continue;
      std::string value;
      if (GetXattr(at, key, &value, &err)) e->xattrs.emplace_back(key, value);
      if (err != 0) return Fail(err, "lgetxattr", e->name);
    }
    return Ok();
  }
  if (S_ISLNK(e->st.st_mode)) return Ok();
  std::string value;
  bool found = GetXattr(at, "security.capability", &value, &err);
  if (!found && err == ENOSYS && at.useAt) {
    *useAt = at.useAt = false;
    err = 0;
    found = GetXattr(at, "security.capability", &value, &err);
  }
  if (found) e->xattrs.emplace_back("security.capability", value);
  if (err != 0) return Fail(err, "lgetxattr", e->name);
  return Ok();
}

void FillStats(double* f, const struct stat& st) {
  uint64_t ino = static_cast<uint64_t>(st.st_ino);
  f[0] = st.st_mode; f[1] = st.st_uid; f[2] = st.st_gid;
  f[3] = major(st.st_rdev); f[4] = minor(st.st_rdev);
  f[5] = static_cast<double>(st.st_size);
  f[6] = static_cast<double>(st.st_mtim.tv_sec); f[7] = static_cast<double>(st.st_mtim.tv_nsec);
  f[8] = static_cast<double>(ino >> 32); f[9] = static_cast<double>(ino & 0xffffffffu);
  f[10] = static_cast<double>(st.st_dev); f[11] = static_cast<double>(st.st_nlink);
  f[12] = static_cast<double>(st.st_blocks);
}

Napi::Value XattrsToJs(Napi::Env env, const Entry& e) {
  if (e.xattrs.empty()) return env.Null();
  Napi::Array xs = Napi::Array::New(env, e.xattrs.size() * 2);
  uint32_t k = 0;
  for (const auto& [key, value] : e.xattrs) {
    xs.Set(k++, Napi::String::New(env, key));
    xs.Set(k++, Napi::Buffer<char>::Copy(env, value.data(), value.size()));
  }
  return xs;
}

}  // namespace

// scanDir(path, flags): open(path, O_DIRECTORY|O_NOFOLLOW), getdents64, fstatat(AT_SYMLINK_NOFOLLOW)
// each entry — man 2 getdents64, man 2 fstatat. Resolves to { names, stats: Float64Array of
// [mode, uid, gid, rdevMajor, rdevMinor, size, mtimeSec, mtimeNsec, inoHigh, inoLow, dev, nlink, blocks]
// per entry, xattrs: Array<Array<string|Buffer>|null> } sorted by name (byte order). flags: 1 =
// read security.capability, 2 = read every xattr (llistxattr + lgetxattr).
static Napi::Value JS_scanDir(const Napi::CallbackInfo& info) {
  std::string path;
  int64_t flags = 0;
  if (!ArgString(info, 0, "path", &path) || !ArgInt(info, 1, "flags", &flags)) return info.Env().Undefined();
  return Worker<Scan>::Run(info.Env(), [=](Scan* scan) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Fail(errno, "open", path);
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
      int err = errno;
      ::close(fd);
      return Fail(err, "fdopendir", path);
    }
    SysFailure result = Ok();
    bool useAt = true;
    for (;;) {
      errno = 0;
      struct dirent* ent = ::readdir(dir);
      if (ent == nullptr) {
        if (errno != 0) result = Fail(errno, "getdents64", path);
        break;
      }
      if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
      Entry e;
      e.name = ent->d_name;
      if (::fstatat(::dirfd(dir), ent->d_name, &e.st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed while we looked
        result = Fail(errno, "fstatat", path + "/" + e.name);
        break;
      }
      if (flags & (kWithCapability | kWithAllXattrs)) {
        result = ReadXattrs(::dirfd(dir), &e, static_cast<int>(flags), &useAt);
        if (result.err != 0) break;
      }
      scan->entries.push_back(std::move(e));
    }
    ::closedir(dir);
    std::sort(scan->entries.begin(), scan->entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
    return result;
  }, [](Napi::Env env, Scan* scan) -> Napi::Value {
    size_t n = scan->entries.size();
    Napi::Object out = Napi::Object::New(env);
    Napi::Array names = Napi::Array::New(env, n);
    Napi::Float64Array stats = Napi::Float64Array::New(env, n * kStatFields);
    Napi::Array xattrs = Napi::Array::New(env, n);
    for (size_t i = 0; i < n; i++) {
      const Entry& e = scan->entries[i];
      names.Set(static_cast<uint32_t>(i), Napi::String::New(env, e.name));
      FillStats(stats.Data() + i * kStatFields, e.st);
      xattrs.Set(static_cast<uint32_t>(i), XattrsToJs(env, e));
    }
    out.Set("names", names);
    out.Set("stats", stats);
    out.Set("xattrs", xattrs);
    return out;
  });
}

namespace {

struct TreeEntry {
  Entry e;
  int32_t parent;  // index of the parent directory's entry, -1 for the root's children
};

struct Tree {
  std::vector<TreeEntry> entries;
};

constexpr size_t kMaxTreeEntries = 20'000'000;

// Appends the entries under `dirfd` (sorted by name, each directory followed by its subtree).
SysFailure ScanTreeAt(int dirfd, const std::string& where, int32_t parent, int flags, bool* useAt, Tree* tree, int depth) {
  if (depth > 4096) return Fail(ELOOP, "scanTree", where);
  DIR* dir = ::fdopendir(dirfd);
  if (dir == nullptr) {
    int err = errno;
    ::close(dirfd);
    return Fail(err, "fdopendir", where);
  }
  std::vector<Entry> here;
  SysFailure result = Ok();
  for (;;) {
    errno = 0;
    struct dirent* ent = ::readdir(dir);
    if (ent == nullptr) {
      if (errno != 0) result = Fail(errno, "getdents64", where);
      break;
    }
    if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
    Entry e;
    e.name = ent->d_name;
    if (::fstatat(::dirfd(dir), ent->d_name, &e.st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      result = Fail(errno, "fstatat", where + "/" + e.name);
      break;
    }
    if (flags & (kWithCapability | kWithAllXattrs)) {
      result = ReadXattrs(::dirfd(dir), &e, flags, useAt);
      if (result.err != 0) break;
    }
    if ((flags & kWithLinkTargets) && S_ISLNK(e.st.st_mode)) {
      result = ReadLinkTarget(::dirfd(dir), &e);
      if (result.err != 0) break;
    }
    here.push_back(std::move(e));
  }
  if (result.err == 0) {
    std::sort(here.begin(), here.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
    for (auto& e : here) {
      if (tree->entries.size() >= kMaxTreeEntries) {
        result = Fail(E2BIG, "scanTree", where);
        break;
      }
      bool isDir = S_ISDIR(e.st.st_mode);
      std::string name = e.name;
      tree->entries.push_back({std::move(e), parent});
      if (!isDir) continue;
      int32_t me = static_cast<int32_t>(tree->entries.size() - 1);
      int child = ::openat(::dirfd(dir), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child < 0) {
        if (errno == ENOENT) continue;
        result = Fail(errno, "openat", where + "/" + name);
        break;
      }
      result = ScanTreeAt(child, where + "/" + name, me, flags, useAt, tree, depth + 1);
      if (result.err != 0) break;
    }
  }
  ::closedir(dir);
  return result;
}

}  // namespace

// scanTree(path, flags): scanDir of `path` and, depth first, of every directory below it
// (each opened with openat(O_DIRECTORY|O_NOFOLLOW) relative to its parent). Resolves to
// { names, parents: Int32Array, stats, xattrs, links } in walk order (links: symlink targets by
// entry index, with flag 4): each directory's entries sorted
// by name, a directory followed by its subtree; parents[i] is the index of the entry's
// directory (-1 for the root's own entries).
static Napi::Value JS_scanTree(const Napi::CallbackInfo& info) {
  std::string path;
  int64_t flags = 0;
  if (!ArgString(info, 0, "path", &path) || !ArgInt(info, 1, "flags", &flags)) return info.Env().Undefined();
  return Worker<Tree>::Run(info.Env(), [=](Tree* tree) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Fail(errno, "open", path);
    bool useAt = true;
    return ScanTreeAt(fd, path, -1, static_cast<int>(flags), &useAt, tree, 0);
  }, [](Napi::Env env, Tree* tree) -> Napi::Value {
    size_t n = tree->entries.size();
    Napi::Object out = Napi::Object::New(env);
    Napi::Array names = Napi::Array::New(env, n);
    Napi::Int32Array parents = Napi::Int32Array::New(env, n);
    Napi::Float64Array stats = Napi::Float64Array::New(env, n * kStatFields);
    Napi::Array xattrs = Napi::Array::New(env, n);
    Napi::Object links = Napi::Object::New(env);  // entry index -> target, symlinks only
    for (size_t i = 0; i < n; i++) {
      const Entry& e = tree->entries[i].e;
      names.Set(static_cast<uint32_t>(i), Napi::String::New(env, e.name));
      parents[i] = tree->entries[i].parent;
      FillStats(stats.Data() + i * kStatFields, e.st);
      xattrs.Set(static_cast<uint32_t>(i), XattrsToJs(env, e));
      if (!e.linkTarget.empty()) links.Set(static_cast<uint32_t>(i), Napi::Buffer<char>::Copy(env, e.linkTarget.data(), e.linkTarget.size()));
    }
    out.Set("names", names);
    out.Set("parents", parents);
    out.Set("links", links);
    out.Set("stats", stats);
    out.Set("xattrs", xattrs);
    return out;
  });
}

void InitScan(Napi::Env env, Napi::Object exports) {
  exports.Set("scanDir", Napi::Function::New(env, JS_scanDir, "scanDir"));
  exports.Set("scanTree", Napi::Function::New(env, JS_scanTree, "scanTree"));
}

}  // namespace gd
