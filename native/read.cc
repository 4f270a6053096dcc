// read.cc: reading file data in bulk for diff(): many small files into one buffer per call
// (a round trip to the thread pool costs tens of microseconds, a small file a few), and the
// data extents of a sparse file. Files are opened O_NOFOLLOW beneath a root; never written.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "napi_util.h"

namespace gd {

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

void InitRead(Napi::Env env, Napi::Object exports) {
  exports.Set("readFiles", Napi::Function::New(env, JS_readFiles, "readFiles"));
  exports.Set("sparseMap", Napi::Function::New(env, JS_sparseMap, "sparseMap"));
}

}  // namespace gd
