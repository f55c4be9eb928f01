//! Limits and privileges of a container's processes, end to end in real
//! VMs from this host's shell: cgroup limits the container sees at
//! /sys/fs/cgroup as Docker's do, a fork bomb held by --pids-limit, an
//! out-of-memory kill reported, rlimits, /dev/shm's size, Docker's default
//! capabilities changed by --cap-add/--cap-drop/--privileged (in `exec`
//! too), kernel parameters, --group-add and no-new-privileges (in `exec`
//! too), the resolver's search domains and options, the none log driver,
//! --cidfile and --expose; -h/--domainname, --oom-score-adj,
//! --cpu-quota, --cpuset-cpus (the VMM pinned), --storage-opt size and
//! -a; `hull update` of a running container (its
//! cgroup changed inside its VM, its new restart policy followed when its
//! process ends) and of a stopped one (its next boot the new size); and
//! bad flags refused with one line, before anything is made.

use hull_e2e::script::{facts, on_this_host};
use hull_e2e::{assert_clean, Hull};

#[test]
fn limits_and_privileges_hold_inside_the_vm() {
    let hull = Hull::new();
    let output = on_this_host(
        &hull,
        r#"
cg=/sys/fs/cgroup
echo "cgroup=$($h run --rm -m 256m --memory-reservation 64m -c 512 --pids-limit 50 --cpus 0.5 --rootfs $R -- sh -c "cat /proc/self/cgroup $cg/memory.max $cg/memory.low $cg/cpu.weight $cg/pids.max $cg/cpu.max" | paste -sd'|')"
echo "pids=$($h run --rm --pids-limit 10 --rootfs $R -- sh -c '(for i in $(seq 30); do sleep 60 & done) 2>/dev/null; read n < /sys/fs/cgroup/pids.current; read e < /sys/fs/cgroup/pids.events; echo $n $e')"
$h run --name oom -m 128m --rootfs $R -- sh -c 'head -c 400m /dev/zero | tail >/dev/null'
echo "oom=$? $($h inspect -f '{{.State.OOMKilled}} {{.State.ExitCode}}' oom)"
$h rm oom >/dev/null
echo "ulimit=$($h run --rm --ulimit nofile=100:200 --ulimit core=-1 --rootfs $R -- sh -c 'echo $(ulimit -n) $(ulimit -Hn) $(ulimit -c)')"
echo "shm=$($h run --rm --shm-size 16m --rootfs $R -- df -k /dev/shm | awk 'NR == 2 {print $2}')"
echo "caps-default=$($h run --rm --rootfs $R -- grep CapEff /proc/self/status | cut -f2)"
echo "caps-privileged=$($h run --rm --privileged --rootfs $R -- grep CapEff /proc/self/status | cut -f2)"
echo "caps-only-chown=$($h run --rm --cap-drop ALL --cap-add chown --rootfs $R -- grep CapEff /proc/self/status | cut -f2)"
echo "cap-drop=$($h run --rm --cap-drop CHOWN --rootfs $R -- sh -c 'touch /f; chown 5 /f 2>&1' | sed 's/.*: //')"
echo "cap-add=$($h run --rm --cap-add NET_ADMIN --rootfs $R -- sh -c 'ip link set lo mtu 1280 && cat /sys/class/net/lo/mtu')"
echo "net-admin-default=$($h run --rm --rootfs $R -- sh -c 'ip link set lo mtu 1280 2>&1' | sed 's/.*: //')"
echo "hardened=$($h run --rm --group-add nogroup --group-add 4321 --security-opt no-new-privileges --rootfs $R -- sh -c 'echo $(grep -E "^(Groups|NoNewPrivs)" /proc/self/status | cut -f2)')"
echo "plain=$($h run --rm --security-opt seccomp=unconfined --security-opt apparmor=unconfined --ipc shareable --rootfs $R -- sh -c 'echo $(grep -E "^(Groups|NoNewPrivs)" /proc/self/status | cut -f2)')"
work=$(mktemp -d)
$h run -d --name held --cap-drop ALL --ulimit nofile=64 --sysctl net.core.somaxconn=1234 \
    --group-add 4321 --security-opt no-new-privileges:true --dns-search corp.example --dns-option ndots:3 \
    --log-driver none --cidfile $work/cid --expose 7000-7001/udp --rootfs $R -- sleep 100000 >/dev/null
echo "exec-held=$($h exec held sh -c 'echo $(grep CapEff /proc/self/status | cut -f2) $(ulimit -n) $(cat /proc/sys/net/core/somaxconn) $(cat /proc/self/cgroup)')"
echo "exec-user=$($h exec -u 1000 held grep CapEff /proc/self/status | cut -f2)"
echo "exec-privileged=$($h exec --privileged held grep CapEff /proc/self/status | cut -f2)"
echo "exec-hardened=$($h exec -u 1000 held sh -c 'echo $(grep -E "^(Groups|NoNewPrivs)" /proc/self/status | cut -f2)')"
echo "resolver=$($h exec held grep -E '^(search|options)' /etc/resolv.conf | paste -sd'|')"
echo "no-log=$($h logs held 2>$work/err; echo "$? $(wc -l < $work/err)")"
echo "cidfile=$([ "$(cat $work/cid)" = "$($h inspect -f '{{.Id}}' held)" ] && echo same)"
echo "inspect=$($h inspect -f '{{.HostConfig.LogConfig.Type}} {{.HostConfig.GroupAdd}} {{.HostConfig.SecurityOpt}} {{.HostConfig.DnsSearch}} {{len .Config.ExposedPorts}}' held)"
echo "cidfile-taken=$($h run -d --cidfile $work/cid --rootfs $R -- true 2>$work/err; echo "$? $(wc -l < $work/err)")"

up=$($h update -m 256m --memory-reservation 32m --memory-swap 1g -c 2048 --pids-limit 20 --cpus 0.5 held nosuch 2>$work/err)
code=$?
echo "update-some=$up $code $(wc -l < $work/err)"
echo "updated-cgroup=$($h exec held sh -c "cat $cg/memory.max $cg/memory.low $cg/cpu.weight $cg/pids.max $cg/cpu.max" | paste -sd'|')"
echo "updated-inspect=$($h inspect -f '{{.HostConfig.Memory}} {{.HostConfig.MemoryReservation}} {{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}' held)"
echo "update-vm-memory=$($h update -m 1g held 2>$work/err; echo "$? $(wc -l < $work/err)")"
echo "update-vm-memory-line=$(sed 's/.*: //' $work/err)"
echo "update-vm-cpus=$($h container update --cpus 2 held 2>$work/err; echo "$? $(wc -l < $work/err)")"
echo "refused-unchanged=$($h inspect -f '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}' held)"
echo "unlimited=$($h update --pids-limit -1 --cpus 1 held >/dev/null && $h exec held sh -c "cat $cg/pids.max $cg/cpu.max" | paste -sd'|')"
$h rm -f held >/dev/null
$h run -d --name pinned -h myhost --domainname example.com --oom-score-adj 300 --cpu-quota 50000 \
    --cpuset-cpus 0 --storage-opt size=32m --rootfs $R -- \
    sh -c 'echo $(hostname) $(cat /proc/sys/kernel/domainname) $(cat /proc/self/oom_score_adj) $(nproc); exec sleep 100000' >/dev/null
wait_for '[ -n "$($h logs pinned)" ]'
echo "pinned=$($h logs pinned) $($h exec pinned sh -c 'echo $(cat /proc/self/oom_score_adj) $(cat /sys/fs/cgroup/cpu.max)')"
id=$($h inspect -f '{{.Id}}' pinned | cut -c1-12)
echo "pinned-vmm=$($h machine exec sh -c "for p in \$(pgrep -f '[_]_vmm .*$id'); do grep Cpus_allowed_list /proc/\$p/status; done" | cut -f2 | sort | uniq -c | awk '{print ($1 > 0), $2}')"
echo "small-layer=$($h exec pinned sh -c 'dd if=/dev/zero of=/big bs=1M count=64 2>&1 | grep -o "No space left on device"')"
echo "pinned-inspect=$($h inspect -f '{{.Config.Hostname}} {{.Config.Domainname}} {{.HostConfig.CpusetCpus}} {{.HostConfig.NanoCpus}} {{.HostConfig.OomScoreAdj}} {{.HostConfig.StorageOpt.size}}' pinned)"
$h rm -f pinned >/dev/null
echo "attach-stderr=$($h run --rm -a STDERR --rootfs $R -- sh -c 'echo out; echo err >&2' 2>&1)"
$h run -d --name flip --rootfs $R -- sh -c 'until [ -e /dev/shm/stop ]; do sleep 0.2; done' >/dev/null
$h container update --restart always flip >/dev/null
$h exec flip touch /dev/shm/stop
wait_for '[ "$($h inspect -f "{{.RestartCount}} {{.State.Status}}" flip)" = "1 running" ]'
echo "restarted=$($h inspect -f '{{.RestartCount}} {{.State.Status}} {{.HostConfig.RestartPolicy.Name}}' flip)"
$h update --restart no flip >/dev/null
$h exec flip touch /dev/shm/stop
wait_for '[ "$($h inspect -f "{{.State.Status}}" flip)" = exited ]'
echo "not-restarted=$($h inspect -f '{{.RestartCount}} {{.State.Status}}' flip)"
$h rm flip >/dev/null
$h create --name cold -m 128m --rootfs $R -- sh -c "cat $cg/memory.max; nproc" >/dev/null
echo "update-stopped=$($h update -m 384m --cpus 2 cold)"
$h start cold >/dev/null
wait_for '[ "$($h inspect -f "{{.State.Status}}" cold)" = exited ]'
echo "cold=$($h logs cold | paste -sd'|')"
$h rm cold >/dev/null
$h create --rm --name gone --rootfs $R -- true >/dev/null
echo "update-rm-restart=$($h update --restart always gone 2>$work/err; echo "$? $(wc -l < $work/err)")"
echo "update-nothing=$($h update gone 2>$work/err; echo "$? $(wc -l < $work/err)")"
$h rm gone >/dev/null

bad() { $h run --rm "$@" --rootfs $R -- true 2>$work/err; echo "$? $(wc -l < $work/err)"; }
echo "bad-ulimit=$(bad --ulimit nofile=lots)"
echo "bad-ulimit-order=$(bad --ulimit nofile=10:5)"
echo "bad-cap=$(bad --cap-add NOPE)"
echo "bad-sysctl=$(bad --sysctl nonsense)"
echo "bad-sysctl-key=$(bad --sysctl no.such.key=1)"
echo "bad-shares=$(bad --cpu-shares 1)"
echo "bad-device=$(bad --device /dev/sda)"
echo "bad-gpus=$(bad --gpus all)"
echo "bad-cpuset=$(bad --cpuset-cpus 1-3)"
echo "bad-cpuset-line=$(sed 's/.*: //' $work/err)"
echo "bad-cpu-quota=$(bad --cpus 1 --cpu-quota 50000)"
echo "bad-storage-opt=$(bad --storage-opt size=1m)"
echo "bad-domainname=$(bad --domainname 'a b')"
echo "bad-attach=$(bad -a stdlog)"
echo "bad-group=$(bad --group-add nosuch)"
echo "bad-seccomp=$(bad --security-opt seccomp=/etc/profile.json)"
echo "bad-ipc=$(bad --ipc host)"
echo "bad-platform=$(bad --platform linux/arm64)"
echo "bad-log-driver=$(bad --log-driver syslog)"
echo "bad-expose=$(bad --expose 80/http)"
echo "bad-swap=$(bad -m 256m --memory-swap 128m)"
echo "bad-volume=$(bad -v ./rel:/x)"
echo "bad-target=$(bad -v /tmp:relative)"
echo "bad-volume-slash=$(bad -v a/b:/x)"
echo "bad-volume-option=$(bad -v /tmp:/x:rx)"
echo "bad-mount=$(bad --mount type=bind,source=/no/such/dir,target=/x)"
echo "bad-mount-key=$(bad --mount type=bind,src=/tmp,dst=/x,colour=blue)"
echo "bad-volumes-from=$(bad --volumes-from nosuch)"
echo "bad-volume-name=$($h volume create 'bad name' 2>$work/err; echo "$? $(wc -l < $work/err)")"
echo "bad-volume-name-slash=$($h volume create a/b 2>$work/err; echo "$? $(wc -l < $work/err)")"
echo "no-volume=$($h volume rm nosuch 2>$work/err; echo "$? $(wc -l < $work/err)")"
echo "left=$($h ps -aq | wc -l) $($h volume ls -q | wc -l) $(ls /no/such/dir 2>/dev/null | wc -l)"
"#,
    );
    let fact = |key| facts(&output, key);

    // The container's own cgroup (a cgroup namespace), its limits as set:
    // -m as the guest's memory and memory.max, shares as a cgroup v2
    // weight (1024: 100), a fractional --cpus as a quota.
    assert_eq!(
        fact("cgroup"),
        ["0::/|268435456|67108864|50|50|50000 100000"],
        "{output}"
    );
    // A fork bomb stops at the limit (the shell reads, without forking,
    // the count once the forking subshell gave up, and the refusals the
    // cgroup counted).
    let pids = fact("pids").concat();
    let (current, refused) = pids.split_once(" max ").unwrap_or_default();
    assert!(
        current.parse::<u32>().is_ok_and(|n| (5..=10).contains(&n)),
        "{output}"
    );
    assert!(refused.parse::<u32>().is_ok_and(|n| n > 0), "{output}");
    // The kernel's OOM killer in the container's cgroup: 137, and said so.
    assert_eq!(fact("oom"), ["137 true 137"], "{output}");
    assert_eq!(fact("ulimit"), ["100 200 unlimited"], "{output}");
    assert_eq!(fact("shm"), ["16384"], "{output}");
    // Docker's default set, all of them, and only CHOWN.
    assert_eq!(fact("caps-default"), ["00000000a80425fb"], "{output}");
    assert_eq!(fact("caps-privileged"), ["000001ffffffffff"], "{output}");
    assert_eq!(fact("caps-only-chown"), ["0000000000000001"], "{output}");
    assert_eq!(fact("cap-drop"), ["Operation not permitted"], "{output}");
    assert_eq!(fact("cap-add"), ["1280"], "{output}");
    assert_eq!(
        fact("net-admin-default"),
        ["Operation not permitted"],
        "{output}"
    );
    // exec gets the container's capabilities, limits, kernel and cgroup;
    // another user none of the capabilities.
    assert_eq!(
        fact("exec-held"),
        ["0000000000000000 64 1234 0::/"],
        "{output}"
    );
    assert_eq!(fact("exec-user"), ["0000000000000000"], "{output}");
    // Every capability for one exec, though the container dropped them all.
    assert_eq!(fact("exec-privileged"), ["000001ffffffffff"], "{output}");
    // --group-add by name (the container's /etc/group) and id, and
    // no-new-privileges, for the container's process and exec's (another
    // user's too); none of it unless asked, and the confinement the guest
    // has no use for accepted.
    assert_eq!(fact("hardened"), ["4321 65534 1"], "{output}");
    assert_eq!(fact("plain"), ["0"], "{output}");
    assert_eq!(fact("exec-hardened"), ["4321 1"], "{output}");
    // The resolver's search domains and options replace the host's.
    assert_eq!(
        fact("resolver"),
        ["search corp.example|options ndots:3"],
        "{output}"
    );
    // The none log driver keeps nothing for `logs`, which says so.
    assert_eq!(fact("no-log"), ["1 1"], "{output}");
    assert_eq!(fact("cidfile"), ["same"], "{output}");
    assert_eq!(
        fact("inspect"),
        ["none [4321] [no-new-privileges] [corp.example] 2"],
        "{output}"
    );
    assert_eq!(fact("cidfile-taken"), ["125 1"], "{output}");

    // `update` of a running container: each name given that was updated
    // printed, the unknown one reported on one line (exit 1); its limits
    // changed in its cgroup inside the VM (2048 shares: weight 200, half
    // a CPU: a quota) and in its record.
    // A host name (Docker's -h) and NIS domain name in the container's UTS
    // namespace, an OOM bias for its process and exec's, --cpu-quota as a
    // cgroup quota, the VMM pinned to --cpuset-cpus with a vCPU per CPU,
    // and a writable layer of --storage-opt size that fills up.
    assert_eq!(
        fact("pinned"),
        ["myhost example.com 300 1 300 50000 100000"],
        "{output}"
    );
    // The VMM's processes (the helper and the jailed VM it forks) are on
    // the CPU named. (The machine has one CPU, as every process there is:
    // that the pinning reaches the VMM's threads is for the unit test of
    // `CpuList::pin_on_exec` on a host with two.)
    assert_eq!(fact("pinned-vmm"), ["1 0"], "{output}");
    assert_eq!(fact("small-layer"), ["No space left on device"], "{output}");
    assert_eq!(
        fact("pinned-inspect"),
        ["myhost example.com 0 500000000 300 33554432"],
        "{output}"
    );
    // -a: only the streams named reach this terminal.
    assert_eq!(fact("attach-stderr"), ["err"], "{output}");
    assert_eq!(fact("update-some"), ["held 1 1"], "{output}");
    assert_eq!(
        fact("updated-cgroup"),
        ["268435456|33554432|200|20|50000 100000"],
        "{output}"
    );
    assert_eq!(
        fact("updated-inspect"),
        ["268435456 33554432 2048 20 500000000"],
        "{output}"
    );
    // What its VM booted with bounds it while it runs: refused with one
    // line, nothing changed.
    assert_eq!(fact("update-vm-memory"), ["1 1"], "{output}");
    assert_eq!(
        fact("update-vm-memory-line"),
        ["--memory 1024m is above its VM's 512m, fixed while it runs; stop it, update it, then start it"],
        "{output}"
    );
    assert_eq!(fact("update-vm-cpus"), ["1 1"], "{output}");
    assert_eq!(
        fact("refused-unchanged"),
        ["268435456 500000000"],
        "{output}"
    );
    assert_eq!(fact("unlimited"), ["max|max 100000"], "{output}");
    // A restart policy set on a running container holds when its process
    // ends, and so does taking it back.
    assert_eq!(fact("restarted"), ["1 running always"], "{output}");
    assert_eq!(fact("not-restarted"), ["1 exited"], "{output}");
    // A stopped container boots with its new memory and vCPUs.
    assert_eq!(fact("update-stopped"), ["cold"], "{output}");
    assert_eq!(fact("cold"), ["402653184|2"], "{output}");
    // A --rm container takes no restart policy; an update of nothing is
    // refused.
    assert_eq!(fact("update-rm-restart"), ["1 1"], "{output}");
    assert_eq!(fact("update-nothing"), ["1 1"], "{output}");

    // Bad flags: one line, Docker's 125, nothing left behind.
    for key in [
        "bad-ulimit",
        "bad-ulimit-order",
        "bad-cap",
        "bad-sysctl",
        "bad-sysctl-key",
        "bad-shares",
        "bad-device",
        "bad-gpus",
        "bad-cpuset",
        "bad-cpu-quota",
        "bad-storage-opt",
        "bad-domainname",
        "bad-attach",
        "bad-group",
        "bad-seccomp",
        "bad-ipc",
        "bad-platform",
        "bad-log-driver",
        "bad-expose",
        "bad-swap",
        "bad-volume",
        "bad-target",
        "bad-volume-slash",
        "bad-volume-option",
        "bad-mount",
        "bad-mount-key",
        "bad-volumes-from",
        "bad-volume-name",
        "bad-volume-name-slash",
    ] {
        assert_eq!(fact(key), ["125 1"], "{key}: {output}");
    }
    // The machine's CPUs, from where the VMs run, named.
    assert_eq!(
        fact("bad-cpuset-line"),
        ["requested CPUs are not available; this host has 0"],
        "{output}"
    );
    assert_eq!(fact("no-volume"), ["1 1"], "{output}");
    assert_eq!(fact("left"), ["0 0 0"], "{output}");
    assert_clean(&hull);
}
