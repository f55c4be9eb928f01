//! What a Docker user hits in the first hour, typed in this host's shell
//! (the VMs in the hull machine): each check is one of the bugs of the
//! Docker-parity issue, which failed before it was fixed.

use hull_e2e::script::{facts, on_this_host};
use hull_e2e::Hull;

#[test]
fn docker_users_first_hour() {
    let hull = Hull::new();
    let output = on_this_host(
        &hull,
        r#"
work=$(mktemp -d)
tar -C $R -cf $work/bb.tar . && $h import $work/bb.tar bb:1 >/dev/null

# A command that is not there fails run -d as it fails run.
$h run -d --name nocmd bb:1 /no/such >/dev/null 2>$work/err
echo "run-d-missing=$? $(grep -c 'exec /no/such' $work/err)"

# The image of a stopped container stays for it.
$h run --name keeper bb:1 true; echo "keeper=$?"
$h rmi bb:1 2>$work/err; echo "rmi=$? $(grep -c 'in use by a container' $work/err)"
echo "rmi-f=$($h rmi -f bb:1)"
$h image prune -a -f >/dev/null
echo "start-keeper=$($h start -a keeper; echo $?)"
echo "images=$($h images -q | wc -l)"

# Logs are what the process wrote, a line per entry.
lines='seq 1 50000; i=0; while [ $i -lt 2000 ]; do echo "ü✓日本語🚀"; i=$((i+1)); done; printf tail'
$h run --name lines --rootfs $R -- sh -c "$lines" >/dev/null
expected=$(sh -c "$lines" | md5sum)
echo "logs-exact=$([ "$($h logs lines | md5sum)" = "$expected" ] && echo yes)"
echo "log-entries=$(grep -c '"stream":"stdout"' $($h inspect -f '{{.LogPath}}' lines))"

# --rm containers under stop, wait and kill.
$h run -d --rm --name rm1 --rootfs $R -- sleep 600 >/dev/null
$h stop rm1 >/dev/null 2>$work/err; echo "stop-rm=$? $(wc -l < $work/err)"
$h run -d --rm --name rm2 --rootfs $R -- sh -c 'sleep 2; exit 4' >/dev/null
echo "wait-rm=$($h wait rm2)"
$h run -d --rm --name rm3 --rootfs $R -- sleep 600 >/dev/null
$h kill rm3 >/dev/null; echo "kill-rm=$?"
echo "rm-left=$($h ps -aq --filter name=rm | wc -l)"

# Several names: each acted on, each failure reported.
$h run -d --name b1 --rootfs $R -- sleep 600 >/dev/null
$h stop -t 1 nosuch b1 >$work/out 2>$work/err
echo "stop-several=$? $(cat $work/out) $(wc -l < $work/err)"
echo "b1=$($h inspect -f '{{.State.Status}}' b1)"
$h rm nosuch b1 >/dev/null 2>&1; echo "rm-several=$? $($h ps -aq --filter name=b1 | wc -l)"

# A terminal has a type, unless told otherwise.
echo "term=$($h run --rm -t --rootfs $R -- sh -c 'echo $TERM' | tr -d '\r')"
echo "term-e=$($h run --rm -t -e TERM=vt100 --rootfs $R -- sh -c 'echo $TERM' | tr -d '\r')"

# A working directory that is not there is made.
echo "workdir=$($h run --rm -w /new/dir --rootfs $R -- pwd)"

# Names and references by Docker's rules.
$h run --name 'bad name!' --rootfs $R -- true 2>/dev/null; echo "bad-name=$?"
$h rename keeper y/z 2>/dev/null; echo "bad-rename=$?"
$h tag $($h images -q | head -n 1) UPPER/x 2>$work/err
echo "tag-upper=$? $(grep -c 'repository name must be lowercase' $work/err)"

# Filters: values of one key are alternatives; names match a pattern.
$h run -d --name pub -p 127.0.0.1::80 --rootfs $R -- sleep 600 >/dev/null
echo "filter-or=$($h ps -a --filter status=exited --filter status=running --format '{{.Names}}' | sort | tr '\n' ' ')"
echo "filter-regex=$($h ps -a --filter 'name=^l.n' --format '{{.Names}}')"

# No false warning after removing a container with a published port.
$h rm -f pub >/dev/null 2>$work/err; echo "rm-published=$? $(wc -l < $work/err)"

# An exited container's code is known without the machine.
$h machine stop >/dev/null
$h wait keeper 2>$work/err >/dev/null
echo "wait-down=$(grep -c 'starting the hull machine' $work/err) $($h machine status | head -n 1)"
"#,
    );
    let fact = |key: &str| facts(&output, key).join("|");
    assert_eq!(fact("run-d-missing"), "127 1", "{output}");
    assert_eq!(fact("keeper"), "0", "{output}");
    assert_eq!(fact("rmi"), "125 1", "{output}");
    assert_eq!(fact("rmi-f"), "Untagged: bb:1", "{output}");
    assert_eq!(fact("start-keeper"), "0", "{output}");
    assert_eq!(fact("images"), "1", "{output}");
    assert_eq!(fact("logs-exact"), "yes", "{output}");
    assert_eq!(fact("log-entries"), "52001", "{output}");
    assert_eq!(fact("stop-rm"), "0 0", "{output}");
    assert_eq!(fact("wait-rm"), "4", "{output}");
    assert_eq!(fact("kill-rm"), "0", "{output}");
    assert_eq!(fact("rm-left"), "0", "{output}");
    assert_eq!(fact("stop-several"), "1 b1 1", "{output}");
    assert_eq!(fact("b1"), "exited", "{output}");
    assert_eq!(fact("rm-several"), "1 0", "{output}");
    assert_eq!(fact("term"), "xterm", "{output}");
    assert_eq!(fact("term-e"), "vt100", "{output}");
    assert_eq!(fact("workdir"), "/new/dir", "{output}");
    assert_eq!(fact("bad-name"), "125", "{output}");
    assert_eq!(fact("bad-rename"), "125", "{output}");
    assert_eq!(fact("tag-upper"), "125 1", "{output}");
    assert_eq!(fact("filter-or"), "keeper lines nocmd pub ", "{output}");
    assert_eq!(fact("filter-regex"), "lines", "{output}");
    assert_eq!(fact("rm-published"), "0 0", "{output}");
    assert_eq!(fact("wait-down"), "0 hull machine: stopped", "{output}");
}
