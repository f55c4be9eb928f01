//! `hull run` end to end: each test boots a real microVM with hull's kernel
//! and agent (inside the KVM test host when this host's KVM can't run it).

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use hull_e2e::{
    assert_clean, assert_one_line_error, assert_succeeded, busybox_rootfs, container_stderr, Hull,
};
use sha2::{Digest, Sha256};

/// `hull run --rootfs <busybox> EXTRA... -- COMMAND...`
fn run_args(extra: &[&str], command: &[&str]) -> Vec<String> {
    let mut args = vec![
        "run".to_owned(),
        "--rootfs".to_owned(),
        busybox_rootfs().to_string_lossy().into_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(command.iter().map(|s| s.to_string()));
    args
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn prints_hostname_and_kernel_and_returns_the_exit_code() {
    let hull = Hull::new();
    let output = hull.run(
        run_args(
            &[],
            &[
                "/bin/sh",
                "-c",
                "echo hello from $(hostname); uname -r; exit 3",
            ],
        ),
        b"",
    );
    assert_eq!(
        output.status.code(),
        Some(3),
        "stderr: {}",
        container_stderr(&output)
    );
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let hostname = lines[0].strip_prefix("hello from ").expect("greeting");
    assert!(
        hostname.len() == 12 && hostname.chars().all(|c| c.is_ascii_hexdigit()),
        "hostname should be the short container id, got {hostname:?}"
    );
    assert!(
        lines[1].starts_with("6.12.") && lines[1].ends_with("-hull"),
        "guest kernel release: {}",
        lines[1]
    );
    assert_clean(&hull);
}

#[test]
fn stdout_and_stderr_stay_separate_and_ordered() {
    let hull = Hull::new();
    let script = "for i in 1 2 3; do echo out$i; echo err$i >&2; done";
    let output = hull.run(run_args(&[], &["sh", "-c", script]), b"");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output), "out1\nout2\nout3\n");
    assert_eq!(container_stderr(&output), "err1\nerr2\nerr3\n");
}

#[test]
fn stdin_is_forwarded_with_dash_i() {
    let hull = Hull::new();
    let input = b"hi\nthere, with more than one line\n";
    let output = hull.run(run_args(&["-i"], &["cat"]), input);
    assert_succeeded(&output);
    assert_eq!(output.stdout, input);

    // Without -i the process reads an empty stdin, as with Docker.
    let output = hull.run(run_args(&[], &["sh", "-c", "wc -c"]), input);
    assert_eq!(stdout(&output).trim(), "0");
}

#[test]
fn a_mebibyte_of_stdout_arrives_intact() {
    let hull = Hull::new();
    let script = "head -c 1048576 /dev/urandom > /tmp/blob; sha256sum /tmp/blob >&2; cat /tmp/blob";
    let output = hull.run(run_args(&[], &["sh", "-c", script]), b"");
    assert_succeeded(&output);
    assert_eq!(output.stdout.len(), 1 << 20);
    let stderr = container_stderr(&output);
    let guest_digest = stderr.split_whitespace().next().expect("digest on stderr");
    assert_eq!(hex::encode(Sha256::digest(&output.stdout)), guest_digest);
}

#[test]
fn death_by_signal_gives_128_plus_n() {
    let hull = Hull::new();
    let output = hull.run(run_args(&[], &["sh", "-c", "kill -9 $$"]), b"");
    assert_eq!(output.status.code(), Some(128 + 9));
    let output = hull.run(run_args(&[], &["sh", "-c", "kill -TERM $$"]), b"");
    assert_eq!(output.status.code(), Some(128 + 15));
}

