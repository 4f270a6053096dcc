// mkfs_ext4.cc: mkfsExt4 — an ext4 filesystem made in-process with libext2fs (e2fsprogs), so the
// devicemapper driver formats its base device without spawning mkfs. libext2fs has no mke2fs()
// entry point: this follows mke2fs's order of library calls (superblock parameters,
// ext2fs_initialize, discard, uuid/hash seed/label, group tables, inode tables, root and
// lost+found, reserved and bad-block inodes, resize inode, journal, close), with mke2fs.conf's
// ext4 defaults built in. The options object is read and checked on the JS thread (TypeError /
// RangeError, code ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE); everything else runs on the
// libuv pool. Failures: errno values keep their code (ENOENT, EBUSY, ENOSPC...); libext2fs's own
// EXT2_ET_* codes and size checks reject with code ERR_GRAPHDRIVER_MKFS, error_message()'s text,
// `ext2Code` ('EXT2_ET_TOOSMALL'), `syscall` = the failing libext2fs call and `path` = the device.
// com_err.h declares error_message() without extern "C" of its own.
extern "C" {
#include <et/com_err.h>
}
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "napi_util.h"

namespace gd {

namespace {

constexpr const char* kMkfsCode = "ERR_GRAPHDRIVER_MKFS";
constexpr uint64_t kMax32 = 0xffffffffULL;

// The -O names accepted (mke2fs's spellings). Anything else (bigalloc, quota, inline_data,
// meta_bg, encrypt...) needs code outside libext2fs or is out of scope, and is refused.
enum FeatureWord { kCompat = 0, kIncompat = 1, kRoCompat = 2 };
struct Feature {
  const char* name;
  FeatureWord word;
  uint32_t mask;
};
const Feature kFeatures[] = {
    {"has_journal", kCompat, EXT3_FEATURE_COMPAT_HAS_JOURNAL},
    {"ext_attr", kCompat, EXT2_FEATURE_COMPAT_EXT_ATTR},
    {"resize_inode", kCompat, EXT2_FEATURE_COMPAT_RESIZE_INODE},
    {"dir_index", kCompat, EXT2_FEATURE_COMPAT_DIR_INDEX},
    {"filetype", kIncompat, EXT2_FEATURE_INCOMPAT_FILETYPE},
    {"extent", kIncompat, EXT3_FEATURE_INCOMPAT_EXTENTS},
    {"64bit", kIncompat, EXT4_FEATURE_INCOMPAT_64BIT},
    {"flex_bg", kIncompat, EXT4_FEATURE_INCOMPAT_FLEX_BG},
    {"metadata_csum_seed", kIncompat, EXT4_FEATURE_INCOMPAT_CSUM_SEED},
    {"sparse_super", kRoCompat, EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER},
    {"large_file", kRoCompat, EXT2_FEATURE_RO_COMPAT_LARGE_FILE},
    {"huge_file", kRoCompat, EXT4_FEATURE_RO_COMPAT_HUGE_FILE},
    {"dir_nlink", kRoCompat, EXT4_FEATURE_RO_COMPAT_DIR_NLINK},
    {"extra_isize", kRoCompat, EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE},
    {"metadata_csum", kRoCompat, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM},
    {"uninit_bg", kRoCompat, EXT4_FEATURE_RO_COMPAT_GDT_CSUM},
};

// mke2fs.conf (Debian 12): base_features + the ext4 fs_type's features.
const char* const kDefaultFeatures[] = {
    "sparse_super", "large_file", "filetype", "resize_inode", "dir_index", "ext_attr", "has_journal",
    "extent", "huge_file", "flex_bg", "metadata_csum", "64bit", "dir_nlink", "extra_isize"};

const Feature* FindFeature(const std::string& name) {
  const std::string n = name == "extents" ? "extent" : name;  // e2p's alias
  for (const Feature& f : kFeatures)
    if (n == f.name) return &f;
  return nullptr;
}

// Names of the EXT2_ET_* codes a format can plausibly meet; others are named EXT2_ET_BASE+<n>.
#define GD_EXT2_ERRORS(X)                                                                        \
  X(EXT2_ET_TOOSMALL) X(EXT2_ET_TOO_MANY_INODES) X(EXT2_ET_RES_GDT_BLOCKS)                     \
  X(EXT2_ET_JOURNAL_TOO_SMALL) X(EXT2_ET_SHORT_READ) X(EXT2_ET_SHORT_WRITE)                    \
  X(EXT2_ET_LLSEEK_FAILED) X(EXT2_ET_DIR_NO_SPACE) X(EXT2_ET_BLOCK_ALLOC_FAIL)                 \
  X(EXT2_ET_INODE_ALLOC_FAIL) X(EXT2_ET_UNSUPP_FEATURE) X(EXT2_ET_RO_UNSUPP_FEATURE)          \
  X(EXT2_ET_INVALID_ARGUMENT) X(EXT2_ET_NO_MEMORY) X(EXT2_ET_UNIMPLEMENTED)                   \
  X(EXT2_ET_OP_NOT_SUPPORTED) X(EXT2_ET_BAD_DEVICE_NAME) X(EXT2_ET_FILE_NOT_FOUND)            \
  X(EXT2_ET_DIR_EXISTS) X(EXT2_ET_NO_DIRECTORY) X(EXT2_ET_CANT_USE_LEGACY_BITMAPS)            \
  X(EXT2_ET_EXTENT_NO_SPACE) X(EXT2_ET_FILE_TOO_BIG) X(EXT2_ET_BAD_BLOCK_NUM)                 \
  X(EXT2_ET_BAD_INODE_NUM) X(EXT2_ET_GDESC_BAD_BLOCK_MAP) X(EXT2_ET_GDESC_BAD_INODE_MAP)      \
  X(EXT2_ET_GDESC_BAD_INODE_TABLE) X(EXT2_ET_MISSING_INODE_TABLE) X(EXT2_ET_RO_FILSYS)        \
  X(EXT2_ET_DIR_CORRUPTED) X(EXT2_ET_BLOCK_BITMAP_WRITE) X(EXT2_ET_INODE_BITMAP_WRITE)        \
  X(EXT2_ET_INODE_TABLE_WRITE) X(EXT2_ET_GDESC_WRITE)

std::string Ext2Name(errcode_t code) {
#define GD_NAME_CASE(name) \
  if (code == (name)) return #name;
  GD_EXT2_ERRORS(GD_NAME_CASE)
#undef GD_NAME_CASE
  if (code > EXT2_ET_BASE && code < EXT2_ET_BASE + 256) return "EXT2_ET_BASE+" + std::to_string(code - EXT2_ET_BASE);
  return "UNKNOWN";
}

// A libext2fs failure: errno values (com_err passes them through below the first table's base)
// keep their Node code; everything else becomes ERR_GRAPHDRIVER_MKFS with error_message()'s text.
SysFailure Ext2Fail(errcode_t code, const char* call, const std::string& path) {
  if (code > 0 && code < 4096) return Fail(static_cast<int>(code), call, path);
  SysFailure f;
  f.code = kMkfsCode;
  f.syscall = call;
  f.path = path;
  const char* msg = error_message(code);
  f.message = msg != nullptr ? msg : "unknown libext2fs error";
  f.props.emplace_back("ext2Code", Ext2Name(code));
  return f;
}

// A refusal of our own (size checks made against the device on the pool thread); `ext2Code`
// when libext2fs has a name for the condition.
SysFailure MkfsFail(const std::string& message, const std::string& path, const char* ext2Code = nullptr) {
  SysFailure f;
  f.code = kMkfsCode;
  f.syscall = "mkfsExt4";
  f.path = path;
  f.message = message;
  if (ext2Code != nullptr) f.props.emplace_back("ext2Code", ext2Code);
  return f;
}

struct Options {
  std::string path;
  uint32_t blockSize = 4096;
  uint32_t inodeSize = 256;
  uint64_t bytesPerInode = 0;  // 0: by size, as mke2fs.conf's size types
  uint64_t inodes = 0;         // 0: from bytesPerInode
  double reservedPercent = 5.0;
  std::string label;
  bool hasUuid = false;
  uint8_t uuid[16] = {};
  uint32_t features[3] = {0, 0, 0};
  uint64_t journalBlocks = 0;  // 0: ext2fs_get_journal_params's default
  bool discard = true;
  bool lazyItableInit = true;  // mke2fs's default where the kernel has lazy init (>= 2.6.37)
  bool lazyJournalInit = false;
  // The caller knows the device reads zeroes wherever it was never written (a new thin device):
  // inode tables and journal are then neither written nor left to lazy init.
  bool assumeZeroed = false;
  uint64_t sizeBytes = 0;      // 0: the whole device
};

struct Result {
  uint32_t blockSize = 0;
  uint64_t blocks = 0;
  uint64_t freeBlocks = 0;
  uint64_t reservedBlocks = 0;
  uint32_t inodes = 0;
  uint32_t inodeSize = 0;
  uint32_t groups = 0;
  uint32_t journalBlocks = 0;
  std::string uuid;
  std::vector<std::string> features;
  bool discarded = false;
  bool itableZeroed = false;
};

// ---- reading the options object (JS thread) ----

bool ThrowArg(Napi::Env env, bool typeError, const std::string& what, const std::string& why) {
  if (typeError) {
    Napi::Error e = Napi::TypeError::New(env, "The property 'opts." + what + "' " + why);
    e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
    e.ThrowAsJavaScriptException();
  } else {
    Napi::Error e = Napi::RangeError::New(env, "The property 'opts." + what + "' " + why);
    e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
    e.ThrowAsJavaScriptException();
  }
  return false;
}

// Reads a non-negative integer property; absent (undefined/null) leaves *out alone.
bool OptUint(Napi::Object o, const char* key, uint64_t max, uint64_t* out, bool* present = nullptr) {
  Napi::Value v = o.Get(key);
  if (present != nullptr) *present = false;
  if (v.IsUndefined() || v.IsNull()) return true;
  if (!v.IsNumber()) return ThrowArg(o.Env(), true, key, "must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != std::floor(d) || d > static_cast<double>(max))
    return ThrowArg(o.Env(), false, key, "must be an integer from 0 to " + std::to_string(max) + "; got " + v.ToString().Utf8Value());
  *out = static_cast<uint64_t>(d);
  if (present != nullptr) *present = true;
  return true;
}

bool OptBool(Napi::Object o, const char* key, bool* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return true;
  if (!v.IsBoolean()) return ThrowArg(o.Env(), true, key, "must be a boolean");
  *out = v.As<Napi::Boolean>().Value();
  return true;
}

bool OptString(Napi::Object o, const char* key, std::string* out, bool* present) {
  Napi::Value v = o.Get(key);
  *present = false;
  if (v.IsUndefined() || v.IsNull()) return true;
  if (!v.IsString()) return ThrowArg(o.Env(), true, key, "must be a string");
  *out = v.As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) return ThrowArg(o.Env(), false, key, "must not contain NUL");
  *present = true;
  return true;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// 8-4-4-4-12 hex digits, the only form accepted (no "random"/"time"/"null" words).
bool ParseUuid(const std::string& s, uint8_t out[16]) {
  if (s.size() != 36) return false;
  size_t j = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
      i++;
      continue;
    }
    const int hi = HexDigit(s[i]), lo = HexDigit(s[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[j++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return j == 16;
}

std::string FormatUuid(const uint8_t u[16]) {
  char buf[37];
  std::snprintf(buf, sizeof(buf), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  return buf;
}

bool ReadOptions(const Napi::CallbackInfo& info, Options* opt) {
  Napi::Env env = info.Env();
  if (!ArgString(info, 0, "path", &opt->path)) return false;
  for (const char* name : kDefaultFeatures) {
    const Feature* f = FindFeature(name);
    opt->features[f->word] |= f->mask;
  }
  if (info.Length() < 2 || info[1].IsUndefined() || info[1].IsNull()) return true;
  if (!info[1].IsObject() || info[1].IsArray()) {
    Napi::TypeError::New(env, "Expected an object for argument 'opts'").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Object o = info[1].As<Napi::Object>();
  // Every key must be one we know: a typo must not silently format with defaults.
  static const char* const known[] = {"blockSize", "inodeSize", "bytesPerInode", "inodes", "reservedPercent",
                                      "label", "uuid", "journal", "journalBlocks", "discard",
                                      "lazyItableInit", "lazyJournalInit", "assumeZeroed", "features", "sizeBytes"};
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    const std::string k = keys.Get(i).ToString().Utf8Value();
    bool ok = false;
    for (const char* n : known) ok = ok || k == n;
    if (!ok) return ThrowArg(env, false, k, "is not a mkfsExt4 option");
  }

  uint64_t v = 0;
  bool present = false;
  if (!OptUint(o, "blockSize", 65536, &v, &present)) return false;
  if (present) {
    if (v != 1024 && v != 2048 && v != 4096) return ThrowArg(env, false, "blockSize", "must be 1024, 2048 or 4096; got " + std::to_string(v));
    opt->blockSize = static_cast<uint32_t>(v);
  }
  if (!OptUint(o, "inodeSize", 65536, &v, &present)) return false;
  if (present) {
    if (v != 128 && v != 256) return ThrowArg(env, false, "inodeSize", "must be 128 or 256; got " + std::to_string(v));
    opt->inodeSize = static_cast<uint32_t>(v);
  }
  // mke2fs's -i range: a block's worth to 64 MiB per inode.
  if (!OptUint(o, "bytesPerInode", 1ULL << 26, &opt->bytesPerInode, &present)) return false;
  if (present && opt->bytesPerInode < 1024) return ThrowArg(env, false, "bytesPerInode", "must be from 1024 to 67108864");
  if (!OptUint(o, "inodes", kMax32, &opt->inodes, &present)) return false;
  if (present && opt->inodes == 0) return ThrowArg(env, false, "inodes", "must be at least 1");

  Napi::Value rp = o.Get("reservedPercent");
  if (!rp.IsUndefined() && !rp.IsNull()) {
    if (!rp.IsNumber()) return ThrowArg(env, true, "reservedPercent", "must be a number");
    const double d = rp.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 50)) return ThrowArg(env, false, "reservedPercent", "must be from 0 to 50");
    opt->reservedPercent = d;
  }

  if (!OptString(o, "label", &opt->label, &present)) return false;
  if (present && opt->label.size() > EXT2_LABEL_LEN)
    return ThrowArg(env, false, "label", "must be at most 16 bytes; got " + std::to_string(opt->label.size()));
  std::string uuid;
  if (!OptString(o, "uuid", &uuid, &present)) return false;
  if (present) {
    if (!ParseUuid(uuid, opt->uuid)) return ThrowArg(env, false, "uuid", "must be a UUID like 01234567-89ab-cdef-0123-456789abcdef");
    opt->hasUuid = true;
  }

  Napi::Value feats = o.Get("features");
  if (!feats.IsUndefined() && !feats.IsNull()) {
    if (!feats.IsArray()) return ThrowArg(env, true, "features", "must be an array of strings");
    Napi::Array a = feats.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value e = a.Get(i);
      const std::string where = "features[" + std::to_string(i) + "]";
      if (!e.IsString()) return ThrowArg(env, true, where, "must be a string");
      std::string name = e.As<Napi::String>().Utf8Value();
      const bool clear = !name.empty() && name[0] == '^';
      if (clear) name.erase(0, 1);
      const Feature* f = FindFeature(name);
      if (f == nullptr) {
        std::string list;
        for (const Feature& k : kFeatures) list += (list.empty() ? "" : ", ") + std::string(k.name);
        return ThrowArg(env, false, where, "is not a supported feature: '" + e.As<Napi::String>().Utf8Value() + "' (supported: " + list + ", each optionally prefixed with ^)");
      }
      if (clear)
        opt->features[f->word] &= ~f->mask;
      else
        opt->features[f->word] |= f->mask;
    }
  }
  Napi::Value j = o.Get("journal");
  if (!j.IsUndefined() && !j.IsNull()) {
    if (!j.IsBoolean()) return ThrowArg(env, true, "journal", "must be a boolean");
    if (j.As<Napi::Boolean>().Value())
      opt->features[kCompat] |= EXT3_FEATURE_COMPAT_HAS_JOURNAL;
    else
      opt->features[kCompat] &= ~EXT3_FEATURE_COMPAT_HAS_JOURNAL;
  }
  if (!OptUint(o, "journalBlocks", 10240000, &opt->journalBlocks, &present)) return false;
  if (present && opt->journalBlocks < 1024) return ThrowArg(env, false, "journalBlocks", "must be from 1024 to 10240000 (JBD2's limits)");
  if (present && !(opt->features[kCompat] & EXT3_FEATURE_COMPAT_HAS_JOURNAL))
    return ThrowArg(env, false, "journalBlocks", "is set but the journal is off");
  if (!OptBool(o, "discard", &opt->discard) || !OptBool(o, "lazyItableInit", &opt->lazyItableInit) ||
      !OptBool(o, "lazyJournalInit", &opt->lazyJournalInit) || !OptBool(o, "assumeZeroed", &opt->assumeZeroed))
    return false;
  if (!OptUint(o, "sizeBytes", 1ULL << 53, &opt->sizeBytes, &present)) return false;
  if (present && opt->sizeBytes == 0) return ThrowArg(env, false, "sizeBytes", "must be positive");
  return true;
}

// ---- the format (libuv pool) ----

// libext2fs keeps process-wide state a format touches: the com_err table list (registered once)
// and ext2fs_zero_blocks2's static zero buffer. One format at a time keeps both safe.
std::mutex gFormatLock;

// Frees the handle on every early return; ext2fs_close_free (which writes) is called explicitly.
struct FsHandle {
  ext2_filsys fs = nullptr;
  ~FsHandle() {
    if (fs != nullptr) ext2fs_free(fs);
  }
};

// The device's size in bytes: BLKGETSIZE64 for a block device, st_size for a regular file.
SysFailure DeviceSize(const std::string& path, uint64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(errno, "open", path);
  struct stat st;
  SysFailure f = Ok();
  if (::fstat(fd, &st) != 0) {
    f = Fail(errno, "fstat", path);
  } else if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd, BLKGETSIZE64, size) != 0) f = Fail(errno, "ioctl", path, "", "ioctl(" + Quote(path) + ", BLKGETSIZE64)");
  } else if (S_ISREG(st.st_mode)) {
    *size = static_cast<uint64_t>(st.st_size);
  } else {
    f = MkfsFail("not a block device or a regular file", path);
  }
  ::close(fd);
  return f;
}

