// napi_util.cc: errno -> JS error and argument readers (see napi_util.h).
#include "napi_util.h"

#include <uv.h>

#include <cstring>

namespace gd {

SysFailure Fail(int err, std::string syscall, std::string path, std::string dest,
                std::string call) {
  SysFailure f;
  f.err = err;
  f.syscall = std::move(syscall);
  f.path = std::move(path);
  f.dest = std::move(dest);
  f.call = std::move(call);
  return f;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

Napi::Error MakeErrnoError(Napi::Env env, const SysFailure& f) {
  if (!f.code.empty()) {
    // Not an errno: the library's code and words, the call and the path, as for an errno.
    std::string call = f.call.empty() ? f.syscall + (f.path.empty() ? "" : " " + Quote(f.path)) : f.call;
    Napi::Error error = Napi::Error::New(env, f.code + ": " + f.message + ", " + call);
    error.Set("code", Napi::String::New(env, f.code));
    error.Set("syscall", Napi::String::New(env, f.syscall));
    if (!f.path.empty()) error.Set("path", Napi::String::New(env, f.path));
    for (const auto& [key, value] : f.props) error.Set(key, Napi::String::New(env, value));
    return error;
  }
  // libuv error codes are negated errnos on Linux, so uv_err_name gives Node's own names;
  // for the errnos libuv does not name (EDQUOT, EUCLEAN, ...) glibc's strerrorname_np does.
  const char* code = uv_err_name(-f.err);
  std::string codeStr = code != nullptr ? code : "";
  if (codeStr.empty() || codeStr.rfind("Unknown system error", 0) == 0) {
    const char* glibcName = ::strerrorname_np(f.err);
    codeStr = glibcName != nullptr ? glibcName : "UNKNOWN";
  }
  std::string call = f.call;
  if (call.empty()) {
    call = f.syscall;
    if (!f.path.empty()) call += " " + Quote(f.path);
    if (!f.dest.empty()) call += " -> " + Quote(f.dest);
  }
  std::string message = codeStr + ": " + std::strerror(f.err) + ", " + call;
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, codeStr));
  error.Set("errno", Napi::Number::New(env, -f.err));
  error.Set("syscall", Napi::String::New(env, f.syscall));
  if (!f.path.empty()) error.Set("path", Napi::String::New(env, f.path));
  if (!f.dest.empty()) error.Set("dest", Napi::String::New(env, f.dest));
  if (f.opIndex >= 0) error.Set("opIndex", Napi::Number::New(env, static_cast<double>(f.opIndex)));
  return error;
}

static bool Missing(const Napi::CallbackInfo& info, size_t i, const char* name,
                    const char* what) {
  std::string msg = std::string("Expected ") + what + " for argument '" + name + "'";
  Napi::TypeError::New(info.Env(), msg).ThrowAsJavaScriptException();
  (void)i;
  return false;
}

bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) return Missing(info, i, name, "a string");
  *out = info[i].As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) return Missing(info, i, name, "a string without NUL");
  return true;
}

bool ArgOptString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out,
                  bool* present) {
  if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) {
    *present = false;
    return true;
  }
  *present = true;
  return ArgString(info, i, name, out);
}

bool ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t* out) {
  if (info.Length() <= i) return Missing(info, i, name, "an integer");
  if (info[i].IsBigInt()) {
    bool lossless = true;
    *out = info[i].As<Napi::BigInt>().Int64Value(&lossless);
    return lossless ? true : Missing(info, i, name, "a 64-bit integer");
  }
  if (!info[i].IsNumber()) return Missing(info, i, name, "an integer");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d))) return Missing(info, i, name, "an integer");
  *out = static_cast<int64_t>(d);
  return true;
}

bool ArgUint(const Napi::CallbackInfo& info, size_t i, const char* name, uint64_t* out) {
  if (info.Length() > i && info[i].IsBigInt()) {
    bool lossless = true;
    *out = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    return lossless ? true : Missing(info, i, name, "an unsigned 64-bit integer");
  }
  int64_t v = 0;
  if (!ArgInt(info, i, name, &v)) return false;
  if (v < 0) return Missing(info, i, name, "a non-negative integer");
  *out = static_cast<uint64_t>(v);
  return true;
}

bool ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out) {
  if (info.Length() <= i || !info[i].IsBuffer()) return Missing(info, i, name, "a Buffer");
  auto buf = info[i].As<Napi::Buffer<char>>();
  out->assign(buf.Data(), buf.Length());
  return true;
}

}  // namespace gd
