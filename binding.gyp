{
  "targets": [{
    "target_name": "graphdriver",
    "sources": [
      "native/addon.cc",
      "native/napi_util.cc",
      "native/mount.cc",
      "native/mount_api.cc",
      "native/statfs.cc",
      "native/xattr.cc",
      "native/inode.cc",
      "native/resolve.cc",
      "native/copy.cc",
      "native/apply.cc",
      "native/scan.cc",
      "native/read.cc",
      "native/copytree.cc",
      "native/btrfs.cc",
      "native/quota.cc",
      "native/dm.cc",
      "native/loop.cc",
      "native/mkfs_ext4.cc"
    ],
    "libraries": ["-lext2fs", "-lcom_err"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=9", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=c++17"],
    "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fno-exceptions"],
    "cflags": ["-Wall", "-Wextra"]
  }]
}