// A random (version 4) UUID, from getrandom(2).
SysFailure RandomUuid(uint8_t out[16], const std::string& path) {
  size_t got = 0;
  while (got < 16) {
    const ssize_t n = ::getrandom(out + got, 16 - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(errno, "getrandom", path);
    }
    got += static_cast<size_t>(n);
  }
  out[6] = static_cast<uint8_t>((out[6] & 0x0f) | 0x40);
  out[8] = static_cast<uint8_t>((out[8] & 0x3f) | 0x80);
  return Ok();
}

uint32_t Log2(uint64_t v) {
  uint32_t l = 0;
  while (v > 1) {
    v >>= 1;
    l++;
  }
  return l;
}

// mke2fs.conf's inode_ratio by size type: floppy (< 3 MiB) 8192, small (< 512 MiB) 4096,
// default 16384, big (>= 4 TiB) 32768, huge (>= 16 TiB) 65536.
uint64_t DefaultBytesPerInode(uint64_t bytes) {
  const uint64_t mib = 1024 * 1024;
  if (bytes < 3 * mib) return 8192;
  if (bytes < 512 * mib) return 4096;
  if (bytes < 4 * 1024 * 1024 * mib) return 16384;
  if (bytes < 16 * 1024 * 1024 * mib) return 32768;
  return 65536;
}

