#!/.vm/bin/sh
# guest-init.sh: PID 1 of the test VM (busybox ash, from the initramfs test/vm/run builds).
# Brings up the pseudo filesystems, loads the modules in the order the host resolved, mounts the
# host's shares (9p) and the scratch disk as the host's control directory says, runs the
# command, hands its exit status back through the control share and powers off. Every failure
# powers off too: the host reports a guest that never printed its start line as a boot failure,
# with this console output.
export PATH=/.vm/bin
VM=/.vm

die() {
  echo "graphdriver-vm init: $*"
  poweroff -f
  sleep 10
  reboot -f
}

mount -t proc -o nosuid,nodev,noexec proc /proc || die "mount /proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || die "mount /sys"
mount -t devtmpfs -o nosuid,mode=755 devtmpfs /dev || die "mount /dev"
# What udev or systemd would otherwise provide and programs expect.
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp || die "mount /tmp"
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs /run || die "mount /run"
mkdir -p /run/lock /run/mount
# Kernel messages (a test's dm or xfs errors) would land in the middle of the command's output.
dmesg -n 1

while read -r module; do
  insmod "$VM/modules/$module" || die "insmod $module"
done < "$VM/modules.list"

NINEP=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$NINEP,cache=none" gdctl "$VM/ctl" || die "mount the control share"
. "$VM/ctl/settings"

# Host directories at their host paths, parents first (the host sorted them): /usr, /etc, the
# project tree, ... The paths are the rest of each line, so they may contain spaces.
while read -r tag mode dir; do
  mkdir -p "$dir" && mount -t 9p -o "$NINEP,cache=loose,$mode" "$tag" "$dir" || die "mount $tag at $dir"
done < "$VM/ctl/mounts"
# Merged-/usr symlinks (/bin -> usr/bin, ...), as on the host.
while read -r link target; do
  ln -s "$target" "$link" || die "symlink $link"
done < "$VM/ctl/links"

mkdir -p "$VM_SCRATCH" || die "mkdir $VM_SCRATCH"
if [ "$VM_SCRATCH_FS" = ext4 ]; then
  # virtio_blk adds the disk while it loads; wait a little in case the probe is still running.
  tries=0
  while [ ! -b /dev/vda ] && [ $tries -lt 50 ]; do sleep 0.1; tries=$((tries + 1)); done
  mount -t ext4 -o noatime /dev/vda "$VM_SCRATCH" || die "mount the scratch disk"
  rmdir "$VM_SCRATCH/lost+found"
else
  mount -t tmpfs -o mode=1777 tmpfs "$VM_SCRATCH" || die "mount a tmpfs at $VM_SCRATCH"
fi
chmod 1777 "$VM_SCRATCH"

hostname graphdriver-vm
ip link set lo up 2>/dev/null
# No \r added to each \n: the host forwards the bytes as they are. Size as the caller's terminal.
stty -onlcr
stty cols "$VM_COLS" rows "$VM_ROWS"

echo "$VM_MARK:start"
if [ "$VM_TTY" = 1 ]; then
  env -i "$VM/bin/sh" "$VM/ctl/command" < /dev/null
  status=$?
else
  # The caller's stdout is not a terminal: neither is the command's (programs pick their
  # output format from that, node --test its reporter).
  { env -i "$VM/bin/sh" "$VM/ctl/command" < /dev/null 2>&1; echo $? > /run/vm-status; } | cat
  status=$(cat /run/vm-status)
fi
echo "$status" > "$VM/ctl/status"
# Flush what the command wrote to the shares (cache=loose writes back lazily) and the disk.
sync
# Right after the output, not on a line of its own: the host cuts exactly there, so output
# without a final newline stays so. \001 first: output that ends like the start of a marker (and
# is held back until more comes) is then all but impossible.
printf '\001%s:end:%s\n' "$VM_MARK" "$status"
poweroff -f
sleep 10
reboot -f
