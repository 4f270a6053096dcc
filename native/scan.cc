// scan.cc: reading trees in bulk for changes() and diff(): one call lists a directory (or a
// whole tree) with the lstat of every entry (and optionally its xattrs), another reads a set
// of small files into one buffer. A round trip to the thread pool costs tens of microseconds
// here, so calls are per tree and per megabytes, not per file. Both open the directory with O_NOFOLLOW|O_DIRECTORY and act
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
};

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
// { names, parents: Int32Array, stats, xattrs } in walk order: each directory's entries sorted
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
    for (size_t i = 0; i < n; i++) {
      const Entry& e = tree->entries[i].e;
      names.Set(static_cast<uint32_t>(i), Napi::String::New(env, e.name));
      parents[i] = tree->entries[i].parent;
      FillStats(stats.Data() + i * kStatFields, e.st);
      xattrs.Set(static_cast<uint32_t>(i), XattrsToJs(env, e));
    }
    out.Set("names", names);
    out.Set("parents", parents);
    out.Set("stats", stats);
    out.Set("xattrs", xattrs);
    return out;
  });
}

namespace {
struct Files {
  char* data = nullptr;          // malloc'd; handed to the JS Buffer without a copy
  size_t size = 0;
  std::vector<double> lengths;  // -errno for a file that could not be read
  ~Files() { std::free(data); }
};
}  // namespace

// readFiles(rootPath, paths, sizes): open(rootPath, O_DIRECTORY|O_NOFOLLOW), then for each
// path (relative, may contain '/') openat2(O_RDONLY|O_NOFOLLOW, RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS) — or openat(O_NOFOLLOW) where openat2 is missing — + read up to its size
// + close — man 2 openat2, man 2 read.
// Resolves to { data: Buffer, lengths: number[] } (a negative length is -errno for that file).
static Napi::Value JS_readFiles(const Napi::CallbackInfo& info) {
  std::string dirPath;
  if (!ArgString(info, 0, "dirPath", &dirPath)) return info.Env().Undefined();
  if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsArray()) {
    Napi::TypeError::New(info.Env(), "Expected (dirPath, names: string[], sizes: number[])").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  Napi::Array namesArr = info[1].As<Napi::Array>();
  Napi::Array sizesArr = info[2].As<Napi::Array>();
  std::vector<std::string> names;
  std::vector<size_t> sizes;
  size_t total = 0;
  for (uint32_t i = 0; i < namesArr.Length(); i++) {
    Napi::Value n = namesArr.Get(i), s = sizesArr.Get(i);
    if (!n.IsString() || !s.IsNumber()) {
      Napi::TypeError::New(info.Env(), "Expected a string name and a number size for each file").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    names.push_back(n.As<Napi::String>().Utf8Value());
    sizes.push_back(static_cast<size_t>(s.As<Napi::Number>().Int64Value()));
    total += sizes.back();
  }
  return Worker<Files>::Run(info.Env(), [=](Files* out) {
    int dirfd = ::open(dirPath.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd < 0) return Fail(errno, "open", dirPath);
    out->data = static_cast<char*>(std::malloc(total > 0 ? total : 1));
    if (out->data == nullptr) {
      ::close(dirfd);
      return Fail(ENOMEM, "malloc", dirPath);
    }
    out->size = total;
    size_t off = 0;
    bool useOpenat2 = true;
    for (size_t i = 0; i < names.size(); i++) {
      int fd = -1;
      if (useOpenat2) {
        struct open_how how = {};
        how.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        fd = static_cast<int>(::syscall(SYS_openat2, dirfd, names[i].c_str(), &how, sizeof(how)));
        if (fd < 0 && errno == ENOSYS) useOpenat2 = false;
      }
      if (!useOpenat2) fd = ::openat(dirfd, names[i].c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        out->lengths.push_back(-errno);
        continue;
      }
      size_t got = 0;
      int err = 0;
      while (got < sizes[i]) {
        ssize_t n = ::read(fd, out->data + off + got, sizes[i] - got);
        if (n < 0) {
          if (errno == EINTR) continue;
          err = errno;
          break;
        }
        if (n == 0) break;
        got += static_cast<size_t>(n);
      }
      ::close(fd);
      out->lengths.push_back(err != 0 ? -err : static_cast<double>(got));
      off += sizes[i];
    }
    ::close(dirfd);
    return Ok();
  }, [](Napi::Env env, Files* f) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    char* data = f->data;
    f->data = nullptr;  // owned by the Buffer from here on
    o.Set("data", Napi::Buffer<char>::New(env, data, f->size, [](Napi::Env, char* p) { std::free(p); }));
    Napi::Array lengths = Napi::Array::New(env, f->lengths.size());
    for (size_t i = 0; i < f->lengths.size(); i++) lengths.Set(static_cast<uint32_t>(i), Napi::Number::New(env, f->lengths[i]));
    o.Set("lengths", lengths);
    return o;
  });
}

namespace {
struct Extents {
  std::vector<double> pairs;  // offset, length, offset, length, ...
};
}  // namespace

// sparseMap(path): open(path, O_RDONLY|O_NOFOLLOW), then lseek(SEEK_DATA) / lseek(SEEK_HOLE)
// to the end — man 2 lseek. Resolves to a Float64Array of [offset, length] data extents.
static Napi::Value JS_sparseMap(const Napi::CallbackInfo& info) {
  std::string path;
  if (!ArgString(info, 0, "path", &path)) return info.Env().Undefined();
  return Worker<Extents>::Run(info.Env(), [=](Extents* out) {
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Fail(errno, "open", path);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return Fail(err, "fstat", path);
    }
    off_t pos = 0;
    while (pos < st.st_size) {
      off_t data = ::lseek(fd, pos, SEEK_DATA);
      if (data < 0) {
        if (errno == ENXIO) break;  // only a hole remains
        int err = errno;
        ::close(fd);
        return Fail(err, "lseek", path, "", "lseek(" + Quote(path) + ", " + std::to_string(pos) + ", SEEK_DATA)");
      }
      off_t hole = ::lseek(fd, data, SEEK_HOLE);
      if (hole < 0) {
        int err = errno;
        ::close(fd);
        return Fail(err, "lseek", path, "", "lseek(" + Quote(path) + ", " + std::to_string(data) + ", SEEK_HOLE)");
      }
      if (hole > st.st_size) hole = st.st_size;
      out->pairs.push_back(static_cast<double>(data));
      out->pairs.push_back(static_cast<double>(hole - data));
      pos = hole;
    }
    ::close(fd);
    return Ok();
  }, [](Napi::Env env, Extents* e) -> Napi::Value {
    Napi::Float64Array a = Napi::Float64Array::New(env, e->pairs.size());
    for (size_t i = 0; i < e->pairs.size(); i++) a[i] = e->pairs[i];
    return a;
  });
}

void InitScan(Napi::Env env, Napi::Object exports) {
  exports.Set("sparseMap", Napi::Function::New(env, JS_sparseMap, "sparseMap"));
  exports.Set("scanDir", Napi::Function::New(env, JS_scanDir, "scanDir"));
  exports.Set("scanTree", Napi::Function::New(env, JS_scanTree, "scanTree"));
  exports.Set("readFiles", Napi::Function::New(env, JS_readFiles, "readFiles"));
}

}  // namespace gd
