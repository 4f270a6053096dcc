// dm.cc: the device-mapper ioctls (struct dm_ioctl, interface version 4) on
// /dev/mapper/control, one exported function per ioctl. See <linux/dm-ioctl.h> and the kernel's
// Documentation/admin-guide/device-mapper/. Async: every call runs on the libuv pool (a suspend
// waits for in-flight I/O; a thin-pool message may commit metadata).
//
// Control fd: every function takes `controlFd` first. Pass the fd from dmOpenControl() (one
// open per process, cheapest), or -1 to open /dev/mapper/control for that call alone and close
// it after. Devices are named by a DevId: a name string, or {name} | {uuid} | {major, minor}
// (exactly one, as the kernel requires). No udev cookies are used (event_nr is 0 on input) and
// the userspace-only DM_UDEV_* flags are never sent: nothing here waits for udev.
//
// Buffers start at 16 KiB and are doubled (up to 64 MiB) while the kernel answers
// DM_BUFFER_FULL_FLAG; the request is then repeated whole (for DM_TARGET_MSG too, as libdm
// does — only messages with output can overflow, and those are queries).
// Errors: `syscall` is the ioctl's name ('DM_DEV_CREATE'), `path` the device (name, uuid or
// 'major:minor'), errno as the kernel gave it (ENXIO: no such device, EEXIST, EBUSY, ...).
// No retries and no policy beyond that buffer growth: lib/devmapper decides.
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "napi_util.h"

