// btrfs.cc: the btrfs ioctls the btrfs driver needs, one exported function per ioctl or mode
// (subvolume create, snapshot, destroy, tree id lookup, tree search, quota and qgroup control).
// Async: every call runs on the libuv pool (snapshot destroy and rescan wait can block for a
// long time). Name-taking calls work on a parent directory fd + a single name, as the ioctls
// do; no path joining, no retries, no fallbacks here: lib/drivers/btrfs decides all of that.
// Errors carry the ioctl's name as `syscall` (e.g. 'BTRFS_IOC_SNAP_CREATE_V2').
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "napi_util.h"

// Added in Linux 6.7; older <linux/btrfs.h> lack it, the running kernel decides (EINVAL if not).
#ifndef BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA
#define BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA 4
#endif
#ifndef BTRFS_QGROUP_STATUS_FLAG_SIMPLE_MODE
#define BTRFS_QGROUP_STATUS_FLAG_SIMPLE_MODE (1ULL << 3)
#endif

namespace gd {

namespace {

std::string Fd(int64_t fd) { return std::to_string(fd); }

// Copies `name` into a fixed ioctl name field; false when it does not fit (ENAMETOOLONG).
bool CopyName(char* dst, size_t cap, const std::string& name) {
  if (name.size() >= cap) return false;
  std::memcpy(dst, name.c_str(), name.size() + 1);
  return true;
}

SysFailure IoctlFail(int err, const char* ioctl, const std::string& name, const std::string& call) {
  return Fail(err, ioctl, name, "", "ioctl(" + call + ")");
}

}  // namespace

// ioctl(dirfd, BTRFS_IOC_SUBVOL_CREATE, {.name = name}) — man 2 ioctl_btrfs (btrfs-ioctl docs)
static Napi::Value JS_btrfsSubvolCreate(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0;
  std::string name;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "name", &name)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    const std::string call = Fd(dirfd) + ", BTRFS_IOC_SUBVOL_CREATE, " + Quote(name);
    struct btrfs_ioctl_vol_args args;
    std::memset(&args, 0, sizeof(args));
    if (!CopyName(args.name, sizeof(args.name), name)) return IoctlFail(ENAMETOOLONG, "BTRFS_IOC_SUBVOL_CREATE", name, call);
    if (::ioctl(static_cast<int>(dirfd), BTRFS_IOC_SUBVOL_CREATE, &args) != 0)
      return IoctlFail(errno, "BTRFS_IOC_SUBVOL_CREATE", name, call);
    return Ok();
  });
}

// ioctl(dirfd, BTRFS_IOC_SNAP_CREATE_V2, {.fd = srcFd, .flags = readOnly ? BTRFS_SUBVOL_RDONLY : 0,
// .name = name}) — man 2 ioctl_btrfs. srcFd is an open fd of the source subvolume's root.
static Napi::Value JS_btrfsSnapCreate(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0, srcFd = 0;
  std::string name;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "name", &name) || !ArgInt(info, 2, "srcFd", &srcFd))
    return info.Env().Undefined();
  const bool readOnly = info.Length() > 3 && info[3].ToBoolean().Value();
  return RunVoid(info.Env(), [=]() {
    const std::string call = Fd(dirfd) + ", BTRFS_IOC_SNAP_CREATE_V2, {fd: " + Fd(srcFd) + (readOnly ? ", BTRFS_SUBVOL_RDONLY" : "") +
                             ", " + Quote(name) + "}";
    struct btrfs_ioctl_vol_args_v2 args;
    std::memset(&args, 0, sizeof(args));
    args.fd = srcFd;
    args.flags = readOnly ? BTRFS_SUBVOL_RDONLY : 0;
    if (!CopyName(args.name, sizeof(args.name), name)) return IoctlFail(ENAMETOOLONG, "BTRFS_IOC_SNAP_CREATE_V2", name, call);
    if (::ioctl(static_cast<int>(dirfd), BTRFS_IOC_SNAP_CREATE_V2, &args) != 0)
      return IoctlFail(errno, "BTRFS_IOC_SNAP_CREATE_V2", name, call);
    return Ok();
  });
}

// ioctl(dirfd, BTRFS_IOC_SNAP_DESTROY, {.name = name}) — man 2 ioctl_btrfs. Deletes the subvolume
// `name` in dirfd (needs CAP_SYS_ADMIN or user_subvol_rm_allowed; fails ENOTEMPTY with nested ones).
static Napi::Value JS_btrfsSnapDestroy(const Napi::CallbackInfo& info) {
  int64_t dirfd = 0;
  std::string name;
  if (!ArgInt(info, 0, "dirfd", &dirfd) || !ArgString(info, 1, "name", &name)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    const std::string call = Fd(dirfd) + ", BTRFS_IOC_SNAP_DESTROY, " + Quote(name);
    struct btrfs_ioctl_vol_args args;
    std::memset(&args, 0, sizeof(args));
    if (!CopyName(args.name, sizeof(args.name), name)) return IoctlFail(ENAMETOOLONG, "BTRFS_IOC_SNAP_DESTROY", name, call);
    if (::ioctl(static_cast<int>(dirfd), BTRFS_IOC_SNAP_DESTROY, &args) != 0)
      return IoctlFail(errno, "BTRFS_IOC_SNAP_DESTROY", name, call);
    return Ok();
  });
}

