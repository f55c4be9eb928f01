//! The KVM test host: real L1 boots through `hull __testhost-exec`.
//!
//! Each test boots its own test host (QEMU TCG, 5-15 s); they run one at a
//! time so that parallel TCG guests do not starve each other on small CI
//! machines.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

use hull_e2e::{hull_binary, output_with_stdin, repo_root};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `hull __testhost-exec -- ARGV...` in `cwd` with `env` added, feeding
/// it `stdin`.
fn testhost_exec(argv: &[&str], cwd: &Path, env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let _serial = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut command = Command::new(hull_binary());
    command
        .arg("__testhost-exec")
        .arg("--")
        .args(argv)
        .current_dir(cwd)
        .envs(env.iter().copied());
    output_with_stdin(command, stdin)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn runs_with_nested_kvm_and_passes_stdio_and_exit_code() {
    let output = testhost_exec(
        &[
            "sh",
            "-c",
            "test -c /dev/kvm && grep -qw svm /proc/cpuinfo && echo kvm-ok; echo err >&2; exit 5",
        ],
        &repo_root(),
        &[],
        b"",
    );
    assert_eq!(
        text(&output.stdout),
        "kvm-ok\n",
        "stderr: {}",
        text(&output.stderr)
    );
    assert_eq!(text(&output.stderr), "err\n");
    assert_eq!(output.status.code(), Some(5));
}

#[test]
fn stdin_round_trips_through_cat() {
    // Larger than one protocol frame and not valid UTF-8.
    let input: Vec<u8> = (0..600_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let output = testhost_exec(&["cat"], &repo_root(), &[], &input);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );
    assert_eq!(output.stdout.len(), input.len());
    assert!(output.stdout == input, "cat returned different bytes");
}

#[test]
fn working_directory_and_environment_pass_through() {
    let cwd = repo_root().join("tests/kvm-host");
    let output = testhost_exec(
        &[
            "sh",
            "-c",
            "pwd; echo \"$HULL_E2E_MARK\"; test -x run && echo sees-host-files",
        ],
        &cwd,
        &[("HULL_E2E_MARK", "marked value")],
        b"",
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );
    assert_eq!(
        text(&output.stdout),
        format!("{}\nmarked value\nsees-host-files\n", cwd.display())
    );
}