namespace gd {

namespace {

constexpr const char* kControlPath = "/dev/mapper/control";
constexpr size_t kInitialBuffer = 16 * 1024;
constexpr size_t kMaxBuffer = 64 * 1024 * 1024;
// Every record the kernel writes after the header is 8-byte aligned (ALIGN_MASK 7 in dm-ioctl.c).
constexpr size_t kAlign = 8;

size_t Align8(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

// How a request names its device; exactly one of name, uuid, dev.
struct DevId {
  std::string name;
  std::string uuid;
  bool byDev = false;
  uint32_t major = 0, minor = 0;

  std::string Describe() const {
    if (!uuid.empty()) return uuid;
    if (byDev) return std::to_string(major) + ":" + std::to_string(minor);
    return name;
  }
  std::string Render() const {
    if (!uuid.empty()) return "{uuid: " + Quote(uuid) + "}";
    if (byDev) return "{dev: " + Describe() + "}";
    return "{name: " + Quote(name) + "}";
  }
};

// A u64 from a JS number (a non-negative integer) or BigInt; false if neither.
bool ToU64(const Napi::Value& v, uint64_t* out) {
  if (v.IsBigInt()) {
    bool lossless = true;
    *out = v.As<Napi::BigInt>().Uint64Value(&lossless);
    return lossless;
  }
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != static_cast<double>(static_cast<uint64_t>(d))) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

// Throws a TypeError; returns undefined for the JS-facing function to return.
Napi::Value ThrowType(const Napi::CallbackInfo& info, const std::string& msg) {
  Napi::TypeError::New(info.Env(), msg).ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

bool TypeError(const Napi::CallbackInfo& info, const std::string& msg) {
  ThrowType(info, msg);
  return false;
}

// Reads argument i as a DevId: a string (a name) or {name} | {uuid} | {major, minor}.
bool ArgDevId(const Napi::CallbackInfo& info, size_t i, DevId* out) {
  if (info.Length() > i && info[i].IsString()) return ArgString(info, i, "device", &out->name);
  if (info.Length() <= i || !info[i].IsObject())
    return TypeError(info, "Expected a name or {name} | {uuid} | {major, minor} for argument 'device'");
  Napi::Object o = info[i].As<Napi::Object>();
  int given = 0;
  auto str = [&](const char* key, std::string* dst) -> bool {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return true;
    if (!v.IsString()) return TypeError(info, std::string("Expected a string for device.") + key);
    *dst = v.As<Napi::String>().Utf8Value();
    if (dst->find('\0') != std::string::npos) return TypeError(info, std::string("device.") + key + " contains NUL");
    if (!dst->empty()) given++;
    return true;
  };
  if (!str("name", &out->name) || !str("uuid", &out->uuid)) return false;
  Napi::Value major = o.Get("major"), minor = o.Get("minor");
  if (!major.IsUndefined() || !minor.IsUndefined()) {
    uint64_t ma = 0, mi = 0;
    if (!ToU64(major, &ma) || !ToU64(minor, &mi) || ma > 0xfff || mi > 0xfffff)
      return TypeError(info, "Expected device.major < 4096 and device.minor < 2^20");
    out->byDev = true;
    out->major = static_cast<uint32_t>(ma);
    out->minor = static_cast<uint32_t>(mi);
    given++;
  }
  if (given != 1) return TypeError(info, "Expected exactly one of device.name, device.uuid, {major, minor}");
  return true;
}

// One request: the command, how it names its device, the input flags, and the payload that
// goes at data_start (target specs, a message).
struct Request {
  unsigned long cmd = 0;
  const char* cmdName = "";
  DevId id;
  uint32_t flags = 0;
  uint32_t targetCount = 0;
  std::string payload;
  std::string call;  // rendering for the error message
};

// The kernel's answer: the header (copied out) and the bytes after it.
struct Reply {
  struct dm_ioctl hdr;
  std::vector<uint64_t> words;  // uint64_t storage keeps the records 8-byte aligned
  size_t size = 0;              // bytes valid in `words`, bounded by what the kernel said it used
  const char* bytes() const { return reinterpret_cast<const char*>(words.data()); }
};

// Copies a request string into a fixed header field; false when it does not fit with its NUL.
bool CopyField(char* dst, size_t cap, const std::string& s) {
  if (s.size() >= cap) return false;
  std::memcpy(dst, s.c_str(), s.size() + 1);
  return true;
}

std::string FieldString(const char* src, size_t cap) { return std::string(src, ::strnlen(src, cap)); }

SysFailure DmFail(int err, const Request& r) {
  return Fail(err, r.cmdName, r.id.Describe(), "", "ioctl(" + std::string(r.cmdName) + ", " + r.call + ")");
}

// Runs one request on `ctl`, growing the buffer while the kernel reports DM_BUFFER_FULL_FLAG.
SysFailure RunRequest(int ctl, const Request& r, Reply* reply) {
  const size_t hdr = sizeof(struct dm_ioctl);
  size_t size = kInitialBuffer;
  if (hdr + r.payload.size() > size) size = Align8(hdr + r.payload.size());
  for (;;) {
    if (size > UINT32_MAX) return DmFail(ENOBUFS, r);
    reply->words.assign(size / sizeof(uint64_t) + 1, 0);
    auto* io = reinterpret_cast<struct dm_ioctl*>(reply->words.data());
    io->version[0] = 4;  // what we speak: 4.0.0; the kernel answers with its own version
    io->version[1] = 0;
    io->version[2] = 0;
    io->data_size = static_cast<uint32_t>(size);
    io->data_start = static_cast<uint32_t>(hdr);
    io->target_count = r.targetCount;
    io->flags = r.flags;
    io->event_nr = 0;  // no udev cookie
    if (r.id.byDev) io->dev = makedev(r.id.major, r.id.minor);
    if (!CopyField(io->name, sizeof(io->name), r.id.name) || !CopyField(io->uuid, sizeof(io->uuid), r.id.uuid))
      return DmFail(ENAMETOOLONG, r);
    if (!r.payload.empty()) std::memcpy(reinterpret_cast<char*>(io) + hdr, r.payload.data(), r.payload.size());
    if (::ioctl(ctl, r.cmd, io) != 0) return DmFail(errno, r);
    if ((io->flags & DM_BUFFER_FULL_FLAG) != 0) {
      if (size >= kMaxBuffer) return DmFail(ENOBUFS, r);
      size *= 2;
      continue;
    }
    std::memcpy(&reply->hdr, io, sizeof(reply->hdr));
    // The kernel sets data_size to what it used; never trust it past our own buffer.
    reply->size = io->data_size < size ? io->data_size : size;
    return Ok();
  }
}

// Runs `fn` with the control fd: `ctl` itself, or a fresh open of /dev/mapper/control when -1.
template <typename Fn>
SysFailure WithControl(int64_t ctl, Fn fn) {
  if (ctl >= 0) return fn(static_cast<int>(ctl));
  const int fd = ::open(kControlPath, O_RDWR | O_CLOEXEC);
  if (fd < 0) return Fail(errno, "open", kControlPath);
  SysFailure f = fn(fd);
  ::close(fd);
  return f;
}

// The device info every device-level ioctl returns in its header.
struct Info {
  std::string name, uuid;
  uint64_t dev = 0;
  int32_t openCount = 0;
  uint32_t eventNr = 0, flags = 0, targetCount = 0;
};

Info InfoOf(const struct dm_ioctl& h) {
  Info i;
  i.name = FieldString(h.name, sizeof(h.name));
  i.uuid = FieldString(h.uuid, sizeof(h.uuid));
  i.dev = h.dev;
  i.openCount = h.open_count;
  i.eventNr = h.event_nr;
  i.flags = h.flags;
  i.targetCount = h.target_count;
  return i;
}

Napi::Object DevToJs(Napi::Env env, uint64_t dev) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("major", Napi::Number::New(env, major(dev)));
  o.Set("minor", Napi::Number::New(env, minor(dev)));
  return o;
}

Napi::Object InfoToJs(Napi::Env env, const Info& i) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", Napi::String::New(env, i.name));
  o.Set("uuid", Napi::String::New(env, i.uuid));
  o.Set("dev", DevToJs(env, i.dev));
  o.Set("openCount", Napi::Number::New(env, i.openCount));
  o.Set("eventNr", Napi::Number::New(env, i.eventNr));
  o.Set("targetCount", Napi::Number::New(env, i.targetCount));
  o.Set("rawFlags", Napi::Number::New(env, i.flags));
  Napi::Object f = Napi::Object::New(env);
  f.Set("readOnly", Napi::Boolean::New(env, (i.flags & DM_READONLY_FLAG) != 0));
  f.Set("suspended", Napi::Boolean::New(env, (i.flags & DM_SUSPEND_FLAG) != 0));
  f.Set("activePresent", Napi::Boolean::New(env, (i.flags & DM_ACTIVE_PRESENT_FLAG) != 0));
  f.Set("inactivePresent", Napi::Boolean::New(env, (i.flags & DM_INACTIVE_PRESENT_FLAG) != 0));
  f.Set("deferredRemove", Napi::Boolean::New(env, (i.flags & DM_DEFERRED_REMOVE) != 0));
  f.Set("internalSuspend", Napi::Boolean::New(env, (i.flags & DM_INTERNAL_SUSPEND_FLAG) != 0));
  f.Set("ueventGenerated", Napi::Boolean::New(env, (i.flags & DM_UEVENT_GENERATED_FLAG) != 0));
  o.Set("flags", f);
  return o;
}

struct Target {
  uint64_t start = 0, length = 0;
  std::string type, params;
};

Napi::Array TargetsToJs(Napi::Env env, const std::vector<Target>& ts) {
  Napi::Array a = Napi::Array::New(env, ts.size());
  for (size_t k = 0; k < ts.size(); k++) {
    Napi::Object t = Napi::Object::New(env);
    // Sectors as numbers: exact up to 2^53 sectors (4 EiB).
    t.Set("start", Napi::Number::New(env, static_cast<double>(ts[k].start)));
    t.Set("length", Napi::Number::New(env, static_cast<double>(ts[k].length)));
    t.Set("type", Napi::String::New(env, ts[k].type));
    t.Set("params", Napi::String::New(env, ts[k].params));
    a.Set(static_cast<uint32_t>(k), t);
  }
  return a;
}

Napi::Value None(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

bool ArgFlags(const Napi::CallbackInfo& info, size_t i, uint32_t* out) {
  if (info.Length() <= i || info[i].IsUndefined()) return true;
  uint64_t v = 0;
  if (!ArgUint(info, i, "flags", &v)) return false;
  if (v > UINT32_MAX) return TypeError(info, "Expected 32-bit flags");
  *out = static_cast<uint32_t>(v);
  return true;
}

std::string Hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof(b), "0x%x", v);
  return b;
}

// The device-level ioctls whose answer is just the header: run, return Info.
Napi::Value InfoCall(const Napi::CallbackInfo& info, int64_t ctl, Request req) {
  return Worker<Info>::Run(
      info.Env(),
      [=](Info* out) {
        return WithControl(ctl, [&](int fd) {
          Reply reply;
          SysFailure f = RunRequest(fd, req, &reply);
          if (f.err == 0) *out = InfoOf(reply.hdr);
          return f;
        });
      },
      [](Napi::Env env, Info* i) -> Napi::Value { return InfoToJs(env, *i); });
}

}  // namespace