// ioctl(fd, BTRFS_IOC_SNAP_DESTROY_V2, {.flags = BTRFS_SUBVOL_SPEC_BY_ID, .subvolid = id}) — man 2
// ioctl_btrfs. Deletes subvolume `subvolId` of the filesystem holding fd (Linux 5.7+).
static Napi::Value JS_btrfsSnapDestroyById(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  uint64_t id = 0;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgUint(info, 1, "subvolId", &id)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    struct btrfs_ioctl_vol_args_v2 args;
    std::memset(&args, 0, sizeof(args));
    args.flags = BTRFS_SUBVOL_SPEC_BY_ID;
    args.subvolid = id;
    if (::ioctl(static_cast<int>(fd), BTRFS_IOC_SNAP_DESTROY_V2, &args) != 0)
      return IoctlFail(errno, "BTRFS_IOC_SNAP_DESTROY_V2", "",
                       Fd(fd) + ", BTRFS_IOC_SNAP_DESTROY_V2, {BTRFS_SUBVOL_SPEC_BY_ID, subvolid: " + std::to_string(id) + "}");
    return Ok();
  });
}

// ioctl(fd, BTRFS_IOC_INO_LOOKUP, {.treeid = 0, .objectid = BTRFS_FIRST_FREE_OBJECTID}) — man 2
// ioctl_btrfs. Resolves to the tree id of the subvolume holding fd (= its level-0 qgroup id).
static Napi::Value JS_btrfsInoLookup(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  struct Tree { uint64_t id = 0; };
  return Worker<Tree>::Run(info.Env(), [=](Tree* t) {
    struct btrfs_ioctl_ino_lookup_args args;
    std::memset(&args, 0, sizeof(args));
    args.objectid = BTRFS_FIRST_FREE_OBJECTID;
    if (::ioctl(static_cast<int>(fd), BTRFS_IOC_INO_LOOKUP, &args) != 0)
      return IoctlFail(errno, "BTRFS_IOC_INO_LOOKUP", "", Fd(fd) + ", BTRFS_IOC_INO_LOOKUP, {treeid: 0, objectid: 256}");
    t->id = args.treeid;
    return Ok();
  }, [](Napi::Env env, Tree* t) -> Napi::Value { return Napi::Number::New(env, static_cast<double>(t->id)); });
}

