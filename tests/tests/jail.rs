//! The VMM's jail: every thread of a container's VMM runs under its seccomp
//! allow-list (one filter each, none inherited), the VMM in namespaces of
//! its own with a root of only its VM's files and few capabilities, in a
//! cgroup of its own with its resource limits, and with all that on
//! containers still run,
//! exec, use volumes, binds, networks, published ports and `cp`. The test
//! runs the filters in kill mode (the default fails a syscall off the list
//! with EPERM), so a syscall missing from a list kills the VM and shows.

use hull_e2e::script::{facts, in_test_host};

#[test]
fn every_vmm_thread_is_filtered_and_containers_still_work() {
    let output = in_test_host(
        r#"
export HULL_VMM_SECCOMP=kill
vmm_threads() {
    pid=$(cat $HULL_ROOT/run/$(echo $1 | cut -c1-12)/vmm.pid)
    total=0; filtered=0
    for task in /proc/$pid/task/*; do
        total=$((total + 1))
        grep -q '^Seccomp:[[:space:]]*2$' $task/status \
            && grep -q '^Seccomp_filters:[[:space:]]*1$' $task/status \
            && filtered=$((filtered + 1))
    done
    echo "$total $filtered $(cat /proc/$pid/task/*/comm | sort | uniq -c | awk '{print $2 "x" $1}' | paste -sd, -)"
}
$h network create jnet >/dev/null
$h volume create jvol >/dev/null
mkdir -p /tmp/jbind && echo from-host > /tmp/jbind/f
id=$($h run -d --name j1 --network jnet -p 8088:80 -v jvol:/data -v /tmp/jbind:/bind --rootfs $R -- sh -c 'mkdir -p /www; echo hello > /www/index.html; exec httpd -f -p 80 -h /www')
echo "run=$?"
wait_for '$h exec j1 true 2>/dev/null'
echo "threads=$(vmm_threads $id)"
short=$(echo $id | cut -c1-12)
vmm=$(cat $HULL_ROOT/run/$short/vmm.pid)
echo "jail=$(ls /proc/$vmm/root | paste -sd, -) $(for ns in mnt pid net ipc uts; do [ "$(readlink /proc/$vmm/ns/$ns)" != "$(readlink /proc/self/ns/$ns)" ] && printf '%s,' $ns; done)"
echo "privileges=$(awk '/^NSpid/ {print $NF} /^CapBnd|^CapEff|^NoNewPrivs/ {print $2}' /proc/$vmm/status | paste -sd' ')"
echo "host-mounts=$(grep -c "$HULL_ROOT/run/$short/jail" /proc/self/mountinfo)"
echo "jail-run=$([ -S /proc/$vmm/root/run/vsock.sock ] && echo vsock) $(ls -a /proc/$vmm/root/run | grep -c -e pid -e json -e attach -e vmm.log)"
echo "cgroup=$(cat /proc/$vmm/cgroup) $(cat /sys/fs/cgroup/hull/$short/pids.max) $(cat /sys/fs/cgroup/hull/$short/cpu.max)"
echo "rlimits=$(awk '/^Max core file size/ {print "core=" $5 ":" $6} /^Max open files/ {print "nofile=" $5}' /proc/$vmm/limits | paste -sd' ')"
echo "volume=$($h exec j1 sh -c 'cd /data && echo x > a && ln a b && ln -s a c && mv b d && chmod 600 d && chown 1000:100 a && mkdir e && rmdir e && mkfifo p && truncate -s 3 a && touch -d 2020-01-01 a && dd if=/dev/zero of=big bs=1M count=4 2>/dev/null && sync && rm big && stat -c "%s %u:%g" a && readlink c && stat -c %a d' | paste -sd' ')"
echo "host-sees=$(stat -c '%u:%g %s' $HULL_ROOT/volumes/jvol/_data/a)"
echo "bind=$($h exec j1 sh -c 'cat /bind/f; echo from-guest > /bind/g') $(cat /tmp/jbind/g)"
echo "neighbour=$($h run --rm --network jnet --rootfs $R -- sh -c 'wget -q -O - http://j1/ && ping -c 1 -W 10 j1 >/dev/null && echo pinged' | paste -sd' ')"
wait_for 'wget -q -O /dev/null http://127.0.0.1:8088/ 2>/dev/null'
echo "published=$(wget -q -O - http://127.0.0.1:8088/)"
echo copied > /tmp/jcp
$h cp /tmp/jcp j1:/tmp/jcp && $h cp j1:/tmp/jcp /tmp/jcp-back && echo "cp=$(cat /tmp/jcp-back)"
$h restart -t 5 j1 >/dev/null
wait_for '$h exec j1 true 2>/dev/null'
echo "restarted=$($h exec j1 stat -L -c %s /data/c) $(vmm_threads $id | cut -d' ' -f1,2 | awk '$1 == $2 {print "all-filtered"}')"
$h rm -f j1 >/dev/null; echo "rm=$?"
echo "cgroups-left=$(find /sys/fs/cgroup/hull -mindepth 1 -type d | wc -l)"
echo "killed=$(dmesg | grep -c 'type=1326')"
dmesg | grep 'type=1326' | tail -n 5
"#,
    );
    assert_eq!(facts(&output, "run"), ["0"], "{output}");
    // Every thread of the VMM has exactly one filter: the main thread, two
    // vCPUs' worth at most, and one worker per device (vsock, the rootfs,
    // the volume and the bind over virtio-fs, the scratch disk, the tap).
    let threads = facts(&output, "threads");
    let [total, filtered, names] = threads[0].splitn(3, ' ').collect::<Vec<_>>()[..] else {
        panic!("no thread facts: {output}");
    };
    assert_eq!(total, filtered, "{output}");
    for name in ["vcpu0", "vsock", "virtio-fsx3", "virtio-blk", "virtio-net"] {
        assert!(names.contains(name), "{name} not in {names}: {output}");
    }
    // Its own cgroup, bounded, removed with it; no core dumps, a bounded
    // open file limit.
    let cgroup = facts(&output, "cgroup");
    let [path, pids, quota, period] = cgroup[0].split(' ').collect::<Vec<_>>()[..] else {
        panic!("no cgroup fact: {output}");
    };
    assert!(path.starts_with("0::/hull/"), "{output}");
    assert_eq!((pids, period), ("128", "100000"), "{output}");
    assert!(quota.ends_with("00000") && quota != "max", "{output}");
    assert_eq!(facts(&output, "cgroups-left"), ["0"], "{output}");
    // Jailed: PID 1 of its own PID namespace, in mount, network, IPC and
    // UTS namespaces of its own, with a root holding only the VM's files
    // and the file servers' capabilities (CHOWN, DAC_OVERRIDE,
    // DAC_READ_SEARCH, FOWNER, FSETID, SETGID, SETUID, MKNOD, SETFCAP),
    // none to regain; nothing of
    // the jail mounted on the host.
    assert_eq!(
        facts(&output, "jail"),
        ["boot,dev,disks,proc,run,shares mnt,pid,net,ipc,uts,"],
        "{output}"
    );
    let privileges = facts(&output, "privileges");
    let [pids, effective, bounding, no_new_privs] =
        privileges[0].split(' ').collect::<Vec<_>>()[..]
    else {
        panic!("no privilege facts: {output}");
    };
    assert_eq!(
        (pids, effective, bounding, no_new_privs),
        ("1", "00000000880000df", "00000000880000df", "1"),
        "{output}"
    );
    assert_eq!(facts(&output, "host-mounts"), ["0"], "{output}");
    // Of its run directory only its own files: its vsock sockets and the
    // console log, not its recorded pid, config, log or the attach socket.
    assert_eq!(facts(&output, "jail-run"), ["vsock 0"], "{output}");
    let rlimits = facts(&output, "rlimits");
    let nofile = rlimits[0]
        .strip_prefix("core=0:0 nofile=")
        .unwrap_or_else(|| panic!("core dumps on or no limits: {output}"));
    assert!(nofile.parse::<u64>().unwrap() <= 1 << 20, "{output}");
    assert_eq!(facts(&output, "volume"), ["3 1000:100 a 600"], "{output}");
    assert_eq!(facts(&output, "host-sees"), ["1000:100 3"], "{output}");
    assert_eq!(facts(&output, "bind"), ["from-host from-guest"], "{output}");
    assert_eq!(facts(&output, "neighbour"), ["hello pinged"], "{output}");
    assert_eq!(facts(&output, "published"), ["hello"], "{output}");
    assert_eq!(facts(&output, "cp"), ["copied"], "{output}");
    assert_eq!(facts(&output, "restarted"), ["3 all-filtered"], "{output}");
    assert_eq!(facts(&output, "rm"), ["0"], "{output}");
    // No VMM was killed by its filter (the kernel audits each kill).
    assert_eq!(facts(&output, "killed"), ["0"], "{output}");
}