// open("/dev/mapper/control" or `path`, O_RDWR | O_CLOEXEC) -> the control fd for the calls below.
static Napi::Value JS_dmOpenControl(const Napi::CallbackInfo& info) {
  std::string path;
  bool present = false;
  if (!ArgOptString(info, 0, "path", &path, &present)) return None(info);
  if (!present) path = kControlPath;
  struct Fd { int fd = -1; };
  return Worker<Fd>::Run(info.Env(), [=](Fd* r) {
    r->fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    return r->fd < 0 ? Fail(errno, "open", path) : Ok();
  }, [](Napi::Env env, Fd* r) -> Napi::Value { return Napi::Number::New(env, r->fd); });
}

// ioctl(ctl, DM_VERSION) -> {major, minor, patch} of the kernel's dm ioctl interface.
static Napi::Value JS_dmVersion(const Napi::CallbackInfo& info) {
  int64_t ctl = -1;
  if (!ArgInt(info, 0, "controlFd", &ctl)) return None(info);
  struct V { uint32_t v[3] = {0, 0, 0}; };
  return Worker<V>::Run(info.Env(), [=](V* out) {
    return WithControl(ctl, [&](int fd) {
      Request req;
      req.cmd = DM_VERSION;
      req.cmdName = "DM_VERSION";
      req.call = "{}";
      Reply reply;
      SysFailure f = RunRequest(fd, req, &reply);
      if (f.err == 0) std::memcpy(out->v, reply.hdr.version, sizeof(out->v));
      return f;
    });
  }, [](Napi::Env env, V* v) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("major", Napi::Number::New(env, v->v[0]));
    o.Set("minor", Napi::Number::New(env, v->v[1]));
    o.Set("patch", Napi::Number::New(env, v->v[2]));
    return o;
  });
}

