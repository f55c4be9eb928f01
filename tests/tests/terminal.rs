//! `-t`: the process on a terminal in the guest. Interactive sessions are
//! driven through a real pseudo-terminal on the host by `pty-session`
//! (tests/support/bin), typing keys and reading the screen as a user would.

use std::process::Command;

use hull_e2e::{assert_clean, assert_one_line_error, busybox_rootfs, container_stderr, Hull};

/// Runs `hull ARGS...` on a terminal of `size` through the `steps` of
/// `pty-session`; returns what it reports (`exit=`, `termios=`).
fn on_terminal(hull: &Hull, size: &str, steps: &[&str], args: &[&str]) -> String {
    let hull_command = hull.command(args);
    let mut command = Command::new(env!("CARGO_BIN_EXE_pty-session"));
    command
        .args(["--size", size])
        .args(steps)
        .arg("--")
        .arg(hull_command.get_program())
        .args(hull_command.get_args());
    let output = command.output().expect("run pty-session");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    report
}

#[test]
fn run_it_gives_a_shell_a_terminal_that_follows_ours_and_takes_our_keys() {
    let hull = Hull::new();
    let rootfs = busybox_rootfs().to_str().unwrap();
    let report = on_terminal(
        &hull,
        "30x100",
        &[
            "expect=# ",
            // The guest's terminal, its size copied from ours.
            r"send=tty; stty size\r",
            r"expect=/dev/pts/0\r\n30 100\r\n",
            // Our resize reaches it.
            "resize=40x120",
            r#"send=until [ "$(stty size)" = "40 120" ]; do sleep 0.1; done; echo re""sized\r"#,
            r"expect=resized\r\n",
            // Ctrl-C interrupts the foreground job only. Keys typed before
            // it runs could reach the shell's line editor: wait for it.
            r#"send=echo re""ady; cat\r"#,
            r"expect=ready\r\n",
            r"send=ping\r",
            r"expect=ping\r\nping\r\n",
            r"send=\x03",
            "expect=# ",
            r"send=echo after=$?\r",
            r"expect=after=130\r\n",
            // Ctrl-Z stops it, with the shell's job control.
            r#"send=echo jo""b; cat\r"#,
            r"expect=job\r\n",
            r"send=pong\r",
            r"expect=pong\r\npong\r\n",
            r"send=\x1a",
            "expect=Stopped",
            "expect=# ",
            r"send=kill -9 %1; wait\r",
            "expect=# ",
            // Ctrl-D ends the shell, which exits with its last status.
            r#"send=sh -c "exit 5"\r"#,
            "expect=# ",
            r"send=\x04",
        ],
        &["run", "-it", "--rootfs", rootfs, "sh"],
    );
    assert!(report.contains("exit=5\n"), "{report}");
    assert!(report.contains("termios=restored\n"), "{report}");
    assert_clean(&hull);
}

#[test]
fn run_t_without_a_terminal_gives_the_process_one_of_the_default_size() {
    let hull = Hull::new();
    let output = hull.run(
        [
            "run",
            "-t",
            "--rootfs",
            busybox_rootfs().to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "test -t 0 && test -t 1 && stty size; echo to-stderr >&2",
        ],
        b"",
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        container_stderr(&output)
    );
    // One stream, through the guest's line discipline.
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "24 80\r\nto-stderr\r\n"
    );
    assert_eq!(container_stderr(&output), "");
    assert_clean(&hull);
}

#[test]
fn run_it_with_input_that_is_not_a_terminal_is_refused_before_booting() {
    let hull = Hull::new();
    let output = hull.run(
        [
            "run",
            "-it",
            "--rootfs",
            busybox_rootfs().to_str().unwrap(),
            "sh",
        ],
        b"echo hi\n",
    );
    assert_one_line_error(&output, 125, "the input device is not a TTY");
    assert_clean(&hull);
}
