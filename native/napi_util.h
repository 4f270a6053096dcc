// napi_util.h: the one copy of the addon's shared helpers — argument readers, the
// errno -> Node-shaped error conversion, and the Worker that runs a syscall on the libuv
// thread pool and settles a Promise. No syscalls and no policy here.
#ifndef GRAPHDRIVER_NATIVE_NAPI_UTIL_H_
#define GRAPHDRIVER_NATIVE_NAPI_UTIL_H_

#include <napi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace gd {

// What a failed syscall leaves behind: enough to build an error shaped like Node's
// fs errors. `call` renders the call itself for the message (libpathrs style).
struct SysFailure {
  int err = 0;              // positive errno; 0 means success
  std::string syscall;      // e.g. "umount2"
  std::string path;         // optional
  std::string dest;         // optional (rename, link, mount target)
  std::string call;         // optional rendering, e.g. "umount2('/x', MNT_DETACH)"
  int64_t opIndex = -1;     // for batch calls: the index of the operation that failed
  // A failure outside errno's space (a library's own codes, e.g. libext2fs's EXT2_ET_*): `code`
  // is a stable code ('ERR_GRAPHDRIVER_MKFS'), `message` the library's words, `props` extra
  // string properties ({"ext2Code", "EXT2_ET_TOOSMALL"}); `err` stays 0 and no errno is set.
  std::string code;
  std::string message;
  std::vector<std::pair<std::string, std::string>> props;
  bool Failed() const { return err != 0 || !code.empty(); }
};

inline SysFailure Ok() { return SysFailure{}; }
SysFailure Fail(int err, std::string syscall, std::string path = "", std::string dest = "",
                std::string call = "");

// Error with code ('EBUSY'), errno (negative, as Node's fs uses), syscall, path, dest; for a
// failure with its own `code`: that code, the library's message, syscall, path, props, no errno.
Napi::Error MakeErrnoError(Napi::Env env, const SysFailure& failure);

// Argument readers. Each returns false after throwing a TypeError naming the argument.
bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out);
bool ArgOptString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out,
                  bool* present);
bool ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t* out);
bool ArgUint(const Napi::CallbackInfo& info, size_t i, const char* name, uint64_t* out);
bool ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out);

// Worker<Result>: `execute` runs on a libuv pool thread and may only make syscalls and
// fill `Result`; `done` runs on the JS thread and turns Result into a JS value.
template <typename Result>
class Worker : public Napi::AsyncWorker {
 public:
  using Execute_t = std::function<SysFailure(Result*)>;
  using Done_t = std::function<Napi::Value(Napi::Env, Result*)>;

  static Napi::Value Run(Napi::Env env, Execute_t execute, Done_t done) {
    auto* worker = new Worker(env, std::move(execute), std::move(done));
    Napi::Promise promise = worker->deferred_.Promise();
    worker->Queue();
    return promise;
  }

 protected:
  void Execute() override { failure_ = execute_(&result_); }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (failure_.Failed()) {
      deferred_.Reject(MakeErrnoError(env, failure_).Value());
      return;
    }
    deferred_.Resolve(done_ ? done_(env, &result_) : env.Undefined());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Worker(Napi::Env env, Execute_t execute, Done_t done)
      : Napi::AsyncWorker(env, "graphdriver"),
        deferred_(Napi::Promise::Deferred::New(env)),
        execute_(std::move(execute)),
        done_(std::move(done)) {}

  Napi::Promise::Deferred deferred_;
  Execute_t execute_;
  Done_t done_;
  Result result_{};
  SysFailure failure_;
};

struct NoResult {};

// For calls that return nothing on success.
inline Napi::Value RunVoid(Napi::Env env, std::function<SysFailure()> execute) {
  return Worker<NoResult>::Run(
      env, [execute](NoResult*) { return execute(); }, nullptr);
}

// Renders a string for a call description: '/path' with quotes.
std::string Quote(const std::string& s);

// Registration hook each family calls from addon.cc.
void InitMount(Napi::Env env, Napi::Object exports);
void InitMountApi(Napi::Env env, Napi::Object exports);
void InitStatfs(Napi::Env env, Napi::Object exports);
void InitXattr(Napi::Env env, Napi::Object exports);
void InitInode(Napi::Env env, Napi::Object exports);
void InitResolve(Napi::Env env, Napi::Object exports);
void InitCopy(Napi::Env env, Napi::Object exports);
void InitApply(Napi::Env env, Napi::Object exports);
void InitScan(Napi::Env env, Napi::Object exports);
void InitRead(Napi::Env env, Napi::Object exports);
void InitCopyTree(Napi::Env env, Napi::Object exports);
void InitBtrfs(Napi::Env env, Napi::Object exports);
void InitQuota(Napi::Env env, Napi::Object exports);
void InitMkfsExt4(Napi::Env env, Napi::Object exports);

}  // namespace gd

#endif  // GRAPHDRIVER_NATIVE_NAPI_UTIL_H_
