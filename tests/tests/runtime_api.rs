//! `hull-runtime` driven through its API alone, as another front end (a
//! compose command, a containerd shim) would: create, start, exec, logs,
//! stop, run attached (held by a thread, stopped and killed from another)
//! and remove, with real VMs.
//!
//! This test binary is such a front end, so it has its own `main` (no test
//! harness): it runs the runtime's helper processes (`__monitor`, `__vmm`)
//! itself, through `hull_runtime::helper::dispatch`. Where this host's KVM
//! cannot run hull's guest it runs itself again inside the KVM test host.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hull_e2e::{busybox_rootfs, hull_binary, output_with_stdin, profile_dir};
use hull_runtime::host::Kvm;
use hull_runtime::{
    CreateOptions, Error, ExecOptions, ExitStatus, LogsOptions, Outcome, RootfsChoice, Runtime,
    Status, Stdio, StopOptions, NO_NETWORK,
};

/// Set in the copy of this test that runs inside the test host.
const INSIDE: &str = "HULL_API_TEST_INSIDE";

fn main() -> ExitCode {
    if let Some(ended) = hull_runtime::helper::dispatch() {
        return match ended {
            Ok(code) => ExitCode::from(code),
            Err(err) => {
                eprintln!("helper: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    if Kvm::detect() != Kvm::Hardware && std::env::var_os(INSIDE).is_none() {
        run_in_test_host();
    } else {
        drives_a_container_through_the_api();
    }
    println!("test drives_a_container_through_the_api ... ok");
    ExitCode::SUCCESS
}

/// Runs this test binary again inside a fresh KVM test host.
fn run_in_test_host() {
    let mut command = Command::new(hull_binary());
    command
        .args(["__testhost-exec", "--"])
        .arg(std::env::current_exe().expect("this test's path"))
        .env(INSIDE, "1")
        .env("HULL_AGENT", static_agent());
    let output = output_with_stdin(command, b"");
    assert!(
        output.status.success(),
        "the test failed in the test host ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The static guest agent `scripts/build` makes; the runtime looks for it
/// next to the program it runs in, which here is this test.
fn static_agent() -> PathBuf {
    let profile = profile_dir();
    let name = profile.file_name().expect("a profile directory");
    let agent = profile
        .parent()
        .expect("target/")
        .join("x86_64-unknown-linux-gnu")
        .join(name)
        .join("hull-agent");
    assert!(
        agent.is_file(),
        "{} is missing: run scripts/build",
        agent.display()
    );
    agent
}

fn drives_a_container_through_the_api() {
    let root = tempfile::tempdir().expect("a state root");
    let runtime = Runtime::new(root.path());
    let rootfs = busybox_rootfs();

    // Created, then started in the background under its own monitor.
    let script = "echo started; echo oops >&2; \
                  trap 'echo stopping; exit 7' TERM; while :; do sleep 0.2; done";
    let created = runtime
        .create(options(rootfs, "api", &["sh", "-c", script]))
        .expect("create");
    assert_eq!(created.name, "api");
    assert_eq!(status(&runtime, "api"), Status::Created);
    runtime.start("api").expect("start");
    assert_eq!(status(&runtime, &created.id[..12]), Status::Running);

    // A second process, with input, output and an exit code of its own.
    let (stdout, captured) = capture();
    let mut stdio = Stdio::new(stdout, Box::new(std::io::sink()));
    stdio.stdin = Some(Box::new(Cursor::new(b"piped".to_vec())));
    let exec = ExecOptions {
        command: words(&["sh", "-c", "echo from-exec $HOSTNAME; cat; exit 3"]),
        ..ExecOptions::default()
    };
    let outcome = runtime.exec("api", exec, stdio).expect("exec");
    assert_eq!(outcome, exited(3));
    let hostname = &created.id[..12];
    assert_eq!(text(&captured), format!("from-exec {hostname}\npiped"));

    // Its output so far, stream by stream.
    let logs = log_lines(&runtime, "api");
    assert!(
        logs.contains(&("stdout".into(), "started\n".into())),
        "{logs:?}"
    );
    assert!(
        logs.contains(&("stderr".into(), "oops\n".into())),
        "{logs:?}"
    );

    // What callers must tell apart comes typed.
    let taken = runtime.create(options(rootfs, "api", &["true"]));
    assert!(matches!(taken, Err(Error::NameInUse { .. })), "{taken:?}");
    let running = runtime.remove("api", Default::default());
    assert!(matches!(running, Err(Error::Running { .. })), "{running:?}");
    let missing = runtime.start("no-such-container");
    assert!(
        matches!(missing, Err(Error::NoSuchContainer(_))),
        "{missing:?}"
    );

    // SIGTERM reaches the process, which ends as its trap says.
    runtime
        .stop("api", StopOptions::within(Some(Duration::from_secs(60))))
        .expect("stop");
    let state = runtime.inspect("api").expect("inspect").state;
    assert_eq!((state.status, state.exit_code), (Status::Exited, Some(7)));
    assert!(log_lines(&runtime, "api").contains(&("stdout".into(), "stopping\n".into())));
    let not_running = runtime.exec("api", ExecOptions::default(), quiet());
    assert!(
        matches!(not_running, Err(Error::NotRunning { .. })),
        "{not_running:?}"
    );

    // One run held by this process, with its input and output here.
    let read = "read line; echo got $line; exit 5";
    let mut attached = options(rootfs, "fg", &["sh", "-c", read]);
    attached.interactive = true;
    runtime.create(attached).expect("create fg");
    let (stdout, captured) = capture();
    let mut stdio = Stdio::new(stdout, Box::new(std::io::sink()));
    stdio.stdin = Some(Box::new(Cursor::new(b"hello\n".to_vec())));
    let outcome = runtime
        .run_attached("fg", stdio, Default::default())
        .expect("run attached");
    assert_eq!(outcome, exited(5));
    assert_eq!(text(&captured), "got hello\n");
    assert_eq!(status(&runtime, "fg"), Status::Exited);

    // Held by a thread of this process: stop and kill reach its process
    // and its VM, not this process.
    let trap = "trap 'exit 7' TERM; echo up; while :; do sleep 0.2; done";
    runtime
        .create(options(rootfs, "held", &["sh", "-c", trap]))
        .expect("create held");
    let held = hold_in_a_thread(&runtime, "held");
    runtime
        .stop("held", StopOptions::within(Some(Duration::from_secs(60))))
        .expect("stop held");
    assert_eq!(held.join().expect("holder").expect("run"), exited(7));
    let held = hold_in_a_thread(&runtime, "held");
    runtime.kill("held", libc::SIGKILL).expect("kill held");
    let killed = Outcome::Exited {
        status: ExitStatus::Signal(libc::SIGKILL),
        oom_killed: false,
    };
    assert_eq!(held.join().expect("holder").expect("run"), killed);
    let state = runtime.inspect("held").expect("inspect held").state;
    assert_eq!((state.status, state.exit_code), (Status::Exited, Some(137)));

    // A command that is not there is an error of its own kind.
    runtime
        .create(options(rootfs, "lost", &["/no/such/command"]))
        .expect("create lost");
    let lost = runtime.run_attached("lost", quiet(), Default::default());
    assert!(matches!(lost, Err(Error::CommandNotFound(_))), "{lost:?}");

    // Removed, nothing is left: no records, no runtime files.
    for name in ["api", "fg", "held", "lost"] {
        runtime.remove(name, Default::default()).expect("remove");
    }
    assert!(runtime.list().expect("list").is_empty());
    let run_dir = root.path().join("run");
    let left: Vec<_> = std::fs::read_dir(&run_dir)
        .map(|dir| dir.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "runtime files left: {left:?}");
}

/// A container of the busybox root running `command`, named `name`, on no
/// network (this test is about the API, not the network).
fn options(rootfs: &Path, name: &str, command: &[&str]) -> CreateOptions {
    let mut options = CreateOptions::new(RootfsChoice::Directory(rootfs.to_owned()));
    options.name = Some(name.to_owned());
    options.command = words(command);
    options.memory_mib = 128;
    options.network.networks = vec![NO_NETWORK.to_owned()];
    options
}

fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| word.to_string()).collect()
}

fn status(runtime: &Runtime, name: &str) -> Status {
    runtime.inspect(name).expect("inspect").state.status
}

fn exited(code: i32) -> Outcome {
    Outcome::Exited {
        status: ExitStatus::Code(code),
        oom_killed: false,
    }
}

/// (stream, text) of every entry of the container's log.
fn log_lines(runtime: &Runtime, name: &str) -> Vec<(String, String)> {
    runtime
        .logs(name, LogsOptions::default())
        .expect("logs")
        .map(|entry| entry.map(|entry| (entry.stream, entry.log)).expect("entry"))
        .collect()
}

/// Runs the container `name` attached in a thread of its own, and returns
/// once its process has said "up".
fn hold_in_a_thread(runtime: &Runtime, name: &str) -> JoinHandle<hull_runtime::Result<Outcome>> {
    let (stdout, captured) = capture();
    let (runtime, name) = (runtime.clone(), name.to_owned());
    let stdio = Stdio::new(stdout, Box::new(std::io::sink()));
    let holder = thread::spawn(move || runtime.run_attached(&name, stdio, Default::default()));
    let deadline = Instant::now() + Duration::from_secs(120);
    while text(&captured) != "up\n" {
        assert!(Instant::now() < deadline, "no word from the container");
        assert!(!holder.is_finished(), "the run ended: {}", text(&captured));
        thread::sleep(Duration::from_millis(100));
    }
    holder
}

/// No input, output dropped.
fn quiet() -> Stdio {
    Stdio::new(Box::new(std::io::sink()), Box::new(std::io::sink()))
}

/// A writer whose bytes end up in the returned buffer.
fn capture() -> (Box<dyn Write + Send>, Arc<Mutex<Vec<u8>>>) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    (Box::new(Captured(buffer.clone())), buffer)
}

struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture lock").extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn text(buffer: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buffer.lock().expect("capture lock")).into_owned()
}