// Discards the whole device in 2 GiB steps, after a one-block probe (mke2fs's way): a device
// without discard is not an error. True when everything was discarded.
bool DiscardDevice(ext2_filsys fs) {
  const blk64_t blocks = ext2fs_blocks_count(fs->super);
  if (io_channel_discard(fs->io, 0, 1) != 0) return false;
  const blk64_t step = (2048ULL * 1024 * 1024) / fs->blocksize;
  for (blk64_t cur = 1; cur < blocks; cur += step) {
    const blk64_t n = cur + step > blocks ? blocks - cur : step;
    if (io_channel_discard(fs->io, cur, n) != 0) return false;
  }
  return true;
}

SysFailure Format(const Options& opt, Result* res) {
  std::lock_guard<std::mutex> lock(gFormatLock);
  static bool tablesAdded = false;
  if (!tablesAdded) {
    initialize_ext2_error_table();  // so error_message() knows EXT2_ET_* codes
    tablesAdded = true;
  }
  const std::string& path = opt.path;

  uint64_t devBytes = 0;
  SysFailure f = DeviceSize(path, &devBytes);
  if (f.Failed()) return f;
  // A mounted (or swapped-on, or exclusively held) device is never formatted.
  int mountFlags = 0;
  errcode_t rc = ext2fs_check_if_mounted(path.c_str(), &mountFlags);
  if (rc != 0) return Ext2Fail(rc, "ext2fs_check_if_mounted", path);
  if (mountFlags & (EXT2_MF_MOUNTED | EXT2_MF_SWAP | EXT2_MF_BUSY)) return Fail(EBUSY, "ext2fs_check_if_mounted", path);

  if (opt.sizeBytes > devBytes)
    return MkfsFail("sizeBytes " + std::to_string(opt.sizeBytes) + " exceeds the device's " + std::to_string(devBytes) + " bytes", path);
  const uint64_t bytes = opt.sizeBytes != 0 ? opt.sizeBytes : devBytes;
  const uint32_t bs = opt.blockSize;
  uint64_t blocks = bytes / bs;
  // As mke2fs for a whole device: a multiple of the page size, so the last page is whole.
  const long page = ::sysconf(_SC_PAGESIZE);
  if (opt.sizeBytes == 0 && page > static_cast<long>(bs)) blocks &= ~static_cast<uint64_t>(page / bs - 1);
  if (blocks == 0)
    return MkfsFail("Not enough space to build proposed filesystem: the device holds " + std::to_string(devBytes) + " bytes", path,
                    "EXT2_ET_TOOSMALL");

  struct ext2_super_block param;
  std::memset(&param, 0, sizeof(param));
  param.s_feature_compat = opt.features[kCompat];
  param.s_feature_incompat = opt.features[kIncompat];
  param.s_feature_ro_compat = opt.features[kRoCompat];
  // Feature rules mke2fs enforces.
  if (ext2fs_has_feature_metadata_csum(&param)) ext2fs_clear_feature_gdt_csum(&param);
  if (ext2fs_has_feature_64bit(&param) && !ext2fs_has_feature_extents(&param))
    return MkfsFail("the 64bit feature needs the extent feature", path);
  if (ext2fs_has_feature_resize_inode(&param) && !ext2fs_has_feature_sparse_super(&param))
    return MkfsFail("the resize_inode feature needs the sparse_super feature", path);
  if (ext2fs_has_feature_csum_seed(&param) && !ext2fs_has_feature_metadata_csum(&param))
    return MkfsFail("the metadata_csum_seed feature needs the metadata_csum feature", path);
  if (blocks > kMax32) {
    if (!ext2fs_has_feature_64bit(&param))
      return MkfsFail("the device's " + std::to_string(blocks) + " blocks do not fit in 32 bits; enable the 64bit feature", path);
    ext2fs_clear_feature_resize_inode(&param);  // the resize inode maps 32-bit block numbers only
  }
  if (blocks > (1ULL << (Log2(bs) + 3 + 32)) - 1) return MkfsFail("the device is too big for a filesystem of this block size", path);

  param.s_rev_level = EXT2_DYNAMIC_REV;
  param.s_log_block_size = Log2(bs >> EXT2_MIN_BLOCK_LOG_SIZE);
  param.s_log_cluster_size = param.s_log_block_size;
  ext2fs_blocks_count_set(&param, blocks);
  param.s_inode_size = static_cast<__u16>(opt.inodeSize);
  if (ext2fs_has_feature_flex_bg(&param)) param.s_log_groups_per_flex = 4;  // 16 groups, mke2fs's default
  if (ext2fs_has_feature_64bit(&param)) param.s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;

  uint64_t ratio = opt.bytesPerInode != 0 ? opt.bytesPerInode : DefaultBytesPerInode(blocks * bs);
  if (ratio < bs) ratio = bs;
  uint64_t inodes = opt.inodes != 0 ? opt.inodes : blocks * bs / ratio;
  if (inodes > kMax32) {
    if (!ext2fs_has_feature_64bit(&param))
      return MkfsFail("too many inodes (" + std::to_string(inodes) + "); raise bytesPerInode", path);
    inodes = kMax32;
  }
  if (inodes * opt.inodeSize >= blocks * bs)
    return MkfsFail("inode size (" + std::to_string(opt.inodeSize) + ") * inodes count (" + std::to_string(inodes) +
                        ") too big for a filesystem with " + std::to_string(blocks) + " blocks; raise bytesPerInode or lower inodes",
                    path);
  param.s_inodes_count = static_cast<__u32>(inodes);
  ext2fs_r_blocks_count_set(&param, static_cast<blk64_t>(opt.reservedPercent * static_cast<double>(blocks) / 100.0));

  FsHandle h;
  rc = ext2fs_initialize(path.c_str(), EXT2_FLAG_EXCLUSIVE | EXT2_FLAG_64BITS, &param, unix_io_manager, &h.fs);
  if (rc != 0) {
    h.fs = nullptr;
    return Ext2Fail(rc, "ext2fs_initialize", path);
  }
  ext2_filsys fs = h.fs;
  // ext2fs_initialize rounds inodes per group down to whole table blocks: a tiny device can end
  // up with fewer inodes than the reserved ones (mke2fs then fails writing them).
  if (fs->super->s_inodes_count < EXT2_FIRST_INODE(fs->super) + 1)
    return MkfsFail("Not enough space to build proposed filesystem: room for " + std::to_string(fs->super->s_inodes_count) +
                        " inodes, " + std::to_string(EXT2_FIRST_INODE(fs->super)) + " are reserved",
                    path, "EXT2_ET_TOOSMALL");

  // Journal size now (mke2fs's figure_journal_size): the default for the size, or the request.
  struct ext2fs_journal_params jparams;
  std::memset(&jparams, 0, sizeof(jparams));
  if (ext2fs_has_feature_journal(fs->super)) {
    rc = ext2fs_get_journal_params(&jparams, fs);
    if (rc != 0) {
      // Under 2048 blocks there is no default journal: mke2fs then makes none, and so do we.
      if (opt.journalBlocks != 0) return Ext2Fail(rc, "ext2fs_get_journal_params", path);
      std::memset(&jparams, 0, sizeof(jparams));
    }
    if (opt.journalBlocks != 0) {
      if (opt.journalBlocks > ext2fs_free_blocks_count(fs->super) / 2)
        return MkfsFail("journal size too big for filesystem: " + std::to_string(opt.journalBlocks) + " blocks of " +
                            std::to_string(ext2fs_free_blocks_count(fs->super)) + " free",
                        path);
      jparams.num_journal_blocks = static_cast<blk_t>(opt.journalBlocks);
      jparams.num_fc_blocks = 0;
    }
    if (jparams.num_journal_blocks == 0) ext2fs_clear_feature_journal(fs->super);
  }

  // Discard first; on a device whose discard reads back zeroes (a regular file: punched holes)
  // the inode tables need no zeroing at all.
  bool itableZeroed = opt.assumeZeroed;
  bool lazyItable = opt.lazyItableInit || opt.assumeZeroed;
  if (opt.discard && DiscardDevice(fs)) {
    res->discarded = true;
    if (io_channel_discard_zeroes_data(fs->io)) {
      itableZeroed = true;
      lazyItable = true;
    }
  }

  if (ext2fs_has_feature_flex_bg(fs->super) || ext2fs_has_feature_huge_file(fs->super) ||
      ext2fs_has_feature_gdt_csum(fs->super) || ext2fs_has_feature_dir_nlink(fs->super) ||
      ext2fs_has_feature_metadata_csum(fs->super) || ext2fs_has_feature_extra_isize(fs->super))
    fs->super->s_kbytes_written = 1;  // as mke2fs: marks an ext4-featured fs as written by a 2.6.30+ writer

  // Wipe the first 4 KiB (boot sector, any old superblock) so an interrupted format leaves no
  // stale filesystem signature behind; everything there is rewritten at close.
  {
    std::vector<char> zero(4096, 0);
    io_channel_set_blksize(fs->io, 512);
    rc = io_channel_write_blk64(fs->io, 0, -4096, zero.data());
    io_channel_set_blksize(fs->io, fs->blocksize);
    if (rc != 0) return Ext2Fail(rc, "io_channel_write_blk64", path);
  }

  if (opt.hasUuid) {
    std::memcpy(fs->super->s_uuid, opt.uuid, 16);
  } else {
    f = RandomUuid(fs->super->s_uuid, path);
    if (f.Failed()) return f;
  }
  if (ext2fs_has_feature_csum_seed(fs->super))
    fs->super->s_checksum_seed = ext2fs_crc32c_le(~0U, fs->super->s_uuid, sizeof(fs->super->s_uuid));
  ext2fs_init_csum_seed(fs);  // every checksum written from here on depends on the uuid

  fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
  f = RandomUuid(reinterpret_cast<uint8_t*>(fs->super->s_hash_seed), path);
  if (f.Failed()) return f;
  fs->super->s_max_mnt_count = -1;  // no periodic fsck (mke2fs.conf: enable_periodic_fsck = 0)
  fs->super->s_checkinterval = 0;
  fs->super->s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;  // default_mntopts = acl,user_xattr
  std::memset(fs->super->s_volume_name, 0, sizeof(fs->super->s_volume_name));
  std::memcpy(fs->super->s_volume_name, opt.label.data(), opt.label.size());
  if (ext2fs_has_feature_metadata_csum(fs->super)) fs->super->s_checksum_type = EXT2_CRC32C_CHKSUM;

  rc = ext2fs_allocate_tables(fs);  // bitmaps and inode tables, packed per flex group
  if (rc != 0) return Ext2Fail(rc, "ext2fs_allocate_tables", path);
  rc = ext2fs_convert_subcluster_bitmap(fs, &fs->block_map);
  if (rc != 0) return Ext2Fail(rc, "ext2fs_convert_subcluster_bitmap", path);
  // Metadata overhead, recorded in the superblock so statfs need not recompute it.
  blk64_t overhead = 0;
  rc = ext2fs_count_used_clusters(fs, fs->super->s_first_data_block, ext2fs_blocks_count(fs->super) - 1, &overhead);
  if (rc != 0) return Ext2Fail(rc, "ext2fs_count_used_clusters", path);

  // Zero the last 64 KiB-aligned stretch: old MD RAID (or other) signatures live there, and a
  // write there proves the device is as large as it said.
  {
    const blk64_t rsv = 65536 / fs->blocksize;
    const blk64_t total = ext2fs_blocks_count(fs->super);
    blk64_t start = total & ~(rsv - 1);
    if (start > rsv) start -= rsv;
    if (start > 0) {
      rc = ext2fs_zero_blocks2(fs, start, static_cast<int>(total - start), nullptr, nullptr);
      if (rc != 0) return Ext2Fail(rc, "ext2fs_zero_blocks2", path);
    }
  }

  // Inode tables. Lazy: only the part in use now (none: ext2fs_initialize marked every group's
  // inodes unused), the kernel's ext4lazyinit zeroes the rest and sets INODE_ZEROED itself.
  for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
    int num = static_cast<int>(fs->inode_blocks_per_group);
    if (lazyItable)
      num = static_cast<int>(ext2fs_div_ceil((fs->super->s_inodes_per_group - ext2fs_bg_itable_unused(fs, g)) *
                                                 EXT2_INODE_SIZE(fs->super),
                                             EXT2_BLOCK_SIZE(fs->super)));
    if (!lazyItable || itableZeroed) {
      ext2fs_bg_flags_set(fs, g, EXT2_BG_INODE_ZEROED);
      ext2fs_group_desc_csum_set(fs, g);
    }
    if (!itableZeroed && num > 0) {
      rc = ext2fs_zero_blocks2(fs, ext2fs_inode_table_loc(fs, g), num, nullptr, nullptr);
      if (rc != 0) return Ext2Fail(rc, "ext2fs_zero_blocks2", path);
    }
  }
  // With metadata_csum the reserved inodes must carry valid checksums even when unused.
  if (ext2fs_has_feature_metadata_csum(fs->super)) {
    std::vector<char> zero(EXT2_INODE_SIZE(fs->super), 0);
    for (ext2_ino_t ino = 1; ino < EXT2_FIRST_INO(fs->super); ino++) {
      rc = ext2fs_write_inode_full(fs, ino, reinterpret_cast<struct ext2_inode*>(zero.data()), EXT2_INODE_SIZE(fs->super));
      if (rc != 0) return Ext2Fail(rc, "ext2fs_write_inode_full", path);
    }
  }

  // / (0755 root:root: fs->umask is 022) and /lost+found (0700), grown to 16 KiB as mke2fs does
  // so e2fsck has room to reconnect files without allocating.
  rc = ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, nullptr);
  if (rc != 0) return Ext2Fail(rc, "ext2fs_mkdir", path);
  fs->umask = 077;
  rc = ext2fs_mkdir(fs, EXT2_ROOT_INO, 0, "lost+found");
  if (rc != 0) return Ext2Fail(rc, "ext2fs_mkdir", path);
  fs->umask = 022;
  ext2_ino_t lpf = 0;
  rc = ext2fs_lookup(fs, EXT2_ROOT_INO, "lost+found", 10, nullptr, &lpf);
  if (rc != 0) return Ext2Fail(rc, "ext2fs_lookup", path);
  unsigned int lpfSize = 0;
  for (int i = 1; i < EXT2_NDIR_BLOCKS; i++) {
    lpfSize += fs->blocksize;
    if (lpfSize >= 16 * 1024 && lpfSize >= 2 * fs->blocksize) break;
    rc = ext2fs_expand_dir(fs, lpf);
    if (rc != 0) return Ext2Fail(rc, "ext2fs_expand_dir", path);
  }

  // Inodes 3..first_ino-1 are reserved: counted in use. Inode 1 holds the (empty) bad block list.
  for (ext2_ino_t ino = EXT2_ROOT_INO + 1; ino < EXT2_FIRST_INODE(fs->super); ino++)
    ext2fs_inode_alloc_stats2(fs, ino, +1, 0);
  ext2fs_mark_ib_dirty(fs);
  ext2fs_mark_inode_bitmap2(fs->inode_map, EXT2_BAD_INO);
  ext2fs_inode_alloc_stats2(fs, EXT2_BAD_INO, +1, 0);
  rc = ext2fs_update_bb_inode(fs, nullptr);
  if (rc != 0) return Ext2Fail(rc, "ext2fs_update_bb_inode", path);

  if (ext2fs_has_feature_resize_inode(fs->super)) {
    rc = ext2fs_create_resize_inode(fs);
    if (rc != 0) return Ext2Fail(rc, "ext2fs_create_resize_inode", path);
  }

  if (ext2fs_has_feature_journal(fs->super)) {
    overhead += EXT2FS_NUM_B2C(fs, jparams.num_journal_blocks + jparams.num_fc_blocks);
    // ~0: the journal goes near the middle of the filesystem (mke2fs's default location).
    int jflags = EXT2_MKJOURNAL_NO_MNT_CHECK | (opt.lazyJournalInit || opt.assumeZeroed ? EXT2_MKJOURNAL_LAZYINIT : 0);
    rc = ext2fs_add_journal_inode3(fs, &jparams, ~0ULL, jflags);
    if (rc != 0) return Ext2Fail(rc, "ext2fs_add_journal_inode3", path);
  }
  overhead += fs->super->s_first_data_block;
  fs->super->s_overhead_clusters = static_cast<__u32>(overhead);

  res->blockSize = fs->blocksize;
  res->blocks = ext2fs_blocks_count(fs->super);
  res->freeBlocks = ext2fs_free_blocks_count(fs->super);
  res->reservedBlocks = ext2fs_r_blocks_count(fs->super);
  res->inodes = fs->super->s_inodes_count;
  res->inodeSize = EXT2_INODE_SIZE(fs->super);
  res->groups = fs->group_desc_count;
  res->journalBlocks = ext2fs_has_feature_journal(fs->super) ? jparams.num_journal_blocks : 0;
  res->uuid = FormatUuid(fs->super->s_uuid);
  res->itableZeroed = itableZeroed;
  const uint32_t words[3] = {fs->super->s_feature_compat, fs->super->s_feature_incompat, fs->super->s_feature_ro_compat};
  for (const Feature& feat : kFeatures)
    if (words[feat.word] & feat.mask) res->features.emplace_back(feat.name);

  // Writes the superblock and its backups, the group descriptors and the bitmaps, then frees.
  rc = ext2fs_close_free(&h.fs);
  h.fs = nullptr;
  ext2fs_zero_blocks2(nullptr, 0, 0, nullptr, nullptr);  // frees the static zero buffer, if any
  if (rc != 0) return Ext2Fail(rc, "ext2fs_close_free", path);
  return Ok();
}

}  // namespace

