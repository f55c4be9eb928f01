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
# So it does with --rm, which removes the container before run -d hears of it.
$h run -d --rm --name nocmd-rm bb:1 /no/such >$work/out 2>$work/err
echo "run-d-rm-missing=$? $(grep -c 'exec /no/such' $work/err) $(wc -c <$work/out) $($h ps -aq --filter name=nocmd-rm | wc -l)"

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

# Label filters all hold; prunes take filters, and stopped containers made
# but never started.
$h create --name l1 -l tier=web -l env=ci --rootfs $R -- true >/dev/null
$h create --name l2 -l tier=web --rootfs $R -- true >/dev/null
echo "labels-and=$($h ps -a --filter label=tier=web --filter label=env=ci --format '{{.Names}}')"
$h container prune -f --filter until=24h --filter label=tier=web >/dev/null
echo "prune-until=$($h ps -aq --filter label=tier=web | wc -l)"
$h container prune -f --filter label=env=ci >$work/out
echo "prune-label=$(grep -c . $work/out) $(head -n 1 $work/out)|$(tail -n 1 $work/out | cut -d: -f1) $($h ps -a --filter label=tier=web --format '{{.Names}}')"
$h rm l2 >/dev/null

# Images by repository, reference pattern and danglingness.
$h import $work/bb.tar app:v1 >/dev/null; $h tag app:v1 app:v2; $h tag app:v1 tool:v1
echo "images-repo=$($h images --format '{{.Repository}}:{{.Tag}}' app | sort | paste -sd' ')"
echo "images-glob=$($h images --format '{{.Repository}}:{{.Tag}}' --filter 'reference=*:v1' | sort | paste -sd' ')"
echo "images-dangling=$($h images -q --filter dangling=true | wc -l) $($h images -q --no-trunc app | cut -c1-7)"
$h images --filter colour=blue 2>$work/err; echo "images-bad-filter=$? $(wc -l < $work/err)"

# Networks: the bridge driver named, labels and internal kept, filtered.
$h network create -d bridge --internal --label tier=db sealed >/dev/null; echo "net-create=$?"
echo "net-filter=$($h network ls --filter label=tier=db --filter type=custom --format '{{.Name}} {{.Internal}}')"
$h network create -d overlay other 2>$work/err; echo "net-driver=$? $(wc -l < $work/err)"
$h network rm sealed >/dev/null

# An exited container's code is known without the machine.
$h machine stop >/dev/null
$h wait keeper 2>$work/err >/dev/null
echo "wait-down=$(grep -c 'starting the hull machine' $work/err) $($h machine status | head -n 1)"
"#,
    );
    let fact = |key: &str| facts(&output, key).join("|");
    assert_eq!(fact("run-d-missing"), "127 1", "{output}");
    assert_eq!(fact("run-d-rm-missing"), "127 1 0 0", "{output}");
    assert_eq!(fact("keeper"), "0", "{output}");
    assert_eq!(fact("rmi"), "1 1", "{output}");
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
    assert_eq!(fact("tag-upper"), "1 1", "{output}");
    assert_eq!(fact("filter-or"), "keeper lines nocmd pub ", "{output}");
    assert_eq!(fact("filter-regex"), "lines", "{output}");
    assert_eq!(fact("rm-published"), "0 0", "{output}");
    // Docker matches label filters as a list: all must hold.
    assert_eq!(fact("labels-and"), "l1", "{output}");
    // Nothing made a day ago; then only the labelled one (never started).
    assert_eq!(fact("prune-until"), "2", "{output}");
    assert_eq!(
        fact("prune-label"),
        "3 Deleted Containers:|Total reclaimed space l2",
        "{output}"
    );
    assert_eq!(fact("images-repo"), "app:v1 app:v2", "{output}");
    assert_eq!(fact("images-glob"), "app:v1 tool:v1", "{output}");
    // keeper's image, untagged by rmi -f; whole IDs with --no-trunc.
    assert_eq!(fact("images-dangling"), "1 sha256:", "{output}");
    assert_eq!(fact("images-bad-filter"), "125 1", "{output}");
    assert_eq!(fact("net-create"), "0", "{output}");
    assert_eq!(fact("net-filter"), "sealed true", "{output}");
    assert_eq!(fact("net-driver"), "125 1", "{output}");
    assert_eq!(fact("wait-down"), "0 hull machine: stopped", "{output}");
}

