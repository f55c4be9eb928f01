//! Detached containers (`run -d`, `ps`, `logs`, `attach`, `cp`, `stop`,
//! `rm`, `wait`, ...) end to end, in real VMs. Each test runs a shell script
//! of hull commands in one KVM test host session, where /dev/kvm is real on
//! any host; the script prints `key=value` facts that the test then checks.

use hull_e2e::script::{facts, in_test_host};

/// The container's hostname the script printed: its short ID.
fn hostname_of(output: &str) -> String {
    facts(output, "hostname")
        .first()
        .expect("a hostname fact")
        .to_string()
}

/// A size as Docker prints one (`648B`, `4.19MB`), in bytes.
fn decimal_bytes(size: &str) -> u64 {
    let split = size
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or_else(|| panic!("no unit in {size:?}"));
    let (number, unit) = size.split_at(split);
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => panic!("unknown unit in {size:?}"),
    };
    let number: f64 = number.parse().unwrap_or_else(|_| panic!("{size:?}"));
    (number * scale) as u64
}

#[test]
fn a_detached_container_runs_logs_stops_and_is_removed() {
    let output = in_test_host(
        r#"
since=$(date +%s.%N)
followed=$(mktemp)
$h events --filter event=die --filter type=container --format '{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}' > $followed & follower=$!
id=$($h run -d --name web --rootfs $R -- sh -c 'echo started; echo oops >&2; trap "echo stopping; exit 7" TERM; while :; do sleep 0.2; done')
echo "run=$? ${#id}"
echo "hostname=$(echo $id | cut -c1-12)"
$h ps -q | grep -qx "$(echo $id | cut -c1-12)" && echo "ps=listed"
$h ps | grep -q "Up .* web$" && echo "ps=up"
wait_for '$h logs web 2>/dev/null | grep -q started'; echo "logs=started"
echo "stderr=$($h logs web 2>&1 >/dev/null)"
echo "exec=$($h exec web sh -c '[ -d /proc/$$ ] && echo $(hostname) joined')"
echo "exec-code=$($h exec web sh -c 'exit 5'; echo $?)"
echo "exec-stdin=$(echo hello | $h exec -i -u 1000:100 -w /tmp -e X=1 web sh -c 'read line; echo "$line $X $(id -u):$(id -g) $(pwd)"')"
$h exec web nosuch 2>/dev/null; echo "exec-missing=$?"
echo "cgroup=$($h exec web cat /proc/self/cgroup)"
echo "top-header="$($h top web | head -n 1)
$h top web | grep -q ' sh -c echo started' && echo "top=listed"
echo "top-aux="$($h top web aux | head -n 1)
echo "top-o="$($h top web -eo pid,user,comm,vsz | awk '$3 == "sh" {print $2, ($4 > 0)}' | sort -u)
$h top web -o pgid 2>/dev/null; echo "top-bad=$?"
$h exec web sh -c 'dd if=/dev/zero of=/tmp/blk bs=1M count=4 conv=fsync 2>/dev/null; ping -c 1 -W 1 $(ip route | sed -n "s/^default via \([0-9.]*\).*/\1/p") >/dev/null 2>&1; true'
stats=$($h stats --no-stream --format json web)
echo "stats-io=$(echo "$stats" | grep -o '"BlockIO":"[^"]*"' | cut -d'"' -f4)"
echo "stats-io=$(echo "$stats" | grep -o '"NetIO":"[^"]*"' | cut -d'"' -f4)"
echo "stats=$(echo "$stats" | grep -o '"Name":"web"') $(echo "$stats" | grep -c '"MemUsage":"[0-9.]*MiB / [0-9.]*MiB"')"
echo "stats-pids=$(echo "$stats" | grep -o '"PIDs":"[0-9]*"' | grep -o '[0-9][0-9]*')"
$pty --size 20x70 expect='# ' send='stty size; tty\r' expect='20 70\r\n/dev/pts/' send='exit 4\r' -- $h exec -it web sh | sed -n 's/^exit=/exec-tty=/p'
t=$($h run -d -t --rootfs $R -- sh -c 'stty size; tty')
timeout 180 $h wait $t >/dev/null
short=$(echo $t | cut -c1-12)
echo "stats-all=$($h stats --no-stream -a --format '{{.ID}} {{.MemUsage}} {{.PIDs}}' | grep "^$short " | sed "s/^$short/exited/")"
echo "stats-running=$($h stats --no-stream --format '{{.Name}}' | paste -sd' ')"
echo "stats-stopped=$($h stats --no-stream --format '{{.Container}} {{.CPUPerc}}' $short | sed "s/^$short/exited/")"
streamed=$(mktemp)
$h stats --format '{{.Name}}' > $streamed & streamer=$!
wait_for "grep -q '^web$' $streamed"
echo "tty-logs="$($h logs $t | tr -d '\r')
$h rm $t >/dev/null
$h run -d --name web --rootfs $R -- true 2>/dev/null; echo "same-name=$?"
$h rm web 2>/dev/null; echo "rm-running=$?"
$h stop -t 60 web >/dev/null; echo "stop=$?"
echo "wait=$(timeout 180 $h wait web)"
sleep 2; kill -0 $streamer && echo "stats-stream=alive $(grep -c '^web$' $streamed)"
kill $streamer
echo "ps-running=$($h ps -q | wc -l)"
$h ps -a | grep -q "Exited (7) .* web$" && echo "ps-a=exited"
echo "tail=$($h logs --tail 1 web 2>/dev/null)"
echo "details=[$($h logs --details --tail 1 web 2>/dev/null)]"
$h rm web >/dev/null; echo "rm=$?"
echo "left=$($h ps -aq | wc -l) $(ls $HULL_ROOT/run | wc -l) $(ls $HULL_ROOT/containers | wc -l)"
until=$(date +%s.%N)
echo "events=$($h events --since $since --until $until --filter container=web --format '{{.Action}}' | grep -v '^exec_' | paste -sd' ')"
echo "events-exec=$($h events --since $since --until $until --filter event=exec_die --format '{{.Actor.Attributes.exitCode}}' | sort -u | paste -sd' ')"
$h events --since $since --until $until --format json | grep -q '"status":"start","id":"'$id'","from":"' && echo "events-json=docker"
sleep 1; kill $follower
grep -qx "web 7" $followed && echo "events-followed=web 7"
"#,
    );
    assert_eq!(facts(&output, "run"), ["0 64"], "{output}");
    assert_eq!(facts(&output, "ps"), ["listed", "up"], "{output}");
    assert_eq!(facts(&output, "logs"), ["started"], "{output}");
    assert_eq!(facts(&output, "stderr"), ["oops"], "{output}");
    // Exec'd processes share the container's namespaces (its hostname; its
    // pid namespace, whose /proc shows the process's own pid) and take
    // stdin, -u, -w and -e; their exit codes pass through.
    assert_eq!(
        facts(&output, "exec"),
        [format!("{} joined", hostname_of(&output))],
        "{output}"
    );
    assert_eq!(facts(&output, "exec-code"), ["5"], "{output}");
    assert_eq!(
        facts(&output, "exec-stdin"),
        ["hello 1 1000:100 /tmp"],
        "{output}"
    );
    assert_eq!(facts(&output, "exec-missing"), ["127"], "{output}");
    // Every process of the container is in its cgroup, which top and stats
    // read: its init, its shell and its sleep at least.
    assert_eq!(facts(&output, "cgroup"), ["0::/"], "{output}");
    assert_eq!(
        facts(&output, "top-header"),
        ["UID PID PPID C STIME TTY TIME CMD"],
        "{output}"
    );
    // `ps` options as Docker passes them to ps, laid out as ps would.
    assert_eq!(
        facts(&output, "top-aux"),
        ["USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND"],
        "{output}"
    );
    assert_eq!(facts(&output, "top-o"), ["root 1"], "{output}");
    assert_eq!(facts(&output, "top-bad"), ["1"], "{output}");
    // The shell forks for each sleep: a child that has not exec'd yet
    // shows the same command line, so it may be listed twice.
    assert_eq!(facts(&output, "top"), ["listed"], "{output}");
    assert_eq!(facts(&output, "stats"), [r#""Name":"web" 1"#], "{output}");
    let pids: u32 = facts(&output, "stats-pids")[0].parse().unwrap();
    assert!(pids >= 3, "{output}");
    // Traffic as Docker prints it, `IN / OUT`: the 4 MiB fsynced to the
    // container's disk, and the ping's ARP or ICMP out of its network.
    let io: Vec<(u64, u64)> = facts(&output, "stats-io")
        .iter()
        .map(|pair| {
            let (read, written) = pair.split_once(" / ").expect("IN / OUT");
            (decimal_bytes(read), decimal_bytes(written))
        })
        .collect();
    let [(_, block_written), (_, net_sent)] = io[..] else {
        panic!("BlockIO and NetIO: {output}");
    };
    assert!(block_written >= 4_000_000, "{output}");
    assert!(net_sent > 0, "{output}");
    // Docker's `stats`: running containers unless --all, which shows
    // stopped ones using nothing, as a stopped container named does; a
    // stream outlives a container stopping under it.
    assert_eq!(
        facts(&output, "stats-all"),
        ["exited 0B / 0B 0"],
        "{output}"
    );
    assert_eq!(facts(&output, "stats-running"), ["web"], "{output}");
    assert_eq!(
        facts(&output, "stats-stopped"),
        ["exited 0.00%"],
        "{output}"
    );
    let streamed = facts(&output, "stats-stream");
    let (alive, web_rows) = streamed
        .first()
        .and_then(|fact| fact.split_once(' '))
        .unwrap_or_else(|| panic!("stats-stream: {output}"));
    assert_eq!(alive, "alive", "{output}");
    assert!(web_rows.parse::<u32>().unwrap() >= 1, "{output}");
    // A terminal for exec -it, sized like the caller's; and for run -d -t,
    // whose log holds what the terminal showed.
    assert_eq!(facts(&output, "exec-tty"), ["4"], "{output}");
    assert_eq!(facts(&output, "tty-logs"), ["24 80 /dev/pts/0"], "{output}");
    assert_eq!(facts(&output, "same-name"), ["125"], "{output}");
    assert_eq!(facts(&output, "rm-running"), ["1"], "{output}");
    assert_eq!(facts(&output, "stop"), ["0"], "{output}");
    assert_eq!(facts(&output, "wait"), ["7"], "{output}");
    assert_eq!(facts(&output, "ps-running"), ["0"], "{output}");
    assert_eq!(facts(&output, "ps-a"), ["exited"], "{output}");
    assert_eq!(facts(&output, "tail"), ["stopping"], "{output}");
    // `--details`: no attributes, then a space, as Docker prints it.
    assert_eq!(facts(&output, "details"), ["[ stopping]"], "{output}");
    assert_eq!(facts(&output, "rm"), ["0"], "{output}");
    assert_eq!(facts(&output, "left"), ["0 0 0"], "{output}");
    // Its life in the event log, in Docker's order; as it happened for a
    // follower too.
    assert_eq!(
        facts(&output, "events"),
        ["create start kill die stop destroy"],
        "{output}"
    );
    let exec_codes = facts(&output, "events-exec");
    assert!(exec_codes[0].split(' ').any(|code| code == "5"), "{output}");
    assert_eq!(facts(&output, "events-json"), ["docker"], "{output}");
    assert_eq!(facts(&output, "events-followed"), ["web 7"], "{output}");
}

#[test]
fn attach_joins_a_detached_process_and_detach_keys_leave_it_running() {
    let output = in_test_host(
        r#"
$h run -dit --name shell --detach-keys ctrl-x,x --rootfs $R -- sh >/dev/null; echo "run-dit=$?"
$pty --size 25x90 send='\r' expect='# ' send='echo $((6*7)); stty size\r' expect='42\r\n25 90' send='\x18x' -- $h attach shell 2>&1 | sed -n -e 's/^exit=/detach=/p' -e 's/^termios=/detach-termios=/p' -e 's/.*hull: \(detached from [a-z]*\).*/detach-said=\1/p'
$h ps | grep -q "Up .* shell$" && echo "after-detach=up"
$pty send='\r' expect='# ' send='exit 6\r' -- $h attach --detach-keys ctrl-a,b shell | sed -n 's/^exit=/attach-exit=/p'
echo "wait=$(timeout 180 $h wait shell)"
$pty expect='# ' send='echo $((6*7))\r' expect='42' send='\x10\x11' -- $h run -it --rm --name fg --rootfs $R sh 2>&1 | sed -n -e 's/^exit=/fg-detach=/p' -e 's/^termios=/fg-termios=/p' -e 's/.*hull: \(detached from [a-z]*\).*/fg-said=\1/p'
$h ps | grep -q "Up .* fg$" && echo "fg-after=up"
$pty send='\r' expect='# ' send='exit 3\r' -- $h attach fg | sed -n 's/^exit=/fg-attach-exit=/p'
wait_for '! $h ps -a | grep -q " fg$"' && echo "fg-removed=yes"
$pty expect='# ' send='exit 2\r' -- $h run -it --name fg2 --rootfs $R sh | sed -n 's/^exit=/fg2-exit=/p'
echo "fg2=$($h ps -a --format '{{.Status}}' --filter name=fg2)"
$pty -- $h run -it --rm --rootfs $R nosuch 2>&1 | sed -n -e 's/^exit=/fg-missing=/p' -e 's/.*hull: .*nosuch.*/fg-missing-said=named/p'
late=$($h run -d --rootfs $R -- sh -c 'sleep 5; echo late; echo err >&2; exit 4')
$h attach $late >out 2>err; echo "output=$? $(cat out) $(cat err)"
$h run -di --name reader --rootfs $R -- sh -c 'read line; echo "got $line"' >/dev/null
printf 'hello\n' | $h attach reader >out; echo "input=$? $(cat out)"
$h attach $late 2>&1 >/dev/null | grep -q "is not running" && echo "exited=refused"
$h run -d -m 128m --name oom --rootfs $R -- sh -c 'for i in 1 2 3; do dd if=/dev/zero of=/dev/null bs=80M count=20 & done; wait' >/dev/null
timeout 180 $h wait oom >/dev/null
echo "oom=$($h inspect oom | grep -o '"OOMKilled": [a-z]*') $($h inspect reader | grep -o '"OOMKilled": [a-z]*')"
"#,
    );
    // A terminal session joined late: it takes our size and keys; the
    // container's detach keys end it and leave the shell running, whose
    // exit later ends the next attach with the shell's code.
    assert_eq!(facts(&output, "run-dit"), ["0"], "{output}");
    assert_eq!(facts(&output, "detach"), ["0"], "{output}");
    assert_eq!(facts(&output, "detach-termios"), ["restored"], "{output}");
    assert_eq!(
        facts(&output, "detach-said"),
        ["detached from shell"],
        "{output}"
    );
    assert_eq!(facts(&output, "after-detach"), ["up"], "{output}");
    assert_eq!(facts(&output, "attach-exit"), ["6"], "{output}");
    // A foreground `run -it` sees its shell from the start, and the detach
    // keys (Docker's Ctrl-P Ctrl-Q) leave it running; its exit ends the
    // next attach, and --rm removes it then. Without a detach, its code is
    // run's, and the container is kept, exited.
    assert_eq!(facts(&output, "fg-detach"), ["0"], "{output}");
    assert_eq!(facts(&output, "fg-termios"), ["restored"], "{output}");
    assert_eq!(facts(&output, "fg-said"), ["detached from fg"], "{output}");
    assert_eq!(facts(&output, "fg-after"), ["up"], "{output}");
    assert_eq!(facts(&output, "fg-attach-exit"), ["3"], "{output}");
    assert_eq!(facts(&output, "fg-removed"), ["yes"], "{output}");
    assert_eq!(facts(&output, "fg2-exit"), ["2"], "{output}");
    assert_eq!(facts(&output, "fg-missing"), ["127"], "{output}");
    assert_eq!(facts(&output, "fg-missing-said"), ["named"], "{output}");
    assert!(
        facts(&output, "fg2").concat().starts_with("Exited (2)"),
        "{output}"
    );
    assert_eq!(facts(&output, "wait"), ["6"], "{output}");
    // Without a terminal: stdout and stderr apart, stdin when run with -i.
    assert_eq!(facts(&output, "output"), ["4 late err"], "{output}");
    assert_eq!(facts(&output, "input"), ["0 got hello"], "{output}");
    assert_eq!(facts(&output, "exited"), ["refused"], "{output}");
    // The kernel's OOM kill of one of its processes shows in inspect.
    assert_eq!(
        facts(&output, "oom"),
        [r#""OOMKilled": true "OOMKilled": false"#],
        "{output}"
    );
}

#[test]
fn cp_copies_files_directories_and_tar_streams_both_ways() {
    let output = in_test_host(
        r#"
cd $(mktemp -d)
$h run -d --name box --rootfs $R -- sh -c 'mkdir -p /data/sub; echo inside > /data/sub/file; cp /bin/busybox /suid; chown 123:45 /suid; chmod 4755 /suid; ln -s /data/sub/file /data/link; ln -s /data/sub /abs; touch /ready; trap "exit 0" TERM; while :; do sleep 0.2; done' >/dev/null
wait_for '$h exec box test -f /ready'
mkdir -p host/src/deep; echo hosted > host/src/deep/f; chmod 754 host/src/deep/f
$h cp box:/data host/; echo "out-dir=$? $(cat host/data/sub/file) $(readlink host/data/link)"
$h cp box:/data/sub/file host/renamed; echo "out-file=$? $(cat host/renamed)"
$h cp box:/data/. host/contents; echo "out-contents=$? $(ls host/contents | tr '\n' ' ')"
$h cp box:/abs/file host/via-link; echo "out-via-link=$? $(cat host/via-link)"
echo "out-tar=$($h cp box:/data - | tar -tf - | grep -c '^data/sub/file$')"
$h cp -L box:/data/link host/followed; $h cp -L box:/abs host/followed-dir; ln -s src/deep host/deep-link
$h cp --follow-link host/deep-link box:/data/; echo "follow=$? $(cat host/followed) $(cat host/followed-dir/file) $($h exec box cat /data/deep-link/f)"
$h cp host/src box:/data/; echo "in-dir=$? $($h exec box cat /data/src/deep/f) $($h exec box stat -c %a /data/src/deep/f)"
$h cp host/src/deep/f box:/renamed; echo "in-file=$? $($h exec box cat /renamed)"
tar -cf - -C host/src . | $h cp - box:/from-tar; echo "in-tar=$? $($h exec box cat /from-tar/deep/f)"
said=$($h cp box:/nope host/x 2>&1); echo "missing=$? $said"
said=$($h cp host/src box:/no/such/x 2>&1); echo "no-parent=$? $said"
said=$($h cp host/src host/other 2>&1); echo "no-container=$? $said"
ls -a host | grep -c hull-cp | sed 's/^/staging=/'
$h cp box:/suid host/plain; $h cp -a box:/suid host/archived
echo "set-id=$(stat -c '%a %u:%g' host/plain) $(stat -c '%a %u:%g' host/archived)"
echo "private=$(stat -c %a $HULL_ROOT $HULL_ROOT/containers/*/scratch.img $HULL_ROOT/containers/*/json.log | tr '\n' ' ')"
$h stop -t 1 box >/dev/null
$h cp box:/data host/late; echo "stopped=$? $(cat host/late/sub/file) $(ls $HULL_ROOT/run | wc -l)"
"#,
    );
    // Docker's placement: into an existing directory under the source's
    // name, else as the destination; `DIR/.` is the contents; links are
    // copied as links, and container paths resolve in the container's root.
    assert_eq!(
        facts(&output, "out-dir"),
        ["0 inside /data/sub/file"],
        "{output}"
    );
    assert_eq!(facts(&output, "out-file"), ["0 inside"], "{output}");
    assert_eq!(facts(&output, "out-contents"), ["0 link sub "], "{output}");
    assert_eq!(facts(&output, "out-via-link"), ["0 inside"], "{output}");
    assert_eq!(facts(&output, "out-tar"), ["1"], "{output}");
    // `-L`: a link named as the source is copied as what it points to,
    // under its own name, either way.
    assert_eq!(
        facts(&output, "follow"),
        ["0 inside inside hosted"],
        "{output}"
    );
    assert_eq!(facts(&output, "in-dir"), ["0 hosted 754"], "{output}");
    assert_eq!(facts(&output, "in-file"), ["0 hosted"], "{output}");
    assert_eq!(facts(&output, "in-tar"), ["0 hosted"], "{output}");
    assert_eq!(
        facts(&output, "missing"),
        ["1 hull: copying /nope out: cannot read /nope: No such file or directory (os error 2)"],
        "{output}"
    );
    assert_eq!(
        facts(&output, "no-parent"),
        ["1 hull: copying into /no/such/x: no such directory: /no/such"],
        "{output}"
    );
    assert_eq!(
        facts(&output, "no-container"),
        ["1 hull: one of the paths must be in a container, written CONTAINER:PATH"],
        "{output}"
    );
    assert_eq!(facts(&output, "staging"), ["0"], "{output}");
    // The host keeps no set-id bit nor owner a container chose, unless
    // asked (`-a`, as Docker's).
    assert_eq!(
        facts(&output, "set-id"),
        ["755 0:0 4755 123:45"],
        "{output}"
    );
    // Other local users reach nothing under the state root.
    assert_eq!(facts(&output, "private"), ["710 600 640 "], "{output}");
    // Stopped, its files are still copied out (by a VM of their own,
    // gone after).
    assert_eq!(facts(&output, "stopped"), ["0 inside 0"], "{output}");
}

#[test]
fn killed_vms_show_as_exited_and_rm_f_cleans_everything() {
    let output = in_test_host(
        r#"
quick=$($h run -d --rootfs $R -- sh -c 'exit 3')
echo "quick=$(timeout 180 $h wait $quick)"
long=$($h run -d --name long --rootfs $R -- sleep 600)
victim=$($h run -d --name victim --rootfs $R -- sleep 600)
pid=$(grep -o '"pid": [0-9]*' $HULL_ROOT/containers/$victim/state.json | grep -o '[0-9]*$')
kill -9 $pid
wait_for '[ ! -d /proc/$pid ]'
$h ps -a | grep -q "Exited (137) .* victim$" && echo "victim=exited"
$h start victim >/dev/null; echo "restarted=$?"
$h ps | grep -q "Up .* victim$" && echo "victim=up"
echo "running=$($h ps -q | wc -l)"
$h run --rm --name fg --rootfs $R -- sleep 600 </dev/null >/dev/null 2>&1 &
fg=$!
wait_for '$h ps | grep -q " fg$"'
fgid=$($h ps -q --filter name=fg)
kill -9 $fg
wait_for '[ -z "$(grep -l -a -e "__vm[m] $HULL_ROOT/run/$fgid/" /proc/[0-9]*/cmdline 2>/dev/null)" ]'
echo "fg-swept=$($h ps -a --filter name=fg -q | wc -l) $(ls $HULL_ROOT/containers | wc -l)"
$h rm -f $quick long $(echo $victim | cut -c1-8) >/dev/null; echo "rm=$?"
echo "left=$($h ps -aq | wc -l) $(ls $HULL_ROOT/run | wc -l) $(ls $HULL_ROOT/containers | wc -l)"
echo "procs=$(grep -l -a -e '__monito[r]' -e '__vm[m]' /proc/[0-9]*/cmdline 2>/dev/null | wc -l)"
"#,
    );
    assert_eq!(facts(&output, "quick"), ["3"], "{output}");
    assert_eq!(facts(&output, "victim"), ["exited", "up"], "{output}");
    assert_eq!(facts(&output, "restarted"), ["0"], "{output}");
    assert_eq!(facts(&output, "running"), ["2"], "{output}");
    // A foreground `run --rm` killed with SIGKILL leaves nothing behind:
    // its VM goes with it, the next `ps` removes its record and disk.
    assert_eq!(facts(&output, "fg-swept"), ["0 3"], "{output}");
    assert_eq!(facts(&output, "rm"), ["0"], "{output}");
    assert_eq!(facts(&output, "left"), ["0 0 0"], "{output}");
    assert_eq!(facts(&output, "procs"), ["0"], "{output}");
}

#[test]
fn restart_keeps_writes_and_kill_rename_inspect_filter_logs_restart_policies_prune_work() {
    let output = in_test_host(
        r#"
$h run -d --name keep --rootfs $R -- sh -c 'cat /data 2>/dev/null || echo none; echo kept > /data; trap "exit 0" TERM; while :; do sleep 0.2; done' >/dev/null
wait_for '$h logs keep | grep -q none'
$h restart -t 60 keep >/dev/null; echo "restart=$?"
wait_for '$h logs keep | grep -q kept'; echo "second-boot=$($h logs --tail 1 keep)"
$h kill -s USR1 keep >/dev/null; echo "kill=$(timeout 180 $h wait keep)"
$h rename keep kept2; echo "rename=$?"
$h inspect kept2 | grep -q '"Name": "/kept2"' && echo "inspect=named"
$h inspect kept2 | grep -q '"ExitCode": 138' && echo "inspect=code"
echo "filter=$($h ps -a --filter status=exited --format json | grep -c '"Names":"kept2"')"
echo "filter-running=$($h ps -aq --filter status=running | wc -l)"
tar -C $R -c . | $h import - base:1 >/dev/null
ctx=$(mktemp -d); echo x > $ctx/f; printf 'FROM base:1\nCOPY f /f\n' > $ctx/Dockerfile
$h build -q -t derived:1 $ctx >/dev/null
$h create --name anc --network none -v vol1:/data base:1 true >/dev/null
$h create --name child -p 18080:80 --expose 9000 derived:1 sleep 600 >/dev/null
f() { echo "[$($h ps -a "$@" --format '{{.Names}}' | sort | paste -sd, -)]"; }
echo "f-ancestor=$(f --filter ancestor=base:1) $(f --filter ancestor=derived:1) $(f --filter ancestor=nosuch)"
echo "f-exited=$(f --filter exited=138) $(f --filter exited=0)"
echo "f-order=$(f --filter since=anc) $(f --filter before=child)"
echo "f-volume=$(f --filter volume=vol1) $(f --filter volume=/data) $(f --filter volume=/other)"
echo "f-network=$(f --filter network=none) $(f --filter network=bridge --filter name=child) $(f --filter network=bridge --filter name=anc)"
echo "f-ports-created=$(f --filter publish=18080) $(f --filter expose=9000)"
$h start child >/dev/null
echo "info-counts=$($h info --format '{{.Containers}} {{.ContainersRunning}}') $($h ps -aq | wc -l) $($h ps -q | wc -l)"
echo "server-version=$($h version --format '{{.Server.Version}}' | grep -c '^[0-9][0-9.]*$')"
echo "f-ports=$(f --filter publish=18080) $(f --filter publish=80) $(f --filter publish=18080/udp) $(f --filter expose=80) $(f --filter expose=8000-9000/tcp)"
$h rm -f child >/dev/null
$h ps --filter since=nosuch 2>/dev/null; echo "f-bad=$?"
echo "sizes=$($h inspect -s -f '{{.SizeRw}} {{.SizeRootFs}}' anc) $($h image inspect -f '{{.Size}}' base:1)"
$h network create idle >/dev/null
echo "dangling=$($h network ls --filter dangling=true --format '{{.Name}}') $($h network ls -q --filter dangling=false --filter scope=local | wc -l)"
$h network rm idle >/dev/null
echo "system-info=$($h system info | grep -c '^kvm:')"
$h ps --filter exited=x 2>/dev/null; echo "f-bad=$?"
$h run -d --rm --name gone --rootfs $R -- true >/dev/null
wait_for '[ -z "$($h ps -aq --filter name=gone)" ]'
echo "auto-removed=$($h ps -aq --filter name=gone | wc -l)"
lg=$($h run -d --log-opt max-size=2k --log-opt max-file=2 --rootfs $R -- sh -c 'i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done')
timeout 180 $h wait $lg >/dev/null
echo "log-files=$(ls $HULL_ROOT/containers/$lg | grep -c '^json\.log')"
echo "log-bytes=$(cat $HULL_ROOT/containers/$lg/json.log* | wc -c)"
echo "log-last=$($h logs $lg | tail -n 1)"
echo "log-kept=$($h logs $lg | wc -l)"
$h run -d --log-opt max-size=lots --rootfs $R -- true 2>/dev/null; echo "log-opt-bad=$?"
fl=$($h run -d --restart on-failure:2 --rootfs $R -- sh -c 'echo run; exit 3')
echo "on-failure=$(timeout 180 $h wait $fl) $($h inspect $fl | grep -o '"RestartCount": [0-9]*' | grep -o '[0-9]*$') $($h logs $fl | grep -c run)"
al=$($h run -d --restart always --rootfs $R -- sh -c 'echo up; sleep 1')
wait_for '[ "$($h logs $al | grep -c up)" -ge 2 ]'; echo "always=restarted"
$h stop -t 60 $al >/dev/null; echo "always-stop=$?"
runs=$($h logs $al | grep -c up); sleep 3
echo "always-stopped=$($h inspect $al | grep -o '"Status": "[a-z]*"' | cut -d'"' -f4) $((runs - $($h logs $al | grep -c up)))"
$h run -d --rm --restart always --rootfs $R -- true 2>/dev/null; echo "restart-rm=$?"
$h container prune -f >/dev/null; echo "prune=$($h ps -aq | wc -l) $(ls $HULL_ROOT/containers | wc -l)"
"#,
    );
    assert_eq!(facts(&output, "restart"), ["0"], "{output}");
    assert_eq!(facts(&output, "second-boot"), ["kept"], "{output}");
    assert_eq!(facts(&output, "kill"), ["138"], "{output}");
    assert_eq!(facts(&output, "rename"), ["0"], "{output}");
    assert_eq!(facts(&output, "inspect"), ["named", "code"], "{output}");
    assert_eq!(facts(&output, "filter"), ["1"], "{output}");
    assert_eq!(facts(&output, "filter-running"), ["0"], "{output}");
    // Docker's other container filters: an image and those built on it,
    // an exit code (of a container that ran), creation order, a mount's
    // volume or target, a network, a published or exposed port.
    assert_eq!(
        facts(&output, "f-ancestor"),
        ["[anc,child] [child] []"],
        "{output}"
    );
    assert_eq!(facts(&output, "f-exited"), ["[kept2] []"], "{output}");
    assert_eq!(
        facts(&output, "f-order"),
        ["[child] [anc,kept2]"],
        "{output}"
    );
    assert_eq!(facts(&output, "f-volume"), ["[anc] [anc] []"], "{output}");
    assert_eq!(
        facts(&output, "f-network"),
        ["[anc] [child] []"],
        "{output}"
    );
    // Ports, as Docker's, of running containers only: published host
    // ports, and exposed or published container ports.
    assert_eq!(facts(&output, "f-ports-created"), ["[] []"], "{output}");
    assert_eq!(
        facts(&output, "f-ports"),
        ["[child] [] [] [child] [child]"],
        "{output}"
    );
    assert_eq!(facts(&output, "f-bad"), ["1", "125"], "{output}");
    // `inspect -s`: a container never started has written nothing; its
    // root is its image's size.
    let sizes = facts(&output, "sizes");
    let sizes: Vec<&str> = sizes[0].split(' ').collect();
    assert_eq!(sizes[0], "0", "{output}");
    assert_eq!(sizes[1], sizes[2], "{output}");
    // A network no container is on is dangling; the default one never is.
    assert_eq!(facts(&output, "dangling"), ["idle 1"], "{output}");
    assert_eq!(facts(&output, "system-info"), ["1"], "{output}");
    // Docker's counts, as `ps` shows them: child running, anc created,
    // kept2 exited.
    assert_eq!(facts(&output, "info-counts"), ["3 1 3 1"], "{output}");
    assert_eq!(facts(&output, "server-version"), ["1"], "{output}");
    assert_eq!(facts(&output, "auto-removed"), ["0"], "{output}");
    // The log is capped at two files of 2 KiB, and keeps the newest lines.
    assert_eq!(facts(&output, "log-files"), ["2"], "{output}");
    let number = |key| facts(&output, key)[0].parse::<usize>().unwrap();
    assert!(number("log-bytes") <= 2 * 2048, "{output}");
    assert_eq!(facts(&output, "log-last"), ["line 299"], "{output}");
    assert!((10..300).contains(&number("log-kept")), "{output}");
    assert_eq!(facts(&output, "log-opt-bad"), ["125"], "{output}");
    // on-failure:2 ran it three times; always restarts until hull stop.
    assert_eq!(facts(&output, "on-failure"), ["3 2 3"], "{output}");
    assert_eq!(facts(&output, "always"), ["restarted"], "{output}");
    assert_eq!(facts(&output, "always-stop"), ["0"], "{output}");
    assert_eq!(facts(&output, "always-stopped"), ["exited 0"], "{output}");
    assert_eq!(facts(&output, "restart-rm"), ["125"], "{output}");
    assert_eq!(facts(&output, "prune"), ["0 0"], "{output}");
}

#[test]
fn twenty_containers_start_in_parallel_and_rm_f_leaves_nothing_behind() {
    let output = in_test_host(
        r#"
leaks() {
    echo "$(grep -l -a -e '__monito[r]' -e '__vm[m]' /proc/[0-9]*/cmdline 2>/dev/null | wc -l)" \
        "$(grep -c "$HULL_ROOT" /proc/mounts)" \
        "$(find $HULL_ROOT/containers $HULL_ROOT/run -mindepth 1 -not -name .lock 2>/dev/null | wc -l)" \
        "$(grep -c "$HULL_ROOT" /proc/net/unix)"
}
echo "before=$(leaks)"
runs=$(mktemp -d)
for i in $(seq 20); do
    ($h run -d -m 128m --rootfs $R -- sleep 600 > $runs/out.$i 2>&1; echo $? > $runs/exit.$i) &
done
wait
echo "started=$(cat $runs/out.* | grep -c '^[0-9a-f]\{64\}$')"
echo "exits=$(cat $runs/exit.* | sort | uniq -c | tr -s ' ' | paste -sd, -)"
grep -hv '^[0-9a-f]\{64\}$' $runs/out.* | sed 's/^/start-error=/'
echo "running=$($h ps -q | wc -l) $($h ps -q | sort -u | wc -l)"
$h rm -f $($h ps -aq) > /dev/null; echo "rm=$?"
echo "after=$(leaks)"
"#,
    );
    assert_eq!(facts(&output, "started"), ["20"], "{output}");
    assert_eq!(facts(&output, "running"), ["20 20"], "{output}");
    assert_eq!(facts(&output, "rm"), ["0"], "{output}");
    // Monitors and VMMs, mounts, files and unix sockets under the state root.
    assert_eq!(facts(&output, "before"), ["0 0 0 0"], "{output}");
    assert_eq!(facts(&output, "after"), ["0 0 0 0"], "{output}");
}
