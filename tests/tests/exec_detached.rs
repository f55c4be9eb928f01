//! `exec -d` end to end, in a real VM: the process starts, hull returns at
//! once, and the process runs on with no stdin and its output discarded
//! (a terminal nobody reads with -t), until it ends and is reaped; so does
//! an `exec -it` one left with the detach keys. Runs a
//! shell script of hull commands in one KVM test host session, which prints
//! `key=value` facts that the test then checks.

use hull_e2e::script::{facts, in_test_host};

#[test]
fn exec_detached_starts_the_process_returns_and_leaves_it_running() {
    let output = in_test_host(
        r#"
$h run -d --name web --rootfs $R -- sleep 100000 >/dev/null; echo "run=$?"
before=$($h top web | wc -l)
$h exec -d web sh -c 'cat; echo to-nobody; echo to-nobody >&2; [ -c /proc/$$/fd/0 ] && [ -c /proc/$$/fd/1 ] && [ -c /proc/$$/fd/2 ] && [ ! -t 0 ] && echo null > /streams; while [ ! -e /go ]; do sleep 0.1; done; echo done > /marker' >out 2>err
echo "exec-d=$? [$(cat out)$(cat err)]"
echo "waiting=$($h exec web sh -c '[ -e /marker ] && echo ended-early || echo yes')"
$h top web | grep -q 'while \[ ! -e /go' && echo "top-running=listed"
$h exec web touch /go
wait_for '$h exec web cat /marker 2>/dev/null | grep -q done'; echo "marker=done"
echo "streams=$($h exec web cat /streams)"
echo hello | $h exec -d -i web sh -c 'cat > /stdin-got; echo end >> /stdin-got' >/dev/null; echo "exec-di=$?"
wait_for '$h exec web cat /stdin-got 2>/dev/null | grep -q end'
echo "stdin-got=$($h exec web cat /stdin-got | tr '\n' ' ')"
$h exec -d -t web sh -c 'head -c 1048576 /dev/zero; echo "$(stty size) $([ -t 0 ] && echo on-a-tty)" > /tty' >out 2>&1; echo "exec-dt=$? [$(cat out)]"
wait_for '$h exec web cat /tty 2>/dev/null | grep -q tty'; echo "tty=$($h exec web cat /tty)"
$pty expect='# ' send='(while :; do i=$((i+1)); echo $i > /ticks; seq 1 3000; sleep 0.1; done) & echo $! > /ticker; echo $$ > /it-pid; echo ready""now\r' expect='readynow' send='\x10\x11' -- $h exec -it web sh 2>&1 | sed -n -e 's/^exit=/exec-it-detach=/p' -e 's/.*hull: \(detached from [^;]*\);.*/exec-it-said=\1/p'
ticks=$($h exec web cat /ticks); sleep 3
echo "exec-it-ticking=$($h exec web sh -c "[ \$(cat /ticks) -gt $((ticks + 5)) ] && echo yes || echo no $ticks \$(cat /ticks)")"
echo "exec-it-alive=$($h exec web sh -c 'kill -0 $(cat /it-pid) && echo yes')"
$h exec web sh -c 'kill -9 $(cat /ticker) $(cat /it-pid)'
$h exec -d web /no/such 2>err; echo "missing=$? $(grep -c /no/such err)"
$h exec -d web /etc/passwd 2>/dev/null; echo "not-executable=$?"
$h exec -d nosuch true 2>/dev/null; echo "no-container=$?"
wait_for '[ $($h top web | wc -l) -eq $before ]'; echo "top=as-before"
echo "zombies=$($h top web -o pid,stat | awk 'NR > 1 && $2 ~ /^Z/' | wc -l)"
$h rm -f web >/dev/null; echo "rm=$?"
"#,
    );
    assert_eq!(facts(&output, "run"), ["0"], "{output}");
    // hull returned 0 at once, with nothing of the process's output.
    assert_eq!(facts(&output, "exec-d"), ["0 []"], "{output}");
    // The process ran on after hull returned, waiting for /go.
    assert_eq!(facts(&output, "waiting"), ["yes"], "{output}");
    assert_eq!(facts(&output, "top-running"), ["listed"], "{output}");
    assert_eq!(facts(&output, "marker"), ["done"], "{output}");
    // Its streams were character devices (/dev/null), not a terminal; it
    // read end of file at once (`cat` returned).
    assert_eq!(facts(&output, "streams"), ["null"], "{output}");
    // -i is ignored with -d, as Docker ignores it: nothing of our stdin.
    assert_eq!(facts(&output, "exec-di"), ["0"], "{output}");
    assert_eq!(facts(&output, "stdin-got"), ["end "], "{output}");
    // -t gives it a terminal of the default size (the script has none),
    // whose output (a mebibyte) is read and dropped.
    assert_eq!(facts(&output, "exec-dt"), ["0 []"], "{output}");
    assert_eq!(facts(&output, "tty"), ["24 80 on-a-tty"], "{output}");
    // The detach keys of exec -it leave its process running, its output
    // (a ticker's, 14 KiB a tick, some of it still on its way as the keys
    // are typed) read and dropped; killed, it leaves nothing.
    assert_eq!(facts(&output, "exec-it-detach"), ["0"], "{output}");
    assert_eq!(
        facts(&output, "exec-it-said"),
        ["detached from sh in web"],
        "{output}"
    );
    assert_eq!(facts(&output, "exec-it-ticking"), ["yes"], "{output}");
    assert_eq!(facts(&output, "exec-it-alive"), ["yes"], "{output}");
    // A process that cannot start is an error with the shell's code.
    assert_eq!(facts(&output, "missing"), ["127 1"], "{output}");
    assert_eq!(facts(&output, "not-executable"), ["126"], "{output}");
    assert_eq!(facts(&output, "no-container"), ["1"], "{output}");
    // Once they ended, the detached processes (and their supervisors) were
    // reaped: the container has the processes it had, no zombie.
    assert_eq!(facts(&output, "top"), ["as-before"], "{output}");
    assert_eq!(facts(&output, "zombies"), ["0"], "{output}");
    assert_eq!(facts(&output, "rm"), ["0"], "{output}");
}
