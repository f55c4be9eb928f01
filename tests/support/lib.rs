//! Helpers shared by the end-to-end tests: the built `hull` binary, a busybox
//! root filesystem, and a per-test state root.

pub mod registry;
pub mod script;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The repository root (the workspace this crate belongs to).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository root")
        .to_owned()
}

/// `target/<profile>/`, next to the `deps/` directory tests run from: where
/// cargo puts the binaries of this crate and of hull.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps")
        .to_owned()
}

/// The `hull` binary of the same cargo profile as this test executable
/// (`target/<profile>/hull`, next to the `deps/` directory tests run from).
/// `scripts/build` (or `cargo build -p hull`) must have built it.
pub fn hull_binary() -> PathBuf {
    let hull = profile_dir().join("hull");
    assert!(
        hull.is_file(),
        "{} is missing: build it first (scripts/build)",
        hull.display()
    );
    hull
}

/// A busybox root filesystem made once per test process by
/// `scripts/make-busybox-rootfs`, removed when the process exits (statics are
/// never dropped, so a `TempDir` kept in one would stay behind in /tmp).
pub fn busybox_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    extern "C" fn remove_rootfs() {
        if let Some(dir) = ROOTFS.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    ROOTFS.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("hull-rootfs-")
            .tempdir()
            .expect("temp dir for the rootfs")
            .keep();
        // SAFETY: `remove_rootfs` is an `extern "C"` function without
        // arguments, as atexit requires, and touches only `ROOTFS` (empty if
        // the process exits before it is set: the directory then stays).
        unsafe { libc::atexit(remove_rootfs) };
        let status = Command::new(repo_root().join("scripts/make-busybox-rootfs"))
            .arg(&dir)
            .status()
            .expect("run scripts/make-busybox-rootfs");
        assert!(status.success(), "make-busybox-rootfs failed");
        dir
    })
}

/// A `hull` invocation with its own empty state root, so tests never share
/// or leak state.
pub struct Hull {
    root: tempfile::TempDir,
}

impl Default for Hull {
    fn default() -> Self {
        Self::new()
    }
}

impl Hull {
    pub fn new() -> Hull {
        let root = tempfile::Builder::new()
            .prefix("hull-state-")
            .tempdir()
            .expect("temp dir for the state root");
        Hull { root }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A command running `hull --root <this root> ARGS...`.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(hull_binary());
        command.arg("--root").arg(self.root.path()).args(args);
        command
    }

    /// Runs `hull ARGS...` to completion with `stdin` as its input.
    pub fn run<I, S>(&self, args: I, stdin: &[u8]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        output_with_stdin(self.command(args), stdin)
    }

    /// Stops this root's hull machine if it runs (where this host's KVM
    /// cannot run hull's guest, commands that need VMs start it).
    pub fn stop_machine(&self) -> Output {
        self.run(["machine", "stop"], b"")
    }

    /// Processes still running whose command line mentions this state root:
    /// after a container is gone there must be none.
    pub fn leftover_processes(&self) -> Vec<String> {
        let needle = self.root.path().to_string_lossy().into_owned();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&needle)
                && entry.file_name() != std::process::id().to_string().as_str()
            {
                found.push(cmdline);
            }
        }
        found
    }
}

impl Drop for Hull {
    /// No test leaves a hull machine running, even a failing one.
    fn drop(&mut self) {
        if self.root.path().join("machine").exists() {
            let _ = self.stop_machine();
        }
    }
}

/// How long one hull command or one test-host script may run: a hang then
/// fails its test with the output so far instead of stalling the whole run.
pub const TIME_LIMIT: Duration = Duration::from_secs(20 * 60);

/// Runs `command` to completion, feeding it `stdin` and capturing its output;
/// kills it and fails the test if it runs past [`TIME_LIMIT`].
pub fn output_with_stdin(mut command: Command, stdin: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hull");
    let mut input = child.stdin.take().expect("piped stdin");
    let data = stdin.to_vec();
    // The process may exit without reading its input; that is fine.
    thread::spawn(move || input.write_all(&data));
    let stdout = Captured::start(child.stdout.take().expect("piped stdout"));
    let stderr = Captured::start(child.stderr.take().expect("piped stderr"));

    let deadline = Instant::now() + TIME_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for hull") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} ran past {TIME_LIMIT:?}; its output so far:\n{}{}",
                String::from_utf8_lossy(&stdout.finish()),
                String::from_utf8_lossy(&stderr.finish())
            );
        }
        thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: stdout.finish(),
        stderr: stderr.finish(),
    }
}

/// A pipe read to its end in the background.
struct Captured {
    data: Arc<Mutex<Vec<u8>>>,
    reader: thread::JoinHandle<()>,
}

impl Captured {
    /// How long to wait for the pipe's end once its process is gone: a
    /// process it left behind may still hold the pipe open.
    const LINGER: Duration = Duration::from_secs(10);

    fn start(mut pipe: impl Read + Send + 'static) -> Captured {
        let data = Arc::new(Mutex::new(Vec::new()));
        let sink = data.clone();
        let reader = thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(read @ 1..) = pipe.read(&mut buffer) {
                sink.lock()
                    .expect("capture lock")
                    .extend_from_slice(&buffer[..read]);
            }
        });
        Captured { data, reader }
    }

    /// What was read: all of it, unless the pipe stays open past [`Self::LINGER`].
    fn finish(self) -> Vec<u8> {
        let deadline = Instant::now() + Self::LINGER;
        while !self.reader.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let data = self.data.lock().expect("capture lock");
        data.clone()
    }
}

/// stderr without hull's one-line notice that the hull machine starts, so
/// tests can compare the container's own stderr exactly.
pub fn container_stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| !(line.starts_with("hull: ") && line.contains("starting the hull machine")))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// No process and no runtime file of `hull`'s state root is left: in its
/// hull machine, if one runs (no monitor or VMM, nothing under `run/`, which
/// is the machine's own there), and, with the machine stopped, on the host.
pub fn assert_clean(hull: &Hull) {
    if hull.root().join("machine/control.sock").exists() {
        let script = format!(
            "ls -A {}/run; pgrep -f -- '__[m]onitor|__[v]mm' || true",
            hull.root().display()
        );
        let inside = hull.run(["machine", "exec", "sh", "-c", &script], b"");
        assert!(
            inside.status.success(),
            "hull machine exec: {}",
            String::from_utf8_lossy(&inside.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&inside.stdout),
            "",
            "runtime files or processes left in the hull machine"
        );
    }
    let stopped = hull.stop_machine();
    assert!(
        stopped.status.success(),
        "hull machine stop: {}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    assert_eq!(
        hull.leftover_processes(),
        Vec::<String>::new(),
        "processes left behind"
    );
    let run_dir = hull.root().join("run");
    if run_dir.exists() {
        let left: Vec<_> = std::fs::read_dir(&run_dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "runtime files left behind: {left:?}");
    }
}

/// The command exited with 0; its stderr (besides the test-host notice)
/// shown otherwise.
pub fn assert_succeeded(output: &Output) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        container_stderr(output)
    );
}

/// A one-line error on stderr (besides the test-host notice) naming `what`,
/// and Docker's exit code for it.
pub fn assert_one_line_error(output: &Output, code: i32, what: &str) {
    let stderr = container_stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line expected, got: {stderr}"
    );
    assert!(
        stderr.starts_with("hull: ") && stderr.contains(what),
        "{stderr}"
    );
}
