#!/bin/sh
# PID 1 of the KVM test host (L1). It builds a root from the host's root
# (read-only 9p) under a tmpfs overlay, runs hull's guest agent in relay mode
# on the virtio-serial channel, and powers off when the relay exits.
#
# As the hull machine (hull.machine=PORT) its root is the host's root itself,
# read-only, so every host path means the same inside; the directories it may
# write (hull.share=DIR: the hull root and the shared directories, each the
# writable 9p share hullshareN, N counting from 0 in their order) are mounted
# over their paths, and its runtime directories (/run, hull.tmpfs=DIR, and
# hull.tmpdir=DIR: /tmp and /var/tmp where the host does not share them) are
# its own. eth0 reaches the host through QEMU's user network, and the agent
# serves a relay session to every connection on PORT that presents the token
# in hull.token=FILE.
#
# With hull.heartbeat=TTY it writes a byte to TTY every 5 s while it runs.

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
tmpfs=
tmpdirs=
shares=
machine_port=
token=
heartbeat=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        hull.agent=*) agent="${arg#hull.agent=}" ;;
        hull.tmpfs=*) tmpfs="$tmpfs ${arg#hull.tmpfs=}" ;;
        hull.tmpdir=*) tmpdirs="$tmpdirs ${arg#hull.tmpdir=}" ;;
        hull.share=*) shares="$shares ${arg#hull.share=}" ;;
        hull.machine=*) machine_port="${arg#hull.machine=}" ;;
        hull.token=*) token="${arg#hull.token=}" ;;
        hull.heartbeat=*) heartbeat="${arg#hull.heartbeat=}" ;;
    esac
done
[ -n "$agent" ] || fail "no hull.agent= on the kernel command line"
[ -z "$machine_port" ] || [ -n "$token" ] || fail "hull.machine= without hull.token="

ip link set lo up || fail "cannot bring up loopback"

# A byte every 5 s while this kernel runs, for the host to tell a frozen
# test host from a busy one (hull.heartbeat=TTY, a serial port of its own).
if [ -n "$heartbeat" ]; then
    while printf .; do sleep 5 || break; done > "$heartbeat" &
fi

# devtmpfs names ports vportNpM; udev would add these by-name links.
mkdir -p /dev/virtio-ports
for port in /sys/class/virtio-ports/*; do
    [ -r "$port/name" ] && ln -s "../${port##*/}" "/dev/virtio-ports/$(cat "$port/name")"
done

mkdir -p /root
if [ -n "$machine_port" ]; then
    mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=524288,cache=mmap hostroot /root \
        || fail "cannot mount the host root over 9p"
    index=0
    for dir in $shares; do
        mount -t 9p -o rw,trans=virtio,version=9p2000.L,msize=524288,cache=mmap \
            "hullshare$index" "/root$dir" || fail "cannot mount the writable share $dir"
        index=$((index + 1))
    done
else
    mkdir -p /host /overlay
    mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=524288,cache=mmap hostroot /host \
        || fail "cannot mount the host root over 9p"
    mount -t tmpfs -o mode=0755 overlay /overlay
    mkdir -p /overlay/upper /overlay/work
    mount -t overlay -o lowerdir=/host,upperdir=/overlay/upper,workdir=/overlay/work overlay /root \
        || fail "cannot stack the overlay on the host root"
fi

for fs in proc sys dev; do
    mount --move "/$fs" "/root/$fs" || fail "cannot move /$fs into the new root"
done
# cgroup v2, where hull gives each VMM a cgroup of its own.
mount -t cgroup2 cgroup2 /root/sys/fs/cgroup || fail "cannot mount cgroup2"
mkdir -p /root/dev/pts /root/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /root/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /root/dev/shm
mount -t tmpfs -o mode=0755 tmpfs /root/run

# Per-boot directories (the machine's runtime sockets) stay in its memory.
for dir in $tmpfs; do
    mkdir -p "/root$dir" && mount -t tmpfs -o mode=0700 tmpfs "/root$dir" \
        || fail "cannot mount a tmpfs on $dir"
done
for dir in $tmpdirs; do
    mount -t tmpfs -o mode=1777 tmpfs "/root$dir" || fail "cannot mount a tmpfs on $dir"
done

if [ -n "$machine_port" ]; then
    # QEMU's user network: the host is 10.0.2.2, its DNS proxy 10.0.2.3.
    ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 \
        && ip route add default via 10.0.2.2 || fail "cannot configure eth0"
    # Containers reach the world through eth0, but neither the host's
    # loopback (10.0.2.2) nor the relay: only QEMU does.
    chroot /root nft -f - <<EOF || fail "cannot set up the machine's nftables rules"
table ip hull-machine {
    chain forward {
        type filter hook forward priority 0; policy accept;
        ip daddr 10.0.2.2 drop
    }
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport $machine_port iifname != "eth0" drop
    }
}
EOF
    # The machine's resolv.conf, laid over the host's without changing it
    # (or written where the host's links to under /run, which is ours).
    resolv=/root/etc/resolv.conf
    if [ -L "$resolv" ]; then
        target=$(readlink "$resolv")
        case "$target" in
            /run/*) resolv="/root$target" ;;
            ../run/*) resolv="/root/etc/$target" ;;
            *) fail "/etc/resolv.conf links to $target, outside /run" ;;
        esac
        mkdir -p "${resolv%/*}" && echo "nameserver 10.0.2.3" > "$resolv" \
            || fail "cannot write $resolv"
    else
        echo "nameserver 10.0.2.3" > /root/run/resolv.conf \
            && mount --bind /root/run/resolv.conf "$resolv" \
            || fail "cannot lay the machine's resolv.conf over the host's"
    fi
fi

# Not exec: this shell stays PID 1 so it can power off once the relay exits.
if [ -n "$machine_port" ]; then
    chroot /root "$agent" relay --listen "$machine_port" --token-file "$token"
else
    chroot /root "$agent" relay --channel /dev/virtio-ports/hull.relay
fi
echo "hull-testhost: relay exited with status $?"
poweroff -f