// ioctl(fd, BTRFS_IOC_TREE_SEARCH, {key}) — man 2 ioctl_btrfs. One search of tree `treeId` for
// keys between (minObjectid, minType, minOffset) and (maxObjectid, maxType, maxOffset), at most
// `maxItems` items. Resolves to [{objectid, type, offset, transid, data}] (u64 fields as BigInt).
static Napi::Value JS_btrfsTreeSearch(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  uint64_t k[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  static const char* const names[8] = {"treeId", "minObjectid", "maxObjectid", "minType", "maxType",
                                       "minOffset", "maxOffset", "maxItems"};
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  for (size_t i = 0; i < 8; i++)
    if (!ArgUint(info, i + 1, names[i], &k[i])) return info.Env().Undefined();
  struct Item { uint64_t objectid, offset, transid; uint32_t type; std::string data; };
  struct Found { std::vector<Item> items; };
  return Worker<Found>::Run(info.Env(), [=](Found* found) {
    struct btrfs_ioctl_search_args args;
    std::memset(&args, 0, sizeof(args));
    args.key.tree_id = k[0];
    args.key.min_objectid = k[1];
    args.key.max_objectid = k[2];
    args.key.min_type = static_cast<uint32_t>(k[3]);
    args.key.max_type = static_cast<uint32_t>(k[4]);
    args.key.min_offset = k[5];
    args.key.max_offset = k[6];
    args.key.min_transid = 0;
    args.key.max_transid = UINT64_MAX;
    args.key.nr_items = static_cast<uint32_t>(k[7]);
    if (::ioctl(static_cast<int>(fd), BTRFS_IOC_TREE_SEARCH, &args) != 0)
      return IoctlFail(errno, "BTRFS_IOC_TREE_SEARCH", "",
                       Fd(fd) + ", BTRFS_IOC_TREE_SEARCH, {tree_id: " + std::to_string(k[0]) + "}");
    size_t pos = 0;
    for (uint32_t i = 0; i < args.key.nr_items; i++) {
      struct btrfs_ioctl_search_header h;
      if (pos + sizeof(h) > sizeof(args.buf)) break;
      std::memcpy(&h, args.buf + pos, sizeof(h));
      pos += sizeof(h);
      if (pos + h.len > sizeof(args.buf)) break;
      found->items.push_back(Item{h.objectid, h.offset, h.transid, h.type, std::string(args.buf + pos, h.len)});
      pos += h.len;
    }
    return Ok();
  }, [](Napi::Env env, Found* found) -> Napi::Value {
    Napi::Array out = Napi::Array::New(env, found->items.size());
    for (size_t i = 0; i < found->items.size(); i++) {
      const Item& it = found->items[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("objectid", Napi::BigInt::New(env, it.objectid));
      o.Set("type", Napi::Number::New(env, it.type));
      o.Set("offset", Napi::BigInt::New(env, it.offset));
      o.Set("transid", Napi::BigInt::New(env, it.transid));
      o.Set("data", Napi::Buffer<char>::Copy(env, it.data.data(), it.data.size()));
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  });
}

namespace {
// ioctl(fd, BTRFS_IOC_QUOTA_CTL, {.cmd = cmd}); one JS function per cmd below.
Napi::Value QuotaCtl(const Napi::CallbackInfo& info, uint64_t cmd, const char* cmdName) {
  int64_t fd = 0;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  const std::string call = Fd(fd) + ", BTRFS_IOC_QUOTA_CTL, {cmd: " + cmdName + "}";
  return RunVoid(info.Env(), [=]() {
    struct btrfs_ioctl_quota_ctl_args args;
    std::memset(&args, 0, sizeof(args));
    args.cmd = cmd;
    if (::ioctl(static_cast<int>(fd), BTRFS_IOC_QUOTA_CTL, &args) != 0)
      return IoctlFail(errno, "BTRFS_IOC_QUOTA_CTL", "", call);
    return Ok();
  });
}

// ioctl(fd, BTRFS_IOC_QGROUP_CREATE, {.create = create, .qgroupid = id}); create 0 destroys.
Napi::Value QgroupCreate(const Napi::CallbackInfo& info, bool create) {
  int64_t fd = 0;
  uint64_t id = 0;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgUint(info, 1, "qgroupId", &id)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    struct btrfs_ioctl_qgroup_create_args args;
    std::memset(&args, 0, sizeof(args));
    args.create = create ? 1 : 0;
    args.qgroupid = id;
    if (::ioctl(static_cast<int>(fd), BTRFS_IOC_QGROUP_CREATE, &args) != 0)
      return IoctlFail(errno, "BTRFS_IOC_QGROUP_CREATE", "",
                       Fd(fd) + ", BTRFS_IOC_QGROUP_CREATE, {create: " + (create ? "1" : "0") + ", qgroupid: " +
                       std::to_string(id) + "}");
    return Ok();
  });
}
}  // namespace

// ioctl(fd, BTRFS_IOC_QUOTA_CTL, {.cmd = BTRFS_QUOTA_CTL_ENABLE}) — man 2 ioctl_btrfs (full qgroups)
static Napi::Value JS_btrfsQuotaEnable(const Napi::CallbackInfo& info) {
  return QuotaCtl(info, BTRFS_QUOTA_CTL_ENABLE, "BTRFS_QUOTA_CTL_ENABLE");
}

// ioctl(fd, BTRFS_IOC_QUOTA_CTL, {.cmd = BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA}) — btrfs-ioctl docs
// (simple quotas, Linux 6.7+; EINVAL on older kernels).
static Napi::Value JS_btrfsQuotaEnableSimple(const Napi::CallbackInfo& info) {
  return QuotaCtl(info, BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA, "BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA");
}

// ioctl(fd, BTRFS_IOC_QGROUP_CREATE, {.create = 1, .qgroupid = id}) — man 2 ioctl_btrfs
static Napi::Value JS_btrfsQgroupCreate(const Napi::CallbackInfo& info) { return QgroupCreate(info, true); }

// ioctl(fd, BTRFS_IOC_QGROUP_CREATE, {.create = 0, .qgroupid = id}) — man 2 ioctl_btrfs (destroy)
static Napi::Value JS_btrfsQgroupDestroy(const Napi::CallbackInfo& info) { return QgroupCreate(info, false); }

// ioctl(fd, BTRFS_IOC_QGROUP_LIMIT, {.qgroupid = id, .lim = {.flags = BTRFS_QGROUP_LIMIT_MAX_RFER,
// .max_rfer = maxRfer}}) — man 2 ioctl_btrfs. maxRfer 2^64-1 (as BigInt) clears the limit.
static Napi::Value JS_btrfsQgroupLimit(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  uint64_t id = 0, maxRfer = 0;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgUint(info, 1, "qgroupId", &id) || !ArgUint(info, 2, "maxRfer", &maxRfer))
    return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    struct btrfs_ioctl_qgroup_limit_args args;
    std::memset(&args, 0, sizeof(args));
    args.qgroupid = id;
    args.lim.flags = BTRFS_QGROUP_LIMIT_MAX_RFER;
    args.lim.max_rfer = maxRfer;
    if (::ioctl(static_cast<int>(fd), BTRFS_IOC_QGROUP_LIMIT, &args) != 0)
      return IoctlFail(errno, "BTRFS_IOC_QGROUP_LIMIT", "",
                       Fd(fd) + ", BTRFS_IOC_QGROUP_LIMIT, {qgroupid: " + std::to_string(id) +
                       ", BTRFS_QGROUP_LIMIT_MAX_RFER, max_rfer: " + std::to_string(maxRfer) + "}");
    return Ok();
  });
}

