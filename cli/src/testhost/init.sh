#!/bin/sh
# PID 1 of the KVM test host (L1). It builds a root from the host's root
# (read-only 9p) under a tmpfs overlay, runs hull's guest agent in relay mode
# on the virtio-serial channel, and powers off when the relay exits.

export PATH=/sbin:/bin:/usr/sbin:/usr/bin

fail() {
    echo "hull-testhost: $*"
    poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# /etc/modules lists the .ko files in dependency order.
while read -r module; do
    insmod "$module" || fail "cannot load $module"
done < /etc/modules

agent=
direct=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        hull.agent=*) agent="${arg#hull.agent=}" ;;
        hull.direct=*) direct="$direct ${arg#hull.direct=}" ;;
    esac
done
[ -n "$agent" ] || fail "no hull.agent= on the kernel command line"

ip link set lo up || fail "cannot bring up loopback"

# devtmpfs names ports vportNpM; udev would add these by-name links.
mkdir -p /dev/virtio-ports
for port in /sys/class/virtio-ports/*; do
    [ -r "$port/name" ] && ln -s "../${port##*/}" "/dev/virtio-ports/$(cat "$port/name")"
done

mkdir -p /host /overlay /root
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=524288,cache=mmap hostroot /host \
    || fail "cannot mount the host root over 9p"
mount -t tmpfs -o mode=0755 overlay /overlay
mkdir -p /overlay/upper /overlay/work
mount -t overlay -o lowerdir=/host,upperdir=/overlay/upper,workdir=/overlay/work overlay /root \
    || fail "cannot stack the overlay on the host root"

# Directories the host wants seen as they are (image layers): overlayfs would
# take their whiteouts and overlay xattrs for its own and hide them.
for dir in $direct; do
    mount --bind "/host$dir" "/root$dir" || fail "cannot bind $dir from the host"
done

for fs in proc sys dev; do
    mount --move "/$fs" "/root/$fs" || fail "cannot move /$fs into the new root"
done
mkdir -p /root/dev/pts /root/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /root/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /root/dev/shm
mount -t tmpfs -o mode=0755 tmpfs /root/run

# Not exec: this shell stays PID 1 so it can power off once the relay exits.
chroot /root "$agent" relay --channel /dev/virtio-ports/hull.relay
echo "hull-testhost: relay exited with status $?"
poweroff -f