// ioctl(ctl, DM_LIST_DEVICES, {DM_UUID_FLAG}) -> [{name, dev, eventNr?, uuid?}]. Walks the
// dm_name_list records by their `next` offsets. event_nr follows the name (8-byte aligned)
// from interface 4.37; the uuid after it when the kernel flags it (4.46+, DM_UUID_FLAG asked).
static Napi::Value JS_dmListDevices(const Napi::CallbackInfo& info) {
  int64_t ctl = -1;
  if (!ArgInt(info, 0, "controlFd", &ctl)) return None(info);
  struct Entry {
    std::string name, uuid;
    uint64_t dev = 0;
    bool hasEventNr = false, hasUuid = false;
    uint32_t eventNr = 0;
  };
  struct List { std::vector<Entry> entries; };
  return Worker<List>::Run(info.Env(), [=](List* out) {
    return WithControl(ctl, [&](int fd) {
      Request req;
      req.cmd = DM_LIST_DEVICES;
      req.cmdName = "DM_LIST_DEVICES";
      req.flags = DM_UUID_FLAG;
      req.call = "{DM_UUID_FLAG}";
      Reply reply;
      SysFailure f = RunRequest(fd, req, &reply);
      if (f.err != 0) return f;
      const size_t start = reply.hdr.data_start;
      const size_t end = reply.size;
      const bool eventNrs = reply.hdr.version[0] > 4 || reply.hdr.version[1] >= 37;
      size_t pos = start;
      while (pos + sizeof(struct dm_name_list) <= end) {
        struct dm_name_list nl;
        std::memcpy(&nl, reply.bytes() + pos, sizeof(nl));
        if (nl.dev == 0) break;  // the kernel's "no devices" record
        const size_t recEnd = nl.next != 0 ? pos + nl.next : end;
        if (recEnd > end || recEnd <= pos) return DmFail(EPROTO, req);
        const char* name = reply.bytes() + pos + offsetof(struct dm_name_list, name);
        const size_t nameCap = recEnd - (pos + offsetof(struct dm_name_list, name));
        Entry e;
        e.dev = nl.dev;
        e.name.assign(name, ::strnlen(name, nameCap));
        const size_t extra = Align8(pos + offsetof(struct dm_name_list, name) + e.name.size() + 1);
        if (eventNrs && extra + 8 <= recEnd) {
          uint32_t words[2];
          std::memcpy(words, reply.bytes() + extra, sizeof(words));
          e.hasEventNr = true;
          e.eventNr = words[0];
          if ((words[1] & DM_NAME_LIST_FLAG_HAS_UUID) != 0 && extra + 8 < recEnd) {
            const char* uuid = reply.bytes() + extra + 8;
            e.uuid.assign(uuid, ::strnlen(uuid, recEnd - (extra + 8)));
            e.hasUuid = true;
          } else if ((words[1] & DM_NAME_LIST_FLAG_DOESNT_HAVE_UUID) != 0) {
            e.hasUuid = true;  // known to have none: uuid ''
          }
        }
        out->entries.push_back(std::move(e));
        if (nl.next == 0) break;
        pos += nl.next;
      }
      return Ok();
    });
  }, [](Napi::Env env, List* l) -> Napi::Value {
    Napi::Array a = Napi::Array::New(env, l->entries.size());
    for (size_t k = 0; k < l->entries.size(); k++) {
      const Entry& e = l->entries[k];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", Napi::String::New(env, e.name));
      o.Set("dev", DevToJs(env, e.dev));
      if (e.hasEventNr) o.Set("eventNr", Napi::Number::New(env, e.eventNr));
      if (e.hasUuid) o.Set("uuid", Napi::String::New(env, e.uuid));
      a.Set(static_cast<uint32_t>(k), o);
    }
    return a;
  });
}

// ioctl(ctl, DM_LIST_VERSIONS) -> [{name, version: [major, minor, patch]}] of the targets the
// kernel has loaded now (a target module loads on first use, so absence proves little).
static Napi::Value JS_dmListVersions(const Napi::CallbackInfo& info) {
  int64_t ctl = -1;
  if (!ArgInt(info, 0, "controlFd", &ctl)) return None(info);
  struct Item { std::string name; uint32_t v[3]; };
  struct List { std::vector<Item> items; };
  return Worker<List>::Run(info.Env(), [=](List* out) {
    return WithControl(ctl, [&](int fd) {
      Request req;
      req.cmd = DM_LIST_VERSIONS;
      req.cmdName = "DM_LIST_VERSIONS";
      req.call = "{}";
      Reply reply;
      SysFailure f = RunRequest(fd, req, &reply);
      if (f.err != 0) return f;
      size_t pos = reply.hdr.data_start;
      while (pos + sizeof(struct dm_target_versions) < reply.size) {
        struct dm_target_versions tv;
        std::memcpy(&tv, reply.bytes() + pos, sizeof(tv));
        const size_t nameAt = pos + offsetof(struct dm_target_versions, name);
        const size_t recEnd = tv.next != 0 ? pos + tv.next : reply.size;
        if (recEnd > reply.size || recEnd <= pos) return DmFail(EPROTO, req);
        Item it;
        it.name.assign(reply.bytes() + nameAt, ::strnlen(reply.bytes() + nameAt, recEnd - nameAt));
        std::memcpy(it.v, tv.version, sizeof(it.v));
        if (!it.name.empty()) out->items.push_back(std::move(it));
        if (tv.next == 0) break;
        pos += tv.next;
      }
      return Ok();
    });
  }, [](Napi::Env env, List* l) -> Napi::Value {
    Napi::Array a = Napi::Array::New(env, l->items.size());
    for (size_t k = 0; k < l->items.size(); k++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", Napi::String::New(env, l->items[k].name));
      Napi::Array v = Napi::Array::New(env, 3);
      for (uint32_t j = 0; j < 3; j++) v.Set(j, Napi::Number::New(env, l->items[k].v[j]));
      o.Set("version", v);
      a.Set(static_cast<uint32_t>(k), o);
    }
    return a;
  });
}