#[test]
fn ctrl_c_on_the_cli_reaches_the_process() {
    let hull = Hull::new();
    let mut child = hull
        .command(run_args(&[], &["sh", "-c", "echo ready; exec sleep 600"]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hull");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").expect("readable stdout");
    assert_eq!(first, "ready");
    // SAFETY: kill(2) on our own child's pid has no memory-safety concerns.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "hull did not exit after SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(128 + libc::SIGINT));
    assert_clean(&hull);
}

#[test]
fn ctrl_c_while_the_vm_boots_cleans_up() {
    let hull = Hull::new();
    let mut child = hull
        .command(run_args(&[], &["sleep", "600"]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hull");
    // Mid-boot on this kind of host (the VM, or the KVM test host, takes
    // seconds); on a fast host the signal reaches `sleep` instead, with the
    // same outcome.
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: kill(2) on our own child's pid has no memory-safety concerns.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "hull did not exit after SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(128 + libc::SIGINT));
    assert_clean(&hull);
}

#[test]
fn cpus_flag_sets_the_guest_cpu_count() {
    let hull = Hull::new();
    let output = hull.run(
        run_args(
            &["--cpus", "2"],
            &["sh", "-c", "grep -c ^processor /proc/cpuinfo; nproc"],
        ),
        b"",
    );
    assert_succeeded(&output);
    assert_eq!(stdout(&output), "2\n2\n");
}

#[test]
fn memory_flag_sets_the_guest_memory() {
    let hull = Hull::new();
    let output = hull.run(
        run_args(&["-m", "256m"], &["grep", "MemTotal", "/proc/meminfo"]),
        b"",
    );
    assert_succeeded(&output);
    let kib: u64 = stdout(&output)
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("MemTotal value");
    // The kernel keeps some memory for itself; anything above 256 MiB or far
    // below it means -m was not applied.
    assert!(
        (200 * 1024..=256 * 1024).contains(&kib),
        "MemTotal {kib} kB"
    );
}

#[test]
fn env_workdir_user_and_hostname_apply() {
    let hull = Hull::new();
    let output = hull.run(
        run_args(
            &[
                "-e",
                "GREETING=hi there",
                "-w",
                "/tmp",
                "-u",
                "1000:100",
                "--hostname",
                "box",
            ],
            &[
                "sh",
                "-c",
                "echo \"$GREETING|$(pwd)|$(id -u):$(id -g)|$(hostname)|$HOME\"",
            ],
        ),
        b"",
    );
    assert_succeeded(&output);
    assert_eq!(stdout(&output), "hi there|/tmp|1000:100|box|/\n");
}

#[test]
fn writes_stay_in_the_container() {
    let hull = Hull::new();
    let rootfs = busybox_rootfs();
    let output = hull.run(
        run_args(
            &[],
            &[
                "sh",
                "-c",
                "echo scribble > /etc/hull-was-here && cat /etc/hull-was-here",
            ],
        ),
        b"",
    );
    assert_succeeded(&output);
    assert_eq!(stdout(&output), "scribble\n");
    assert!(
        !rootfs.join("etc/hull-was-here").exists(),
        "the rootfs must stay untouched"
    );
}

#[test]
fn a_missing_rootfs_is_a_one_line_error() {
    let hull = Hull::new();
    let output = hull.run(
        ["run", "--rootfs", "/nonexistent/rootfs", "--", "true"],
        b"",
    );
    assert_one_line_error(&output, 125, "/nonexistent/rootfs");
    assert_clean(&hull);
}

#[test]
fn a_missing_kernel_is_a_one_line_error() {
    let hull = Hull::new();
    let output = hull.run(
        run_args(&["--kernel", "/nonexistent/vmlinux"], &["true"]),
        b"",
    );
    assert_one_line_error(&output, 125, "/nonexistent/vmlinux");
    assert_clean(&hull);
}

#[test]
fn a_missing_command_is_a_one_line_error() {
    let hull = Hull::new();
    let output = hull.run(run_args(&[], &["/no/such/command"]), b"");
    assert_one_line_error(&output, 127, "/no/such/command");
    assert_clean(&hull);
}

#[test]
fn version_names_the_kernel_and_the_kvm() {
    let hull = Hull::new();
    let output = hull.run(["version"], b"");
    assert_eq!(output.status.code(), Some(0));
    let out = stdout(&output);
    assert!(out.starts_with("hull "), "{out}");
    assert!(out.contains("-hull)"), "kernel release missing: {out}");
    let kvm_line = out
        .lines()
        .find(|l| l.starts_with("kvm:"))
        .expect("kvm line");
    let expected = if std::path::Path::new("/sys/module/kvm_pvm").exists() {
        "PVM"
    } else {
        "hardware"
    };
    assert!(kvm_line.contains(expected), "{kvm_line}");
}
