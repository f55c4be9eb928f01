//! Shell scripts of hull commands run in one KVM test host session, where
//! /dev/kvm is real on any host. A script prints `key=value` facts that the
//! test then checks with [`facts`].

use crate::{busybox_rootfs, hull_binary, output_with_stdin, profile_dir, Hull};

/// Shell functions for every script, and its watchdog.
///
/// `dump_state` prints every process of the test host and what hull knows
/// of every container. `wait_for CONDITION` waits until the shell condition
/// holds; after three minutes it dumps the state and fails the script. A
/// script still running after fifteen minutes dumps the state and is killed
/// with everything it started (it leads its own process group), so that no
/// step can hang a test and the output says where it stood. The watchdog is
/// started from a command substitution so that it is not a child of the
/// script (a bare `wait` in a script waits for the script's own jobs only),
/// and its `sleep` holds no copy of the script's stdout (the session ends
/// when stdout is closed; the trap kills the watchdog, not its `sleep`).
const PRELUDE: &str = r#"
dump_state() {
    ps -eo pid,ppid,stat,etime,time,args
    $h ps -a
    for dir in $HULL_ROOT/containers/*/; do
        echo "== $dir"; cat $dir/state.json $dir/monitor.log
    done
}
wait_for() {
    tries=0
    until eval "$1"; do
        tries=$((tries + 1))
        if [ $tries -ge 900 ]; then
            echo "timed out waiting for: $1"; dump_state
            exit 1
        fi
        sleep 0.2
    done
}
exec 3>&1
watchdog=$( (sleep 900 >/dev/null 2>&1; echo "the script ran past 900 s"; dump_state; kill -KILL 0) >&3 2>&1 3>&- & echo $!)
exec 3>&-
trap 'kill $watchdog' EXIT
"#;

/// What `hull __testhost-exec` says of a test host that froze
/// (`hull_machine::testhost::FROZEN`).
const TEST_HOST_FROZE: &str = "KVM test host: the test host froze";

/// What hull says of a VM in which nothing ran, not even its kernel's
/// first line, until its agent's deadline: frozen by the test host's
/// emulation, as a whole test host now and then is.
const VM_NEVER_RAN: &str = "no output from the VMM or the guest";

/// Runs `script` with `$h` (the hull binary), `$R` (a busybox root),
/// `$pty` (support/bin/pty_session.rs), `$udp` (support/bin/udp_echo.rs)
/// and `$flood` (support/bin/tcp_flood.rs)
/// in the KVM test host, with a fresh state root there; returns its stdout.
pub fn in_test_host(script: &str) -> String {
    let prelude = format!(
        "set -u; h={}; R={}; pty={}; udp={}; flood={}; export HULL_ROOT=$(mktemp -d /tmp/hull-e2e.XXXXXX)\n{PRELUDE}",
        hull_binary().display(),
        busybox_rootfs().display(),
        profile_dir().join("pty-session").display(),
        profile_dir().join("udp-echo").display(),
        profile_dir().join("tcp-flood").display(),
    );
    let script = prelude + script;
    let run = || {
        // Kept until the test host is done: its root is removed when it drops.
        let hull = Hull::new();
        output_with_stdin(
            hull.command(["__testhost-exec", "--", "sh", "-c", &script]),
            b"",
        )
    };
    let mut output = run();
    // QEMU's emulation now and then freezes a whole test host (see
    // machine/src/testhost/watchdog.rs), or a VM in it before its kernel
    // printed a line (said on stderr, or on stdout by a script that
    // reports the errors it expects none of); that says nothing of hull,
    // so the script runs again, once, in a fresh test host.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let froze = stderr.contains(TEST_HOST_FROZE)
        || (!output.status.success() && stderr.contains(VM_NEVER_RAN))
        || stdout.contains(VM_NEVER_RAN);
    if froze {
        eprintln!("the test host or a VM in it froze; running the script again:\n{stderr}");
        output = run();
    }
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "script failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs `script` as [`in_test_host`] does, but in this host's shell, as a
/// user types hull commands: `$h` is `hull` on `hull`'s root, with its VMs
/// in the hull machine wherever this host's KVM could run them too
/// (`HULL_BACKEND=machine`); `$R` is a busybox root. The machine is stopped
/// when `hull` is dropped.
pub fn on_this_host(hull: &Hull, script: &str) -> String {
    let prelude = format!(
        "set -u; h=\"{} --root {}\"; R={}; export HULL_ROOT={}\n{PRELUDE}",
        hull_binary().display(),
        hull.root().display(),
        busybox_rootfs().display(),
        hull.root().display(),
    );
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", &(prelude + script)])
        .env("HULL_BACKEND", "machine");
    let output = output_with_stdin(command, b"");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "script failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The values the script printed for `key`, in order.
pub fn facts<'a>(output: &'a str, key: &str) -> Vec<&'a str> {
    output
        .lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .collect()
}