// ioctl(fd, BTRFS_IOC_QUOTA_RESCAN_WAIT) — man 2 ioctl_btrfs: waits for a running rescan to end.
static Napi::Value JS_btrfsQuotaRescanWait(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  return RunVoid(info.Env(), [=]() {
    if (::ioctl(static_cast<int>(fd), BTRFS_IOC_QUOTA_RESCAN_WAIT) != 0)
      return IoctlFail(errno, "BTRFS_IOC_QUOTA_RESCAN_WAIT", "", Fd(fd) + ", BTRFS_IOC_QUOTA_RESCAN_WAIT");
    return Ok();
  });
}

void InitBtrfs(Napi::Env env, Napi::Object exports) {
  auto fn = [&](const char* name, Napi::Value (*f)(const Napi::CallbackInfo&)) {
    exports.Set(name, Napi::Function::New(env, f, name));
  };
  fn("btrfsSubvolCreate", JS_btrfsSubvolCreate);
  fn("btrfsSnapCreate", JS_btrfsSnapCreate);
  fn("btrfsSnapDestroy", JS_btrfsSnapDestroy);
  fn("btrfsSnapDestroyById", JS_btrfsSnapDestroyById);
  fn("btrfsInoLookup", JS_btrfsInoLookup);
  fn("btrfsTreeSearch", JS_btrfsTreeSearch);
  fn("btrfsQuotaEnable", JS_btrfsQuotaEnable);
  fn("btrfsQuotaEnableSimple", JS_btrfsQuotaEnableSimple);
  fn("btrfsQgroupCreate", JS_btrfsQgroupCreate);
  fn("btrfsQgroupDestroy", JS_btrfsQgroupDestroy);
  fn("btrfsQgroupLimit", JS_btrfsQgroupLimit);
  fn("btrfsQuotaRescanWait", JS_btrfsQuotaRescanWait);
  Napi::Object k = Napi::Object::New(env);
  k.Set("BTRFS_FIRST_FREE_OBJECTID", Napi::Number::New(env, BTRFS_FIRST_FREE_OBJECTID));
  k.Set("BTRFS_QUOTA_TREE_OBJECTID", Napi::Number::New(env, BTRFS_QUOTA_TREE_OBJECTID));
  k.Set("BTRFS_ROOT_TREE_OBJECTID", Napi::Number::New(env, BTRFS_ROOT_TREE_OBJECTID));
  k.Set("BTRFS_QGROUP_STATUS_KEY", Napi::Number::New(env, BTRFS_QGROUP_STATUS_KEY));
  k.Set("BTRFS_QGROUP_INFO_KEY", Napi::Number::New(env, BTRFS_QGROUP_INFO_KEY));
  k.Set("BTRFS_QGROUP_LIMIT_KEY", Napi::Number::New(env, BTRFS_QGROUP_LIMIT_KEY));
  k.Set("BTRFS_ROOT_ITEM_KEY", Napi::Number::New(env, BTRFS_ROOT_ITEM_KEY));
  k.Set("BTRFS_QGROUP_STATUS_FLAG_ON", Napi::Number::New(env, static_cast<double>(BTRFS_QGROUP_STATUS_FLAG_ON)));
  k.Set("BTRFS_QGROUP_STATUS_FLAG_RESCAN", Napi::Number::New(env, static_cast<double>(BTRFS_QGROUP_STATUS_FLAG_RESCAN)));
  k.Set("BTRFS_QGROUP_STATUS_FLAG_INCONSISTENT",
        Napi::Number::New(env, static_cast<double>(BTRFS_QGROUP_STATUS_FLAG_INCONSISTENT)));
  k.Set("BTRFS_QGROUP_STATUS_FLAG_SIMPLE_MODE",
        Napi::Number::New(env, static_cast<double>(BTRFS_QGROUP_STATUS_FLAG_SIMPLE_MODE)));
  exports.Set("btrfsConstants", k);
}

}  // namespace gd