// ioctl(ctl, DM_GET_TARGET_VERSION, {name: target}) -> [major, minor, patch]. Unlike
// DM_LIST_VERSIONS the kernel loads the target's module first (interface 4.41+, Linux 5.6);
// EINVAL when there is no such target.
static Napi::Value JS_dmGetTargetVersion(const Napi::CallbackInfo& info) {
  int64_t ctl = -1;
  Request req;
  if (!ArgInt(info, 0, "controlFd", &ctl) || !ArgString(info, 1, "target", &req.id.name)) return None(info);
  req.cmd = DM_GET_TARGET_VERSION;
  req.cmdName = "DM_GET_TARGET_VERSION";
  req.call = "{name: " + Quote(req.id.name) + "}";
  struct V { uint32_t v[3] = {0, 0, 0}; };
  return Worker<V>::Run(info.Env(), [=](V* out) {
    return WithControl(ctl, [&](int fd) {
      Reply reply;
      SysFailure f = RunRequest(fd, req, &reply);
      if (f.err != 0) return f;
      // The answer is one dm_target_versions record at data_start.
      struct dm_target_versions tv;
      if (reply.hdr.data_start + sizeof(tv) > reply.size) return DmFail(EPROTO, req);
      std::memcpy(&tv, reply.bytes() + reply.hdr.data_start, sizeof(tv));
      std::memcpy(out->v, tv.version, sizeof(out->v));
      return Ok();
    });
  }, [](Napi::Env env, V* v) -> Napi::Value {
    Napi::Array a = Napi::Array::New(env, 3);
    for (uint32_t j = 0; j < 3; j++) a.Set(j, Napi::Number::New(env, v->v[j]));
    return a;
  });
}

// ioctl(ctl, DM_DEV_CREATE, {name, uuid, flags}) -> info of the new device (no table yet).
static Napi::Value JS_dmDevCreate(const Napi::CallbackInfo& info) {
  int64_t ctl = -1;
  Request req;
  bool hasUuid = false;
  if (!ArgInt(info, 0, "controlFd", &ctl) || !ArgString(info, 1, "name", &req.id.name) ||
      !ArgOptString(info, 2, "uuid", &req.id.uuid, &hasUuid) || !ArgFlags(info, 3, &req.flags))
    return None(info);
  req.cmd = DM_DEV_CREATE;
  req.cmdName = "DM_DEV_CREATE";
  req.call = "{name: " + Quote(req.id.name) + (hasUuid ? ", uuid: " + Quote(req.id.uuid) : "") + ", flags: " +
             Hex(req.flags) + "}";
  const std::string name = req.id.name;
  return Worker<Info>::Run(info.Env(), [=](Info* out) {
    return WithControl(ctl, [&](int fd) {
      Reply reply;
      SysFailure f = RunRequest(fd, req, &reply);
      if (f.err != 0) {
        f.path = name;  // the name, not the uuid Describe() would prefer
        return f;
      }
      *out = InfoOf(reply.hdr);
      return Ok();
    });
  }, [](Napi::Env env, Info* i) -> Napi::Value { return InfoToJs(env, *i); });
}

// ioctl(ctl, DM_DEV_REMOVE, {device, flags}). With DM_DEFERRED_REMOVE an open device is only
// marked (info.flags.deferredRemove) and goes away at its last close; without it: EBUSY.
static Napi::Value JS_dmDevRemove(const Napi::CallbackInfo& info) {
  int64_t ctl = -1;
  Request req;
  if (!ArgInt(info, 0, "controlFd", &ctl) || !ArgDevId(info, 1, &req.id) || !ArgFlags(info, 2, &req.flags))
    return None(info);
  req.cmd = DM_DEV_REMOVE;
  req.cmdName = "DM_DEV_REMOVE";
  req.call = req.id.Render() + ", flags: " + Hex(req.flags);
  return RunVoid(info.Env(), [=]() {
    return WithControl(ctl, [&](int fd) {
      Reply reply;
      return RunRequest(fd, req, &reply);
    });
  });
}

