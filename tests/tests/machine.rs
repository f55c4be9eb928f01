//! The hull machine end to end, driven from this host's shell as a user
//! would: separate `hull` invocations against one state root, with the
//! machine (QEMU TCG with nested SVM) started by the first command that
//! needs a VM. `HULL_BACKEND=machine` makes hosts with hardware KVM take the
//! same path.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use hull_e2e::registry::tar_dir;
use hull_e2e::{assert_clean, assert_one_line_error, busybox_rootfs, container_stderr, Hull};

const HULL_ERROR: i32 = 125;
const FAILURE: i32 = 1;
/// How long a published port may take to answer after `run -d` returns
/// (httpd starting in its VM).
const SERVE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the machine may take to go down by itself.
const DOWN_TIMEOUT: Duration = Duration::from_secs(90);

fn hull_command(hull: &Hull, args: &[&str]) -> Command {
    let mut command = hull.command(args);
    command.env("HULL_BACKEND", "machine");
    command
}

fn run(hull: &Hull, args: &[&str]) -> Output {
    hull_e2e::output_with_stdin(hull_command(hull, args), b"")
}

/// Runs `hull ARGS...`, which must succeed, and returns its stdout.
fn ok(hull: &Hull, args: &[&str]) -> String {
    let output = run(hull, args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "hull {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// How many lines of stderr announce that the machine starts.
fn machine_starts(output: &Output) -> usize {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| line.contains("starting the hull machine"))
        .count()
}

fn machine_status(hull: &Hull) -> String {
    ok(hull, &["machine", "status"])
}

/// Imports the busybox root as image `bb:1`.
fn import_busybox(hull: &Hull, work: &std::path::Path) {
    let (tar, _) = tar_dir(busybox_rootfs(), None);
    let path = work.join("busybox.tar");
    std::fs::write(&path, tar).unwrap();
    ok(hull, &["import", path.to_str().unwrap(), "bb:1"]);
}

/// A loopback port free right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `curl` on this host's loopback until the page comes or time runs out.
fn fetch(port: u16, path: &str) -> String {
    let url = format!("http://127.0.0.1:{port}{path}");
    let deadline = Instant::now() + SERVE_TIMEOUT;
    loop {
        let output = Command::new("curl")
            .args(["-sSf", "-m", "10", &url])
            .output()
            .expect("run curl (scripts/setup installs it)");
        if output.status.success() {
            return String::from_utf8_lossy(&output.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer within {SERVE_TIMEOUT:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        thread::sleep(Duration::from_millis(500));
    }
}

/// `hull logs NAME`: the container's stdout and stderr (httpd logs to
/// stderr).
fn logs(hull: &Hull, name: &str) -> String {
    let output = run(hull, &["logs", name]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// The loopback port QEMU forwards to the machine's relay, from the
/// supervisor's log.
fn relay_port(hull: &Hull) -> u16 {
    let log = std::fs::read_to_string(hull.root().join("machine/machine.log")).unwrap();
    log.split("relay on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no relay port in: {log}"))
}

/// Whether the relay greets a connection that presents `token` (an agent
/// speaks first), rather than hanging up on it.
fn relay_answers(port: u16, token: &str) -> bool {
    let mut relay = TcpStream::connect(("127.0.0.1", port)).unwrap();
    relay
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    relay.write_all(format!("{token}\n").as_bytes()).unwrap();
    let mut greeting = [0u8; 1];
    matches!(relay.read(&mut greeting), Ok(1))
}

/// The QEMU pid `hull machine status` reports.
fn qemu_pid(hull: &Hull) -> i32 {
    status_pid(hull, "QEMU pid ")
}

/// The pid after `label` in `hull machine status`.
fn status_pid(hull: &Hull, label: &str) -> i32 {
    let status = machine_status(hull);
    status
        .split(label)
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {label}in: {status}"))
}

/// The supervisor pid `hull machine status` reports.
fn supervisor_pid(hull: &Hull) -> i32 {
    status_pid(hull, "supervisor pid ")
}

fn wait_until_down(hull: &Hull) {
    let deadline = Instant::now() + DOWN_TIMEOUT;
    while !machine_status(hull).starts_with("hull machine: stopped") {
        assert!(
            Instant::now() < deadline,
            "the machine is still up after {DOWN_TIMEOUT:?}"
        );
        thread::sleep(Duration::from_millis(500));
    }
}

/// The `hull ps -a` line of container `name`.
fn ps_line(hull: &Hull, name: &str) -> String {
    ok(hull, &["ps", "-a"])
        .lines()
        .find(|line| line.ends_with(name))
        .unwrap_or_else(|| panic!("no container {name} in ps -a"))
        .to_owned()
}

#[test]
fn detached_containers_outlive_the_cli_and_state_survives_machine_stop_and_start() {
    let hull = Hull::new();
    let work = tempfile::tempdir().unwrap();
    // No VM needed: this runs on the host and starts no machine.
    import_busybox(&hull, work.path());
    assert!(machine_status(&hull).starts_with("hull machine: stopped"));

    // The first command that needs a VM starts the machine, saying so once.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let output = run(
        &hull,
        &[
            "run", "-d", "--name", "web", "-p", &publish, "bb:1", "httpd", "-f", "-v", "-p", "80",
            "-h", "/",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(machine_starts(&output), 1, "{output:?}");
    assert_eq!(container_stderr(&output), "");
    let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(id.len(), 64, "run -d prints the ID: {id}");
    let short_id = &id[..12];

    // The CLI is gone; the container runs on, and later commands reuse the
    // machine without starting another.
    let status = machine_status(&hull);
    assert!(status.starts_with("hull machine: running"), "{status}");
    assert!(
        status.contains(&format!("published ports: tcp 127.0.0.1:{port}")),
        "{status}"
    );
    let line = ps_line(&hull, "web");
    assert!(line.contains("Up "), "{line}");
    assert!(
        line.contains(&format!("127.0.0.1:{port}->80/tcp")),
        "{line}"
    );

    // The published port answers on this host's own loopback.
    assert_eq!(fetch(port, "/etc/hostname").trim(), short_id);

    // exec: output, exit codes and signals pass through.
    let output = run(
        &hull,
        &["exec", "web", "sh", "-c", "echo $((6 * 7)); exit 3"],
    );
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "42\n");
    assert_eq!(machine_starts(&output), 0);
    let output = run(&hull, &["exec", "web", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(output.status.code(), Some(128 + libc::SIGTERM));

    // Several CLIs at once, each with its own output: all three run while
    // each waits for the other two.
    let clients: Vec<_> = (0..3)
        .map(|n| {
            let script = format!(
                "touch /tmp/arrived{n}; \
                 until [ -e /tmp/arrived0 -a -e /tmp/arrived1 -a -e /tmp/arrived2 ]; \
                 do sleep 0.1; done; echo client{n}"
            );
            hull_command(&hull, &["exec", "web", "sh", "-c", &script])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start hull exec")
        })
        .collect();
    for (n, client) in clients.into_iter().enumerate() {
        let output = client.wait_with_output().expect("wait for hull exec");
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("client{n}\n")
        );
    }

    // The relay serves only connections that bring the machine's token.
    let relay_port = relay_port(&hull);
    assert!(!relay_answers(relay_port, "not-the-token"));
    let token = std::fs::read_to_string(hull.root().join("machine/token")).unwrap();
    assert!(relay_answers(relay_port, token.trim()));

    // The log holds httpd's line about our fetch.
    assert!(logs(&hull, "web").contains("response:200"));
    ok(&hull, &["stop", "web"]);
    assert!(ps_line(&hull, "web").contains("Exited"));
    // One with a restart policy runs on as the machine stops.
    ok(
        &hull,
        &[
            "run",
            "-d",
            "--name",
            "keeper",
            "--restart",
            "always",
            "bb:1",
            "sleep",
            "600",
        ],
    );

    // Stopped, the machine leaves no process behind; the image, the
    // containers and their logs stay in the host's hull root and commands
    // that need no VM answer from it without starting the machine.
    assert!(ok(&hull, &["machine", "stop"]).contains("stopped"));
    assert_eq!(hull.leftover_processes(), Vec::<String>::new());
    assert!(ok(&hull, &["images"]).contains("bb "));
    assert!(logs(&hull, "web").contains("response:200"));
    assert!(ps_line(&hull, "web").contains("Exited"));
    assert!(ps_line(&hull, "keeper").contains("Exited"));
    assert!(machine_status(&hull).starts_with("hull machine: stopped"));

    // `start` brings the machine back, and the container with its port;
    // the one with `--restart always` comes back by itself.
    let output = run(&hull, &["start", "web"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(machine_starts(&output), 1);
    assert_eq!(fetch(port, "/etc/hostname").trim(), short_id);
    let deadline = Instant::now() + SERVE_TIMEOUT;
    while !ps_line(&hull, "keeper").contains("Up ") {
        assert!(Instant::now() < deadline, "keeper did not restart");
        thread::sleep(Duration::from_millis(500));
    }
    ok(&hull, &["rm", "-f", "web", "keeper"]);
    let status = machine_status(&hull);
    assert!(status.contains("published ports: none"), "{status}");

    // QEMU killed under a running container: the container is recorded as
    // exited, and the machine starts again.
    ok(
        &hull,
        &["run", "-d", "--name", "sleeper", "bb:1", "sleep", "600"],
    );
    assert!(ps_line(&hull, "sleeper").contains("Up "));
    // SAFETY: kill(2) with a pid we read; no memory is involved.
    assert_eq!(unsafe { libc::kill(qemu_pid(&hull), libc::SIGKILL) }, 0);
    wait_until_down(&hull);
    assert_eq!(hull.leftover_processes(), Vec::<String>::new());
    assert!(ps_line(&hull, "sleeper").contains("Exited (137)"));
    assert!(ok(&hull, &["machine", "start"]).contains("started"));
    ok(&hull, &["start", "sleeper"]);
    assert_eq!(ok(&hull, &["exec", "sleeper", "echo", "back"]), "back\n");
    // Started again while it runs: nothing changes (its record, read on
    // this host, is not taken for that of a monitor gone).
    ok(&hull, &["start", "sleeper"]);
    assert!(ps_line(&hull, "sleeper").contains("Up "));
    assert_eq!(ok(&hull, &["exec", "sleeper", "echo", "still"]), "still\n");

    // The supervisor killed: QEMU goes with it, and so does the container;
    // the next command that needs the machine starts it again.
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::kill(supervisor_pid(&hull), libc::SIGKILL) },
        0
    );
    wait_until_down(&hull);
    assert_eq!(hull.leftover_processes(), Vec::<String>::new());
    assert!(ps_line(&hull, "sleeper").contains("Exited (137)"));
    let output = run(&hull, &["start", "sleeper"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(machine_starts(&output), 1);
    assert_eq!(ok(&hull, &["exec", "sleeper", "echo", "back"]), "back\n");
    ok(&hull, &["rm", "-f", "sleeper"]);
    assert_eq!(ok(&hull, &["ps", "-a", "-q"]), "");
    assert_clean(&hull);
}

#[test]
fn the_machine_takes_its_settings_and_stops_when_idle() {
    let hull = Hull::new();
    let output = run(&hull, &["machine", "set"]);
    assert_one_line_error(&output, FAILURE, "--share or --unshare");
    let output = run(&hull, &["machine", "set", "--memory", "12k"]);
    // A usage error, with Docker's code for them.
    assert_eq!(
        output.status.code(),
        Some(125),
        "clap rejects a tiny memory"
    );

    let settings = ok(
        &hull,
        &[
            "machine",
            "set",
            "--cpus",
            "1",
            "--memory",
            "1536m",
            "--idle-timeout",
            "10s",
        ],
    );
    assert!(
        settings.starts_with("cpus 1, memory 1536 MiB, idle timeout 10 s\nshared writable: "),
        "{settings}"
    );
    assert!(ok(&hull, &["machine", "start"]).contains("started"));
    let status = machine_status(&hull);
    assert!(status.contains("memory 1536 MiB"), "{status}");
    let output = run(&hull, &["machine", "set", "--cpus", "2"]);
    assert_one_line_error(&output, FAILURE, "hull machine stop");

    // A port taken on this host is refused before anything starts.
    let rootfs = busybox_rootfs().to_str().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = run(
        &hull,
        &[
            "run",
            "--rm",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "--rootfs",
            busybox_rootfs().to_str().unwrap(),
            "--",
            "true",
        ],
    );
    assert_one_line_error(&output, HULL_ERROR, "already in use");

    // A running container keeps it up past its idle timeout...
    ok(
        &hull,
        &[
            "run", "-d", "--name", "idler", "--rootfs", rootfs, "--", "sleep", "600",
        ],
    );
    thread::sleep(Duration::from_secs(20));
    assert!(machine_status(&hull).starts_with("hull machine: running"));
    ok(&hull, &["rm", "-f", "idler"]);

    // ...and with nothing running it goes down by itself, QEMU with it.
    wait_until_down(&hull);
    assert_eq!(hull.leftover_processes(), Vec::<String>::new());
    let info = ok(&hull, &["info"]);
    assert!(info.contains("vms:     hull machine (stopped)"), "{info}");
    ok(&hull, &["machine", "rm"]);
    assert!(!hull.root().join("machine/settings.json").exists());
    assert_clean(&hull);
}

#[test]
fn the_machine_writes_only_the_hull_root_and_the_shared_directories() {
    let hull = Hull::new();
    let rootfs = busybox_rootfs().to_str().unwrap();
    // Outside the default shares: $HOME, /tmp, /var/tmp (the root is in /tmp).
    let unshared = tempfile::Builder::new()
        .prefix("hull-e2e-unshared-")
        .tempdir_in("/var/lib")
        .unwrap();
    let dir = unshared.path().to_str().unwrap();
    if let Some(home) = std::env::var_os("HOME") {
        assert!(!unshared.path().starts_with(home), "{dir} is in $HOME");
    }
    let file = unshared.path().join("file");
    std::fs::write(&file, "host\n").unwrap();
    let read_file = || std::fs::read_to_string(&file).unwrap();

    // A read-write bind of it is refused before anything is created, as
    // Docker Desktop refuses a path it does not share.
    let bind = format!("{dir}:/data");
    let output = run(
        &hull,
        &["run", "--rm", "-v", &bind, "--rootfs", rootfs, "--", "true"],
    );
    assert_one_line_error(
        &output,
        HULL_ERROR,
        &format!("the path {dir} is not shared writable with the hull machine"),
    );
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains(&format!("hull machine set --share {dir}")),
        "{output:?}"
    );
    let mount = format!("type=bind,source={dir},target=/data");
    let output = run(
        &hull,
        &[
            "create", "--mount", &mount, "--rootfs", rootfs, "--", "true",
        ],
    );
    assert_one_line_error(&output, HULL_ERROR, "is not shared writable");
    assert_eq!(ok(&hull, &["ps", "-a", "-q"]), "");
    assert!(machine_status(&hull).starts_with("hull machine: stopped"));

    // Read-only it binds, wherever it is: the machine reads the whole host.
    let bind_ro = format!("{dir}:/data:ro");
    let output = ok(
        &hull,
        &[
            "run",
            "--rm",
            "-v",
            &bind_ro,
            "--rootfs",
            rootfs,
            "--",
            "cat",
            "/data/file",
        ],
    );
    assert_eq!(output, "host\n");

    // Under /tmp, shared by default, a read-write bind writes the host's
    // files.
    let shared = tempfile::Builder::new()
        .prefix("hull-e2e-shared-")
        .tempdir_in("/tmp")
        .unwrap();
    let bind_shared = format!("{}:/data", shared.path().display());
    ok(
        &hull,
        &[
            "run",
            "--rm",
            "-v",
            &bind_shared,
            "--rootfs",
            rootfs,
            "--",
            "sh",
            "-c",
            "echo container > /data/out",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(shared.path().join("out")).unwrap(),
        "container\n"
    );

    // A process in the machine itself, root there, cannot write the host
    // outside the shares: not through its root, nor through the host's
    // root mounted read-write anew (QEMU refuses every write through it).
    let script = format!("echo changed > {}", file.display());
    let output = run(&hull, &["machine", "exec", "sh", "-c", &script]);
    assert_ne!(output.status.code(), Some(0), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Read-only file system"),
        "{output:?}"
    );
    let script = format!("mount -o remount,rw / && echo changed > {}", file.display());
    let output = run(&hull, &["machine", "exec", "sh", "-c", &script]);
    assert_ne!(output.status.code(), Some(0), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Read-only file system"),
        "{output:?}"
    );
    assert_eq!(read_file(), "host\n");

    // A copy out of a container, an export or a save to a path there is
    // refused with the same hint before it reaches the machine (where it
    // would fail with a bare "read-only file system"); under a shared
    // directory it is written.
    ok(
        &hull,
        &[
            "run",
            "-d",
            "--name",
            "box",
            "--rootfs",
            rootfs,
            "--",
            "sh",
            "-c",
            "echo copied > /out; sleep 600",
        ],
    );
    let refused = unshared.path().join("out");
    let refused = refused.to_str().unwrap();
    for args in [
        vec!["cp", "box:/out", refused],
        vec!["export", "-o", refused, "box"],
    ] {
        let output = run(&hull, &args);
        assert_one_line_error(
            &output,
            FAILURE,
            &format!("the path {refused} is not shared writable with the hull machine"),
        );
    }
    assert!(!unshared.path().join("out").exists());
    let copied = shared.path().join("copied");
    ok(&hull, &["cp", "box:/out", copied.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&copied).unwrap(), "copied\n");
    ok(&hull, &["rm", "-f", "box"]);

    // QEMU runs under its seccomp filter (-sandbox).
    let status = std::fs::read_to_string(format!("/proc/{}/status", qemu_pid(&hull))).unwrap();
    assert!(status.lines().any(|line| line == "Seccomp:\t2"), "{status}");
    let status = machine_status(&hull);
    assert!(status.contains("writes on the host: "), "{status}");
    assert!(!status.contains(dir), "{status}");

    // Shared (with the machine stopped), the directory is written.
    let output = run(&hull, &["machine", "set", "--share", dir]);
    assert_one_line_error(&output, FAILURE, "hull machine stop");
    ok(&hull, &["machine", "stop"]);
    let settings = ok(&hull, &["machine", "set", "--share", dir]);
    assert!(settings.contains(dir), "{settings}");
    let writing = |command: &[&str], script: &str| {
        let bound = ["-v", &bind, "--rootfs", rootfs, "--", "sh", "-c", script];
        ok(&hull, &[command, &bound[..]].concat());
    };
    writing(&["run", "--rm"], "echo container > /data/file");
    assert_eq!(read_file(), "container\n");
    assert!(machine_status(&hull).contains(dir));
    // A container made to write it, started only once it is no longer
    // shared (below).
    writing(&["create", "--name", "keeper"], "echo again > /data/file");

    // Settings that differ from what the running machine writes (as those
    // of a machine an older hull started): commands say what applies them.
    std::fs::write(
        hull.root().join("machine/settings.json"),
        r#"{"cpus": 1, "memory_mib": 4096, "idle_timeout_secs": 300, "shares": ["/tmp"]}"#,
    )
    .unwrap();
    let output = run(&hull, &["ps", "-a", "-q"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("its settings /tmp: `hull machine stop`"),
        "{output:?}"
    );
    ok(&hull, &["machine", "stop"]);
    let settings = ok(&hull, &["machine", "set", "--unshare", "/tmp"]);
    assert!(settings.contains("shared writable: none"), "{settings}");
    // The container's bind is refused as a new one would be, before the
    // machine starts, and the file keeps what it had.
    let output = run(&hull, &["start", "keeper"]);
    assert_one_line_error(
        &output,
        FAILURE,
        &format!("the path {dir} is not shared writable with the hull machine"),
    );
    assert_eq!(read_file(), "container\n");
    assert!(machine_status(&hull).starts_with("hull machine: stopped"));
    ok(&hull, &["rm", "keeper"]);
    assert_clean(&hull);
}