// mkfsExt4(path, opts) — see the header comment; resolves to a summary of what was made.
static Napi::Value JS_mkfsExt4(const Napi::CallbackInfo& info) {
  Options opt;
  if (!ReadOptions(info, &opt)) return info.Env().Undefined();
  return Worker<Result>::Run(
      info.Env(), [opt](Result* res) { return Format(opt, res); },
      [](Napi::Env env, Result* r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        auto n = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
        n("blockSize", r->blockSize);
        n("blocks", static_cast<double>(r->blocks));
        n("freeBlocks", static_cast<double>(r->freeBlocks));
        n("reservedBlocks", static_cast<double>(r->reservedBlocks));
        n("inodes", r->inodes);
        n("inodeSize", r->inodeSize);
        n("groups", r->groups);
        n("journalBlocks", r->journalBlocks);
        o.Set("uuid", Napi::String::New(env, r->uuid));
        Napi::Array feats = Napi::Array::New(env, r->features.size());
        for (size_t i = 0; i < r->features.size(); i++) feats.Set(static_cast<uint32_t>(i), Napi::String::New(env, r->features[i]));
        o.Set("features", feats);
        o.Set("discarded", Napi::Boolean::New(env, r->discarded));
        o.Set("itableZeroed", Napi::Boolean::New(env, r->itableZeroed));
        return o;
      });
}

void InitMkfsExt4(Napi::Env env, Napi::Object exports) {
  exports.Set("mkfsExt4", Napi::Function::New(env, JS_mkfsExt4, "mkfsExt4"));
  Napi::Array names = Napi::Array::New(env, sizeof(kFeatures) / sizeof(kFeatures[0]));
  uint32_t i = 0;
  for (const Feature& f : kFeatures) names.Set(i++, Napi::String::New(env, f.name));
  exports.Set("mkfsExt4Features", names);
  Napi::Array defaults = Napi::Array::New(env, sizeof(kDefaultFeatures) / sizeof(kDefaultFeatures[0]));
  i = 0;
  for (const char* name : kDefaultFeatures) defaults.Set(i++, Napi::String::New(env, name));
  exports.Set("mkfsExt4DefaultFeatures", defaults);
}

}  // namespace gd