// ioctl(ctl, DM_DEV_SUSPEND, {device, flags}) -> info. flags with DM_SUSPEND_FLAG suspends
// (optionally DM_NOFLUSH_FLAG, DM_SKIP_LOCKFS_FLAG); without it resumes, making a loaded
// inactive table the live one.
static Napi::Value JS_dmDevSuspend(const Napi::CallbackInfo& info) {
  int64_t ctl = -1;
  Request req;
  if (!ArgInt(info, 0, "controlFd", &ctl) || !ArgDevId(info, 1, &req.id) || !ArgFlags(info, 2, &req.flags))
    return None(info);
  req.cmd = DM_DEV_SUSPEND;
  req.cmdName = "DM_DEV_SUSPEND";
  req.call = req.id.Render() + ", flags: " + Hex(req.flags);
  return InfoCall(info, ctl, req);
}

// ioctl(ctl, DM_DEV_STATUS, {device}) -> info (ENXIO when there is no such device).
static Napi::Value JS_dmDevStatus(const Napi::CallbackInfo& info) {
  int64_t ctl = -1;
  Request req;
  if (!ArgInt(info, 0, "controlFd", &ctl) || !ArgDevId(info, 1, &req.id)) return None(info);
  req.cmd = DM_DEV_STATUS;
  req.cmdName = "DM_DEV_STATUS";
  req.call = req.id.Render();
  return InfoCall(info, ctl, req);
}

// ioctl(ctl, DM_TABLE_LOAD, {device, flags, targets}) -> info. Loads the inactive table; a
// resume (DM_DEV_SUSPEND without DM_SUSPEND_FLAG) makes it live. Each dm_target_spec is
// followed by its NUL-terminated params, padded so the next spec is 8-byte aligned; `next`
// is the offset from this spec to the next one.
static Napi::Value JS_dmTableLoad(const Napi::CallbackInfo& info) {
  int64_t ctl = -1;
  Request req;
  if (!ArgInt(info, 0, "controlFd", &ctl) || !ArgDevId(info, 1, &req.id)) return None(info);
  if (info.Length() <= 2 || !info[2].IsArray()) return ThrowType(info, "Expected an array for argument 'targets'");
  if (!ArgFlags(info, 3, &req.flags)) return None(info);
  Napi::Array arr = info[2].As<Napi::Array>();
  req.targetCount = arr.Length();
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr.Get(k);
    if (!v.IsObject()) return ThrowType(info, "Expected {start, length, type, params} for targets[" + std::to_string(k) + "]");
    Napi::Object t = v.As<Napi::Object>();
    struct dm_target_spec spec;
    std::memset(&spec, 0, sizeof(spec));
    Napi::Value type = t.Get("type"), params = t.Get("params");
    uint64_t start = 0, length = 0;
    if (!ToU64(t.Get("start"), &start) || !ToU64(t.Get("length"), &length) || !type.IsString() || !params.IsString())
      return ThrowType(info, "Expected {start, length, type, params} for targets[" + std::to_string(k) + "]");
    const std::string typeStr = type.As<Napi::String>().Utf8Value();
    const std::string paramStr = params.As<Napi::String>().Utf8Value();
    if (typeStr.empty() || typeStr.size() >= DM_MAX_TYPE_NAME || typeStr.find('\0') != std::string::npos ||
        paramStr.find('\0') != std::string::npos)
      return ThrowType(info, "targets[" + std::to_string(k) + "].type must be 1-15 bytes, without NUL; params without NUL");
    spec.sector_start = start;
    spec.length = length;
    std::memcpy(spec.target_type, typeStr.data(), typeStr.size());
    const size_t recLen = Align8(sizeof(spec) + paramStr.size() + 1);
    spec.next = k + 1 < arr.Length() ? static_cast<uint32_t>(recLen) : 0;
    std::string rec(recLen, '\0');
    std::memcpy(&rec[0], &spec, sizeof(spec));
    std::memcpy(&rec[sizeof(spec)], paramStr.data(), paramStr.size());
    req.payload += rec;
    if (k < 4) req.call += (k > 0 ? ", " : "") + std::to_string(spec.sector_start) + " " + std::to_string(spec.length) +
                           " " + typeStr + " " + Quote(paramStr);
  }
  req.call = req.id.Render() + ", flags: " + Hex(req.flags) + ", [" + req.call + (arr.Length() > 4 ? ", ..." : "") + "]";
  req.cmd = DM_TABLE_LOAD;
  req.cmdName = "DM_TABLE_LOAD";
  return InfoCall(info, ctl, req);
}

// ioctl(ctl, DM_TABLE_CLEAR, {device}) -> info: drops the inactive (loaded, not resumed) table.
static Napi::Value JS_dmTableClear(const Napi::CallbackInfo& info) {
  int64_t ctl = -1;
  Request req;
  if (!ArgInt(info, 0, "controlFd", &ctl) || !ArgDevId(info, 1, &req.id)) return None(info);
  req.cmd = DM_TABLE_CLEAR;
  req.cmdName = "DM_TABLE_CLEAR";
  req.call = req.id.Render();
  return InfoCall(info, ctl, req);
}

