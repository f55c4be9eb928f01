//! Shell scripts of hull commands run in one KVM test host session, where
//! /dev/kvm is real on any host. A script prints `key=value` facts that the
//! test then checks with [`facts`].

use crate::{busybox_rootfs, hull_binary, profile_dir, Hull};

/// `wait_for CONDITION`: waits until the shell condition holds; after three
/// minutes, prints what hull knows of every container and fails the script,
/// so that no wait can hang a test.
const WAIT_FOR: &str = r#"
wait_for() {
    tries=0
    until eval "$1"; do
        tries=$((tries + 1))
        if [ $tries -ge 900 ]; then
            echo "timed out waiting for: $1"; $h ps -a
            for dir in $HULL_ROOT/containers/*/; do
                echo "== $dir"; cat $dir/state.json $dir/monitor.log
            done
            exit 1
        fi
        sleep 0.2
    done
}
"#;

/// Runs `script` with `$h` (the hull binary), `$R` (a busybox root),
/// `$pty` (support/bin/pty_session.rs) and `$udp` (support/bin/udp_echo.rs)
/// in the KVM test host, with a fresh state root there; returns its stdout.
pub fn in_test_host(script: &str) -> String {
    in_test_host_with_cpus(script, None)
}

/// [`in_test_host`] with a test host of `cpus` vCPUs (default: its own).
pub fn in_test_host_with_cpus(script: &str, cpus: Option<u32>) -> String {
    let prelude = format!(
        "set -u; h={}; R={}; pty={}; udp={}; export HULL_ROOT=$(mktemp -d /tmp/hull-e2e.XXXXXX)\n{WAIT_FOR}",
        hull_binary().display(),
        busybox_rootfs().display(),
        profile_dir().join("pty-session").display(),
        profile_dir().join("udp-echo").display(),
    );
    let mut command =
        Hull::new().command(["__testhost-exec", "--", "sh", "-c", &(prelude + script)]);
    if let Some(cpus) = cpus {
        command.env("HULL_TESTHOST_CPUS", cpus.to_string());
    }
    let output = command.output().expect("run the KVM test host");
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