#[test]
fn what_docker_users_reach_for() {
    let hull = Hull::new();
    let output = on_this_host(
        &hull,
        r#"
work=$(mktemp -d)
printf 'A=1\n# a comment\n\n  B=two\n' > $work/env

# run: --env-file (before -e), labels, --init, fractional --cpus, stop signal and timeout.
echo "env=$($h run --rm --env-file $work/env -e B=three --init --cpus 1.5 --rootfs $R -- sh -c 'echo $A $B $(nproc)')"
$h run -d --name web -l tier=front -l app --stop-signal USR1 --stop-timeout 30 -p 127.0.0.1::80 --rootfs $R -- \
    sh -c 'trap "echo bye; exit 3" USR1; trap "echo int; exit 4" INT; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done' >/dev/null
$h run -d --name db -l tier=back --rootfs $R -- sleep 600 >/dev/null
echo "label-filter=$($h ps --filter label=tier=front --format '{{.Names}} {{.Labels}}')"
echo "label-key=$($h ps --filter label=tier --format '{{.Names}}' | sort | tr '\n' ' ')"

# pause and unpause: no tick while paused; STOP/CONT reach the process.
$h pause web >/dev/null
echo "paused=$($h ps --filter status=paused --format '{{.Names}} {{.State}}') $($h inspect -f '{{.State.Paused}}' web)"
before=$($h logs web | wc -l); sleep 2; after=$($h logs web | wc -l)
echo "frozen=$([ "$before" = "$after" ] && echo yes)"
$h unpause web >/dev/null
wait_for "[ \$($h logs web | wc -l) -gt $after ]"
$h kill -s STOP web >/dev/null; $h kill -s CONT web >/dev/null; echo "stop-cont=$?"

# logs: a time window and every line.
echo "since-future=$($h logs --since 2099-01-01T00:00:00Z web | wc -l)"
echo "until-past=$($h logs --until 2000-01-01T00:00:00Z web | wc -l)"
echo "tail-all=$([ $($h logs --tail all web | wc -l) -ge $after ] && echo yes)"

# ps: full IDs, the last created, sizes.
echo "no-trunc=$($h ps --no-trunc -q --filter name=web | wc -c)"
echo "latest=$($h ps -l --format '{{.Names}}') $($h ps -n 2 --format '{{.Names}}' | wc -l)"
echo "size=$($h ps -s --format '{{.Size}}' --filter name=db | grep -c 'B$')"

# inspect: Docker's fields and types, other objects, missing ones.
echo "inspect-state=$($h inspect -f '{{.State.Status}} {{.State.Dead}} {{.Config.StopSignal}} {{.Config.StopTimeout}} {{.HostConfig.Init}} {{.HostConfig.NetworkMode}}' web)"
echo "inspect-ports=$($h inspect -f '{{json .HostConfig.PortBindings}} {{json .Config.ExposedPorts}}' web)"
echo "inspect-net=$($h inspect -f '{{range .NetworkSettings.Networks}}{{.Gateway}}/{{.IPPrefixLen}}{{end}} {{.NetworkSettings.Gateway}} {{(index (index .NetworkSettings.Ports "80/tcp") 0).HostIp}}' web) $($h network inspect -f '{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}}{{end}}' bridge)"
echo "inspect-zero=$($h inspect -f '{{.State.FinishedAt}}' db)"
echo "inspect-network=$($h inspect bridge -f '{{.Driver}}') $($h inspect --type network -f '{{.Name}}' bridge)"
$h inspect nothing >$work/out 2>$work/err; echo "inspect-missing=$? $(cat $work/out) $(grep -c 'no such object' $work/err)"

# restart -s sends the signal given; stop the stop signal.
$h restart -s INT -t 30 web >/dev/null; echo "restart-signal=$? $($h logs web | grep -c '^int$') $($h inspect -f '{{.State.Status}}' web)"
$h stop web >/dev/null; echo "stopped=$($h inspect -f '{{.State.ExitCode}}' web) $($h logs web | tail -n 1)"

# Prunes ask first; a usage error is Docker's 125.
echo n | $h container prune >/dev/null; echo "prune-no=$($h ps -aq | wc -l)"
echo y | $h container prune >/dev/null; echo "prune-yes=$($h ps -aq | wc -l)"
$h ps --no-such-flag 2>/dev/null; echo "usage=$?"

# login asks for what it is not given, and cannot without a terminal.
$h login 127.0.0.1:9 </dev/null 2>$work/err; echo "login-no-tty=$? $(grep -c 'non TTY device' $work/err)"
echo pw | $h login -u me -p pw --password-stdin 127.0.0.1:9 2>$work/err; echo "login-both=$? $(grep -c 'mutually exclusive' $work/err)"
$h rm -f db >/dev/null

# Bool flags take =true and =false; rows have Docker's Label method and
# index gives a missing key's zero value; container inspect is of containers.
tar -C $R -cf $work/bb.tar . && $h import $work/bb.tar bb:2 >/dev/null
$h run -d --rm=false --name lbl -l tier=web --rootfs $R -- sleep 600 >/dev/null
echo "bool-eq=$? $($h ps -a=false --no-trunc=false --filter name=lbl --format '{{.Names}} {{.Label "tier"}}[{{.Label "nope"}}]')"
echo "index-zero=[$($h inspect -f '{{index .Config.Labels "nope"}}' lbl)]"
$h container inspect bb:2 >/dev/null 2>&1; echo "ctr-inspect-image=$?"
# logs -f and wait end as Docker's when rm -f removes what they follow.
$h logs -f lbl >/dev/null 2>$work/lf & follower=$!
$h wait lbl >$work/w 2>&1 & waiter=$!
sleep 2; $h rm -f lbl >/dev/null
wait $follower; echo "rmf-logs=$? $(wc -c < $work/lf)"
wait $waiter; echo "rmf-wait=$? $(cat $work/w)"
# A host port taken on this host fails compose up before anything is made.
python3 -c 'import socket, time; s = socket.socket(); s.bind(("0.0.0.0", 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(120)' >$work/port & holder=$!
while [ ! -s $work/port ]; do sleep 0.1; done
# A running container's published port is its own, and its state is left
# as it is (its monitor is the machine's).
$h run -d --name held -p 127.0.0.1::80 --rootfs $R -- sleep 600 >/dev/null
mkdir $work/taken && printf 'services:\n  web:\n    image: bb:2\n    command: ["sleep", "600"]\n    ports: ["%s:80"]\n' $(cat $work/port) >$work/taken/compose.yaml
(cd $work/taken && $h compose up -d >/dev/null 2>$work/err); echo "compose-taken=$? $(wc -l < $work/err) $(grep -c 'is already in use' $work/err) $($h ps -aq --filter name=taken | wc -l)"
(cd $work/taken && $h compose run -p $(cat $work/port):81 --service-ports web true >/dev/null 2>$work/err); echo "compose-run-taken=$? $(wc -l < $work/err) $(grep -c 'is already in use' $work/err) $($h ps -aq --filter name=taken | wc -l)"
kill $holder
echo "compose-held=$($h inspect -f '{{.State.Status}}' held)"
$h rm -f held >/dev/null
"#,
    );
    let fact = |key: &str| facts(&output, key).join("|");
    assert_eq!(fact("env"), "1 three 2", "{output}");
    assert_eq!(fact("label-filter"), "web app=,tier=front", "{output}");
    assert_eq!(fact("label-key"), "db web ", "{output}");
    assert_eq!(fact("paused"), "web paused true", "{output}");
    assert_eq!(fact("frozen"), "yes", "{output}");
    assert_eq!(fact("stop-cont"), "0", "{output}");
    assert_eq!(fact("since-future"), "0", "{output}");
    assert_eq!(fact("until-past"), "0", "{output}");
    assert_eq!(fact("tail-all"), "yes", "{output}");
    assert_eq!(fact("no-trunc"), "65", "{output}");
    assert_eq!(fact("latest"), "db 2", "{output}");
    assert_eq!(fact("size"), "1", "{output}");
    assert_eq!(
        fact("inspect-state"),
        "running false SIGUSR1 30 true bridge",
        "{output}"
    );
    let ports = fact("inspect-ports");
    assert!(
        ports.starts_with(r#"{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":""#)
            && ports.ends_with(r#"{"80/tcp":{}}"#),
        "{output}"
    );
    // Each network's gateway and prefix, the first's at the top too, as
    // templates written for Docker read them.
    let net = fact("inspect-net");
    let net: Vec<&str> = net.split(' ').collect();
    let [endpoint, top_gateway, host_ip, gateway, subnet] = net[..] else {
        panic!("{output}");
    };
    let prefix = subnet.split_once('/').map_or("", |(_, len)| len);
    assert_eq!(endpoint, format!("{gateway}/{prefix}"), "{output}");
    assert_eq!(top_gateway, gateway, "{output}");
    assert_eq!(host_ip, "127.0.0.1", "{output}");
    assert_eq!(fact("inspect-zero"), "0001-01-01T00:00:00Z", "{output}");
    assert_eq!(fact("inspect-network"), "bridge bridge", "{output}");
    assert_eq!(fact("inspect-missing"), "1 [] 1", "{output}");
    assert_eq!(fact("restart-signal"), "0 1 running", "{output}");
    assert_eq!(fact("stopped"), "3 bye", "{output}");
    assert_eq!(fact("prune-no"), "2", "{output}");
    assert_eq!(fact("prune-yes"), "1", "{output}");
    assert_eq!(fact("usage"), "125", "{output}");
    assert_eq!(fact("login-no-tty"), "1 1", "{output}");
    assert_eq!(fact("login-both"), "1 1", "{output}");
    assert_eq!(fact("bool-eq"), "0 lbl web[]", "{output}");
    assert_eq!(fact("index-zero"), "[]", "{output}");
    assert_eq!(fact("ctr-inspect-image"), "1", "{output}");
    assert_eq!(fact("rmf-logs"), "0 0", "{output}");
    assert_eq!(fact("rmf-wait"), "0 137", "{output}");
    assert_eq!(fact("compose-taken"), "1 1 1 0", "{output}");
    assert_eq!(fact("compose-run-taken"), "1 1 1 0", "{output}");
    assert_eq!(fact("compose-held"), "running", "{output}");
}