// ioctl(ctl, DM_TABLE_STATUS, {device, flags}) -> {info, targets: [{start, length, type, params}]}.
// params is each target's status line, or its table line with DM_STATUS_TABLE_FLAG;
// DM_QUERY_INACTIVE_TABLE_FLAG asks about the inactive table; DM_NOFLUSH_FLAG keeps a
// thin-pool from committing metadata just to report. Status records' `next` counts from the
// first spec (unlike DM_TABLE_LOAD's).
static Napi::Value JS_dmTableStatus(const Napi::CallbackInfo& info) {
  int64_t ctl = -1;
  Request req;
  if (!ArgInt(info, 0, "controlFd", &ctl) || !ArgDevId(info, 1, &req.id) || !ArgFlags(info, 2, &req.flags))
    return None(info);
  req.cmd = DM_TABLE_STATUS;
  req.cmdName = "DM_TABLE_STATUS";
  req.call = req.id.Render() + ", flags: " + Hex(req.flags);
  struct Status { Info info; std::vector<Target> targets; };
  return Worker<Status>::Run(info.Env(), [=](Status* out) {
    return WithControl(ctl, [&](int fd) {
      Reply reply;
      SysFailure f = RunRequest(fd, req, &reply);
      if (f.err != 0) return f;
      out->info = InfoOf(reply.hdr);
      const size_t first = reply.hdr.data_start;
      size_t pos = first;
      for (uint32_t k = 0; k < reply.hdr.target_count; k++) {
        struct dm_target_spec spec;
        if (pos + sizeof(spec) > reply.size) return DmFail(EPROTO, req);
        std::memcpy(&spec, reply.bytes() + pos, sizeof(spec));
        Target t;
        t.start = spec.sector_start;
        t.length = spec.length;
        t.type = FieldString(spec.target_type, sizeof(spec.target_type));
        const char* params = reply.bytes() + pos + sizeof(spec);
        const size_t limit = (spec.next != 0 && first + spec.next > pos ? first + spec.next : reply.size) - (pos + sizeof(spec));
        t.params.assign(params, ::strnlen(params, limit));
        out->targets.push_back(std::move(t));
        if (k + 1 < reply.hdr.target_count) {
          if (spec.next == 0 || first + spec.next <= pos) return DmFail(EPROTO, req);
          pos = first + spec.next;
        }
      }
      return Ok();
    });
  }, [](Napi::Env env, Status* s) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("info", InfoToJs(env, s->info));
    o.Set("targets", TargetsToJs(env, s->targets));
    return o;
  });
}

// ioctl(ctl, DM_TABLE_DEPS, {device, flags}) -> [{major, minor}]: the devices its live table
// (or, with DM_QUERY_INACTIVE_TABLE_FLAG, its inactive table) uses.
static Napi::Value JS_dmTableDeps(const Napi::CallbackInfo& info) {
  int64_t ctl = -1;
  Request req;
  if (!ArgInt(info, 0, "controlFd", &ctl) || !ArgDevId(info, 1, &req.id) || !ArgFlags(info, 2, &req.flags))
    return None(info);
  req.cmd = DM_TABLE_DEPS;
  req.cmdName = "DM_TABLE_DEPS";
  req.call = req.id.Render() + ", flags: " + Hex(req.flags);
  struct Deps { std::vector<uint64_t> devs; };
  return Worker<Deps>::Run(info.Env(), [=](Deps* out) {
    return WithControl(ctl, [&](int fd) {
      Reply reply;
      SysFailure f = RunRequest(fd, req, &reply);
      if (f.err != 0) return f;
      const size_t at = reply.hdr.data_start;
      struct dm_target_deps d;
      if (at + sizeof(d) > reply.size) return Ok();  // no table: no deps
      std::memcpy(&d, reply.bytes() + at, sizeof(d));
      if (at + sizeof(d) + static_cast<size_t>(d.count) * sizeof(uint64_t) > reply.size) return DmFail(EPROTO, req);
      out->devs.resize(d.count);
      if (d.count > 0) std::memcpy(out->devs.data(), reply.bytes() + at + sizeof(d), d.count * sizeof(uint64_t));
      return Ok();
    });
  }, [](Napi::Env env, Deps* d) -> Napi::Value {
    Napi::Array a = Napi::Array::New(env, d->devs.size());
    for (size_t k = 0; k < d->devs.size(); k++) a.Set(static_cast<uint32_t>(k), DevToJs(env, d->devs[k]));
    return a;
  });
}

