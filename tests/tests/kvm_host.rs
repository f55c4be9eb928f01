//! The KVM test host: real L1 boots through `hull __testhost-exec`.
//!
//! Each test boots its own test host (QEMU TCG, 5-15 s); they run one at a
//! time so that parallel TCG guests do not starve each other on small CI
//! machines.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

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

/// The test host's heartbeat: one that runs on is left alone past the stall
/// limit, one whose QEMU stops (as when TCG freezes) is killed within it and
/// reported as frozen, so that the tests can tell it from a hung command.
#[test]
fn a_beating_test_host_runs_on_and_a_frozen_one_is_reported() {
    let stall_limit = [("HULL_TESTHOST_STALL_LIMIT", "15")];
    let output = testhost_exec(
        &[
            "sh",
            "-c",
            "sleep 35; echo alive $(ps -eo args | grep -cx 'sleep 5')",
        ],
        &repo_root(),
        &stall_limit,
        b"",
    );
    // The heartbeat waits between beats (one `sleep 5` of /init's runs).
    assert_eq!(
        text(&output.stdout),
        "alive 1\n",
        "{}",
        text(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));

    let _serial = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut hull = Command::new(hull_binary())
        .args(["__testhost-exec", "--", "sh", "-c", "echo up; sleep 600"])
        .envs(stall_limit)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(hull.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    assert_eq!(first_line, "up\n");
    let qemu = child_named(hull.id(), "qemu-system-x86").expect("the test host's QEMU");
    kill(Pid::from_raw(qemu), Signal::SIGSTOP).unwrap();

    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = hull.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            hull.kill().unwrap();
            panic!("hull waited on a stopped test host past 120 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut stderr = String::new();
    hull.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("KVM test host: the test host froze (no heartbeat for 15s"),
        "{stderr}"
    );
}

/// The pid of `parent`'s child whose command name starts with `name`.
fn child_named(parent: u32, name: &str) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // pid (comm) state ppid ...: comm may hold spaces, not ')'.
            let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent && comm.starts_with(name)).then_some(pid)
        })
}
