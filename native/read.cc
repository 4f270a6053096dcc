// read.cc: reading file data in bulk for diff(): many small files straight into one tar
// segment per call (a round trip to the thread pool costs tens of microseconds, a small file a
// few), and the data extents of a sparse file. Files are opened O_NOFOLLOW beneath a root; never written.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <vector>

#include "napi_util.h"

namespace gd {

namespace {

// openat2(dirfd, path, O_RDONLY|O_NOFOLLOW, RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), or openat with
// O_NOFOLLOW where the kernel lacks openat2 (then *useOpenat2 turns false for the next calls).
int OpenBeneath(int dirfd, const std::string& path, bool* useOpenat2) {
  if (*useOpenat2) {
    struct open_how how = {};
    how.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    int fd = static_cast<int>(::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof(how)));
    if (fd >= 0 || errno != ENOSYS) return fd;
    *useOpenat2 = false;
  }
  return ::openat(dirfd, path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

// Reads up to `size` bytes; the count read, or -errno.
double ReadUpTo(int fd, char* dst, size_t size) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, dst + got, size - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return static_cast<double>(got);
}

}  // namespace

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

namespace {
struct Into {
  std::shared_ptr<Napi::ObjectReference> keep;  // the target Buffer stays alive while we write it
  char* target = nullptr;
  size_t targetSize = 0;
  std::vector<double> lengths;
};
}  // namespace

// readFilesInto(rootPath, paths, sizes, offsets, target): like readFiles, but each file's data
// is read straight into `target` at offsets[i] — the caller lays out tar headers around them,
// so a tar segment of many small files is built with no copy. Resolves to the lengths read.
static Napi::Value JS_readFilesInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string rootPath;
  if (!ArgString(info, 0, "rootPath", &rootPath)) return env.Undefined();
  if (info.Length() < 5 || !info[1].IsArray() || !info[2].IsArray() || !info[3].IsArray() || !info[4].IsBuffer()) {
    Napi::TypeError::New(env, "Expected (rootPath, paths: string[], sizes: number[], offsets: number[], target: Buffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array pathsArr = info[1].As<Napi::Array>(), sizesArr = info[2].As<Napi::Array>(), offsArr = info[3].As<Napi::Array>();
  auto target = info[4].As<Napi::Buffer<char>>();
  std::vector<std::string> paths;
  std::vector<size_t> sizes, offsets;
  for (uint32_t i = 0; i < pathsArr.Length(); i++) {
    Napi::Value p = pathsArr.Get(i), sz = sizesArr.Get(i), off = offsArr.Get(i);
    if (!p.IsString() || !sz.IsNumber() || !off.IsNumber()) {
      Napi::TypeError::New(env, "Expected a path, a size and an offset for each file").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    size_t size = static_cast<size_t>(sz.As<Napi::Number>().Int64Value());
    size_t offset = static_cast<size_t>(off.As<Napi::Number>().Int64Value());
    if (offset > target.Length() || size > target.Length() - offset) {
      Napi::RangeError::New(env, "readFilesInto: a file does not fit in the target buffer").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    paths.push_back(p.As<Napi::String>().Utf8Value());
    sizes.push_back(size);
    offsets.push_back(offset);
  }
  auto into = std::make_shared<Into>();
  into->keep = std::make_shared<Napi::ObjectReference>(Napi::Persistent(target.As<Napi::Object>()));
  into->target = target.Data();
  into->targetSize = target.Length();
  return Worker<std::shared_ptr<Into>>::Run(env, [=](std::shared_ptr<Into>* out) {
    *out = into;
    int dirfd = ::open(rootPath.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd < 0) return Fail(errno, "open", rootPath);
    bool useOpenat2 = true;
    for (size_t i = 0; i < paths.size(); i++) {
      int fd = OpenBeneath(dirfd, paths[i], &useOpenat2);
      if (fd < 0) {
        into->lengths.push_back(-errno);
        continue;
      }
      into->lengths.push_back(ReadUpTo(fd, into->target + offsets[i], sizes[i]));
      ::close(fd);
    }
    ::close(dirfd);
    return Ok();
  }, [](Napi::Env e, std::shared_ptr<Into>* r) -> Napi::Value {
    Napi::Array lengths = Napi::Array::New(e, (*r)->lengths.size());
    for (size_t i = 0; i < (*r)->lengths.size(); i++) lengths.Set(static_cast<uint32_t>(i), Napi::Number::New(e, (*r)->lengths[i]));
    return lengths;
  });
}

void InitRead(Napi::Env env, Napi::Object exports) {
  exports.Set("readFilesInto", Napi::Function::New(env, JS_readFilesInto, "readFilesInto"));
  exports.Set("sparseMap", Napi::Function::New(env, JS_sparseMap, "sparseMap"));
}

}  // namespace gd