// ioctl(ctl, DM_TARGET_MSG, {device, {sector, message}}) -> the target's answer (a string)
// when the kernel set DM_DATA_OUT_FLAG, else null. `sector` picks the target (for a thin-pool: 0).
static Napi::Value JS_dmTargetMsg(const Napi::CallbackInfo& info) {
  int64_t ctl = -1;
  Request req;
  uint64_t sector = 0;
  std::string message;
  if (!ArgInt(info, 0, "controlFd", &ctl) || !ArgDevId(info, 1, &req.id) || !ArgUint(info, 2, "sector", &sector) ||
      !ArgString(info, 3, "message", &message))
    return None(info);
  req.cmd = DM_TARGET_MSG;
  req.cmdName = "DM_TARGET_MSG";
  req.call = req.id.Render() + ", {sector: " + std::to_string(sector) + ", " + Quote(message) + "}";
  struct dm_target_msg m;
  std::memset(&m, 0, sizeof(m));
  m.sector = sector;
  req.payload.assign(reinterpret_cast<const char*>(&m), sizeof(m));
  req.payload += message;
  req.payload.push_back('\0');
  struct Answer { bool has = false; std::string text; };
  return Worker<Answer>::Run(info.Env(), [=](Answer* out) {
    return WithControl(ctl, [&](int fd) {
      Reply reply;
      SysFailure f = RunRequest(fd, req, &reply);
      if (f.err != 0) return f;
      if ((reply.hdr.flags & DM_DATA_OUT_FLAG) != 0 && reply.hdr.data_start < reply.size) {
        const char* text = reply.bytes() + reply.hdr.data_start;
        out->has = true;
        out->text.assign(text, ::strnlen(text, reply.size - reply.hdr.data_start));
      }
      return Ok();
    });
  }, [](Napi::Env env, Answer* a) -> Napi::Value {
    return a->has ? Napi::String::New(env, a->text) : env.Null();
  });
}

void InitDm(Napi::Env env, Napi::Object exports) {
  auto fn = [&](const char* name, Napi::Value (*f)(const Napi::CallbackInfo&)) {
    exports.Set(name, Napi::Function::New(env, f, name));
  };
  fn("dmOpenControl", JS_dmOpenControl);
  fn("dmVersion", JS_dmVersion);
  fn("dmListDevices", JS_dmListDevices);
  fn("dmListVersions", JS_dmListVersions);
  fn("dmGetTargetVersion", JS_dmGetTargetVersion);
  fn("dmDevCreate", JS_dmDevCreate);
  fn("dmDevRemove", JS_dmDevRemove);
  fn("dmDevSuspend", JS_dmDevSuspend);
  fn("dmDevStatus", JS_dmDevStatus);
  fn("dmTableLoad", JS_dmTableLoad);
  fn("dmTableClear", JS_dmTableClear);
  fn("dmTableStatus", JS_dmTableStatus);
  fn("dmTableDeps", JS_dmTableDeps);
  fn("dmTargetMsg", JS_dmTargetMsg);
  Napi::Object k = Napi::Object::New(env);
  auto c = [&](const char* name, double v) { k.Set(name, Napi::Number::New(env, v)); };
  c("DM_READONLY_FLAG", DM_READONLY_FLAG);
  c("DM_SUSPEND_FLAG", DM_SUSPEND_FLAG);
  c("DM_PERSISTENT_DEV_FLAG", DM_PERSISTENT_DEV_FLAG);
  c("DM_STATUS_TABLE_FLAG", DM_STATUS_TABLE_FLAG);
  c("DM_ACTIVE_PRESENT_FLAG", DM_ACTIVE_PRESENT_FLAG);
  c("DM_INACTIVE_PRESENT_FLAG", DM_INACTIVE_PRESENT_FLAG);
  c("DM_BUFFER_FULL_FLAG", DM_BUFFER_FULL_FLAG);
  c("DM_SKIP_BDGET_FLAG", DM_SKIP_BDGET_FLAG);
  c("DM_SKIP_LOCKFS_FLAG", DM_SKIP_LOCKFS_FLAG);
  c("DM_NOFLUSH_FLAG", DM_NOFLUSH_FLAG);
  c("DM_QUERY_INACTIVE_TABLE_FLAG", DM_QUERY_INACTIVE_TABLE_FLAG);
  c("DM_UEVENT_GENERATED_FLAG", DM_UEVENT_GENERATED_FLAG);
  c("DM_UUID_FLAG", DM_UUID_FLAG);
  c("DM_SECURE_DATA_FLAG", DM_SECURE_DATA_FLAG);
  c("DM_DATA_OUT_FLAG", DM_DATA_OUT_FLAG);
  c("DM_DEFERRED_REMOVE", DM_DEFERRED_REMOVE);
  c("DM_INTERNAL_SUSPEND_FLAG", DM_INTERNAL_SUSPEND_FLAG);
  c("DM_NAME_LEN", DM_NAME_LEN);
  c("DM_UUID_LEN", DM_UUID_LEN);
  c("DM_MAX_TYPE_NAME", DM_MAX_TYPE_NAME);
  exports.Set("dmConstants", k);
}

}  // namespace gd
