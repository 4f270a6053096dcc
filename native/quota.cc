// quota.cc: the XFS project-quota calls overlay2's size limits need (the engine's
// quota/projectquota.go, as syscalls only): read a directory's fsxattr, set its project id with
// PROJINHERIT, set and read a project's block limits with quotactl(2) on the backing block
// device. One exported function per call or fixed sequence; async on the libuv pool; no
// policy, no retries, no fallbacks here: lib/drivers/overlay2/quota.ts decides all of that.
// Errors are Node-shaped with syscall 'ioctl' or 'quotactl' and the call rendered.
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/quota.h>
#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "napi_util.h"

namespace gd {

namespace {

std::string Fd(int64_t fd) { return std::to_string(fd); }

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// fs_disk_quota's limits are in 512-byte basic blocks (BBs).
constexpr uint64_t kBasicBlock = 512;

struct FsXattr {
  struct fsxattr fsx;
};

struct DiskQuota {
  struct fs_disk_quota dq;
};

}  // namespace

// ioctl(fd, FS_IOC_FSGETXATTR, &fsx) — man 2 ioctl_xfs_fsgetxattr (man 2 ioctl_iflags)
static Napi::Value JS_fsGetXattrFd(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  return Worker<FsXattr>::Run(
      info.Env(),
      [fd](FsXattr* r) {
        std::memset(&r->fsx, 0, sizeof(r->fsx));
        if (::ioctl(static_cast<int>(fd), FS_IOC_FSGETXATTR, &r->fsx) != 0)
          return Fail(errno, "ioctl", "", "", "ioctl(" + Fd(fd) + ", FS_IOC_FSGETXATTR)");
        return Ok();
      },
      [](Napi::Env env, FsXattr* r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        auto n = [&](const char* k, uint32_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
        n("xflags", r->fsx.fsx_xflags);
        n("extsize", r->fsx.fsx_extsize);
        n("nextents", r->fsx.fsx_nextents);
        n("projid", r->fsx.fsx_projid);
        n("cowextsize", r->fsx.fsx_cowextsize);
        return o;
      });
}

// ioctl(fd, FS_IOC_FSGETXATTR, &fsx); fsx.fsx_projid = projid; fsx.fsx_xflags |= FS_XFLAG_PROJINHERIT
// (or &= ~ when !inherit); ioctl(fd, FS_IOC_FSSETXATTR, &fsx) — man 2 ioctl_xfs_fsgetxattr.
// A fixed read-modify-write sequence, so the other flags and extent sizes are kept.
static Napi::Value JS_fsSetProjectFd(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  uint64_t projid = 0;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgUint(info, 1, "projid", &projid)) return info.Env().Undefined();
  if (projid > UINT32_MAX) {
    Napi::RangeError::New(info.Env(), "projid must fit in 32 bits").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  const bool inherit = info.Length() > 2 && info[2].ToBoolean().Value();
  return RunVoid(info.Env(), [=]() {
    struct fsxattr fsx;
    std::memset(&fsx, 0, sizeof(fsx));
    if (::ioctl(static_cast<int>(fd), FS_IOC_FSGETXATTR, &fsx) != 0)
      return Fail(errno, "ioctl", "", "", "ioctl(" + Fd(fd) + ", FS_IOC_FSGETXATTR)");
    fsx.fsx_projid = static_cast<uint32_t>(projid);
    if (inherit) fsx.fsx_xflags |= FS_XFLAG_PROJINHERIT;
    else fsx.fsx_xflags &= ~static_cast<uint32_t>(FS_XFLAG_PROJINHERIT);
    if (::ioctl(static_cast<int>(fd), FS_IOC_FSSETXATTR, &fsx) != 0) {
      return Fail(errno, "ioctl", "", "",
                  "ioctl(" + Fd(fd) + ", FS_IOC_FSSETXATTR, {projid: " + std::to_string(projid) +
                      ", xflags: " + Hex(fsx.fsx_xflags) + (inherit ? " (PROJINHERIT)" : "") + "})");
    }
    return Ok();
  });
}

// quotactl(QCMD(Q_XSETQLIM, PRJQUOTA), blockDevice, projid, &{d_version: FS_DQUOT_VERSION,
// d_flags: FS_PROJ_QUOTA, d_id: projid, d_fieldmask: FS_DQ_BHARD | FS_DQ_BSOFT,
// d_blk_hardlimit = d_blk_softlimit = ceil(hardBytes / 512)}) — man 2 quotactl (Q_XSETQLIM).
// hardBytes 0 removes the limit.
static Napi::Value JS_xfsSetProjectLimit(const Napi::CallbackInfo& info) {
  std::string dev;
  uint64_t projid = 0, hardBytes = 0;
  if (!ArgString(info, 0, "blockDevice", &dev) || !ArgUint(info, 1, "projid", &projid) ||
      !ArgUint(info, 2, "hardBytes", &hardBytes))
    return info.Env().Undefined();
  if (projid > UINT32_MAX) {
    Napi::RangeError::New(info.Env(), "projid must fit in 32 bits").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  return RunVoid(info.Env(), [=]() {
    const uint64_t blocks = hardBytes / kBasicBlock + (hardBytes % kBasicBlock != 0 ? 1 : 0);
    struct fs_disk_quota d;
    std::memset(&d, 0, sizeof(d));
    d.d_version = FS_DQUOT_VERSION;
    d.d_flags = FS_PROJ_QUOTA;
    d.d_id = static_cast<uint32_t>(projid);
    d.d_fieldmask = FS_DQ_BHARD | FS_DQ_BSOFT;
    d.d_blk_hardlimit = blocks;
    d.d_blk_softlimit = blocks;
    if (::quotactl(QCMD(Q_XSETQLIM, PRJQUOTA), dev.c_str(), static_cast<int>(projid),
                   reinterpret_cast<caddr_t>(&d)) != 0) {
      return Fail(errno, "quotactl", dev, "",
                  "quotactl(QCMD(Q_XSETQLIM, PRJQUOTA), " + Quote(dev) + ", " + std::to_string(projid) +
                      ", {FS_DQ_BHARD|FS_DQ_BSOFT: " + std::to_string(blocks) + " blocks of 512})");
    }
    return Ok();
  });
}

// quotactl(QCMD(Q_XGETQUOTA, PRJQUOTA), blockDevice, projid, &fs_disk_quota) — man 2 quotactl.
// Limits and usage are returned in bytes (the kernel's 512-byte blocks * 512).
static Napi::Value JS_xfsGetProjectQuota(const Napi::CallbackInfo& info) {
  std::string dev;
  uint64_t projid = 0;
  if (!ArgString(info, 0, "blockDevice", &dev) || !ArgUint(info, 1, "projid", &projid)) return info.Env().Undefined();
  if (projid > UINT32_MAX) {
    Napi::RangeError::New(info.Env(), "projid must fit in 32 bits").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  return Worker<DiskQuota>::Run(
      info.Env(),
      [=](DiskQuota* r) {
        std::memset(&r->dq, 0, sizeof(r->dq));
        if (::quotactl(QCMD(Q_XGETQUOTA, PRJQUOTA), dev.c_str(), static_cast<int>(projid),
                       reinterpret_cast<caddr_t>(&r->dq)) != 0) {
          return Fail(errno, "quotactl", dev, "",
                      "quotactl(QCMD(Q_XGETQUOTA, PRJQUOTA), " + Quote(dev) + ", " + std::to_string(projid) + ")");
        }
        return Ok();
      },
      [](Napi::Env env, DiskQuota* r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        auto n = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
        const double bb = static_cast<double>(kBasicBlock);
        n("id", static_cast<double>(r->dq.d_id));
        n("flags", static_cast<double>(r->dq.d_flags));
        n("blockHardLimitBytes", static_cast<double>(r->dq.d_blk_hardlimit) * bb);
        n("blockSoftLimitBytes", static_cast<double>(r->dq.d_blk_softlimit) * bb);
        n("usedBytes", static_cast<double>(r->dq.d_bcount) * bb);
        n("inodeHardLimit", static_cast<double>(r->dq.d_ino_hardlimit));
        n("inodeSoftLimit", static_cast<double>(r->dq.d_ino_softlimit));
        n("inodes", static_cast<double>(r->dq.d_icount));
        return o;
      });
}

void InitQuota(Napi::Env env, Napi::Object exports) {
  exports.Set("fsGetXattrFd", Napi::Function::New(env, JS_fsGetXattrFd, "fsGetXattrFd"));
  exports.Set("fsSetProjectFd", Napi::Function::New(env, JS_fsSetProjectFd, "fsSetProjectFd"));
  exports.Set("xfsSetProjectLimit", Napi::Function::New(env, JS_xfsSetProjectLimit, "xfsSetProjectLimit"));
  exports.Set("xfsGetProjectQuota", Napi::Function::New(env, JS_xfsGetProjectQuota, "xfsGetProjectQuota"));
  Napi::Object c = Napi::Object::New(env);
  c.Set("FS_XFLAG_PROJINHERIT", Napi::Number::New(env, FS_XFLAG_PROJINHERIT));
  exports.Set("quotaConstants", c);
}

}  // namespace gd
