//! One running test host: a QEMU process (TCG, nested SVM) booting the
//! test host image, with the host's root shared read-only over 9p (and, for
//! the hull machine, some directories writable) and the relay channel
//! exposed as a unix socket.

use std::env;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tempfile::TempDir;

use super::image::Image;
use super::privileges;
use hull_runtime::child_process;
use hull_runtime::signals::Signals;
use hull_runtime::Boot;

const QEMU: &str = "qemu-system-x86_64";
/// Name of the virtio-serial port the guest agent relays on; `/init` links
/// it as `/dev/virtio-ports/<name>`.
const RELAY_PORT: &str = "hull.relay";

/// Guest RAM in MiB; `HULL_TESTHOST_MEMORY` overrides it.
const DEFAULT_MEMORY_MIB: u32 = 2048;
/// vCPUs; `HULL_TESTHOST_CPUS` overrides it. One: with two, QEMU TCG's
/// emulated SVM now and then wedges the test host for good while it runs
/// several guests (both vCPUs busy, nothing on the console, its shell dead;
/// seen 2 times in 12 runs of the attach test), triple-faults a guest or
/// crashes the test host's kernel. With one, none of it was ever seen.
const DEFAULT_CPUS: u32 = 1;

/// The guest's side of the test host's second serial port, where `/init`
/// beats (see `watchdog`).
const HEARTBEAT_TTY: &str = "/dev/ttyS1";

/// The 9p mount tag of writable share N is this with N appended; `/init`
/// mounts them in the order of its `hull.share=` words.
const SHARE_TAG: &str = "hullshare";
/// The kernel's command line buffer on x86 (COMMAND_LINE_SIZE), with its
/// terminating NUL; a longer line is cut off.
const KERNEL_CMDLINE_MAX: usize = 2048;
/// QEMU's seccomp filter (QEMU 7.2's names): no obsolete system calls, no
/// privilege changes (setuid and the like), no new processes, no changes
/// to scheduling or CPU affinity. 9p passthrough needs none of them.
const SANDBOX: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/// How often, in milliseconds, waiting loops look at QEMU and the socket.
const POLL_MS: u16 = 20;

/// `path` made absolute, as a kernel command line value.
pub fn cmdline_path(path: &Path, what: &str) -> Result<String> {
    let path = path
        .canonicalize()
        .with_context(|| format!("cannot resolve {what} path {}", path.display()))?;
    path.to_str()
        .filter(|path| !path.contains(char::is_whitespace))
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "{what} path {} must be UTF-8 without spaces for the KVM test host",
                path.display()
            )
        })
}

/// What goes into a test host VM's QEMU command line beyond its channel to
/// the host: the one-shot test host and the hull machine share all of it.
pub struct VmShape<'a> {
    pub image: &'a Image,
    /// The guest agent `/init` runs in relay mode.
    pub agent: &'a Path,
    /// Further `hull.*` kernel command line words for `/init`.
    pub cmdline: Vec<String>,
    pub cpus: u32,
    pub memory_mib: u32,
    /// Host directories (resolved, none inside another) the guest may
    /// write, each a 9p share of its own that `/init` mounts over its path
    /// on the host's root, which the guest only reads. The hull machine
    /// writes the hull root and its settings' shares; the test host none.
    pub writable_shares: &'a [PathBuf],
    pub console_log: &'a Path,
    pub qemu_log: File,
}

impl VmShape<'_> {
    /// The QEMU command for this shape, without a channel to the host.
    pub fn qemu_command(self) -> Result<Command> {
        let mut cmdline = format!(
            "console=ttyS0 panic=-1 quiet hull.agent={}",
            cmdline_path(self.agent, "the guest agent")?
        );
        for word in &self.cmdline {
            cmdline.push(' ');
            cmdline.push_str(word);
        }
        for share in self.writable_shares {
            cmdline.push_str(" hull.share=");
            cmdline.push_str(&cmdline_path(share, "the shared directory")?);
        }
        if cmdline.len() >= KERNEL_CMDLINE_MAX {
            bail!(
                "the machine's kernel command line is {} bytes, the kernel takes {}: share fewer \
                 or shorter directories (`hull machine set --unshare`)",
                cmdline.len(),
                KERNEL_CMDLINE_MAX - 1
            );
        }
        let mut command = Command::new(QEMU);
        command
            .args([
                "-nodefaults",
                "-no-user-config",
                "-no-reboot",
                "-display",
                "none",
            ])
            .args(["-sandbox", SANDBOX])
            .args(["-accel", "tcg,thread=multi", "-cpu", "EPYC-v3,+svm,+npt"])
            .args(["-smp", &self.cpus.to_string()])
            .args(["-m", &self.memory_mib.to_string()])
            .arg("-kernel")
            .arg(&self.image.kernel)
            .arg("-initrd")
            .arg(&self.image.initrd)
            .args(["-append", &cmdline])
            // QEMU refuses every write through it, whatever the guest asks.
            .args([
                "-virtfs",
                "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            ]);
        for (index, share) in self.writable_shares.iter().enumerate() {
            // QEMU runs as root, so ownership, modes, device nodes and
            // xattrs written by the guest land on the host as they are.
            let path = path_str(share)?.replace(',', ",,");
            command.args([
                "-virtfs",
                &format!(
                    "local,path={path},mount_tag={SHARE_TAG}{index},\
                     security_model=passthrough,multidevs=remap"
                ),
            ]);
        }
        command
            .arg("-serial")
            .arg(format!("file:{}", path_str(self.console_log)?))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.qemu_log);
        Ok(command)
    }
}

/// Starts `command` (a [`VmShape::qemu_command`]) tied to this thread,
/// with only the capabilities it needs: this thread's bounding set is
/// limited to them for good (see [`privileges`]).
pub fn spawn_qemu(mut command: Command) -> Result<Child> {
    privileges::limit_for_qemu()?;
    child_process::tie_to_this_process(&mut command);
    command.spawn().map_err(|err| match err.kind() {
        ErrorKind::NotFound => anyhow::anyhow!(
            "{QEMU} not found; the KVM test host needs it: apt-get install qemu-system-x86"
        ),
        _ => anyhow::Error::new(err).context(format!("cannot start {QEMU}")),
    })
}

/// A test host VM. Dropping it kills QEMU and removes its run directory.
pub struct TestHostVm {
    qemu: Child,
    run_dir: RunDir,
}

impl TestHostVm {
    /// Starts QEMU on `image`; the test host's `/init` will run `agent` in
    /// relay mode.
    pub fn start(image: &Image, agent: &Path) -> Result<TestHostVm> {
        let run_dir = RunDir::create()?;
        let shape = VmShape {
            image,
            agent,
            cmdline: vec![format!("hull.heartbeat={HEARTBEAT_TTY}")],
            cpus: env_number("HULL_TESTHOST_CPUS", DEFAULT_CPUS)?,
            memory_mib: env_number("HULL_TESTHOST_MEMORY", DEFAULT_MEMORY_MIB)?,
            writable_shares: &[],
            console_log: &run_dir.console_log(),
            qemu_log: File::create(run_dir.qemu_log()).context("cannot create the QEMU log")?,
        };
        let mut command = shape.qemu_command()?;
        command
            // The second serial port, after the console's.
            .arg("-serial")
            .arg(format!("file:{}", path_str(&run_dir.heartbeat())?))
            .args(["-device", "virtio-serial-pci"])
            .arg("-chardev")
            .arg(socket_chardev(&run_dir.relay_socket())?)
            .args([
                "-device",
                &format!("virtserialport,chardev=relay,name={RELAY_PORT}"),
            ]);
        let qemu = spawn_qemu(command)?;
        Ok(TestHostVm { qemu, run_dir })
    }

    /// Connects to the relay channel and waits until the guest agent has
    /// spoken, so the stream is ready for a session. A terminating signal
    /// from `signals` ends the wait.
    pub fn connect_relay(&mut self, timeout: Duration, signals: &Signals) -> Result<Boot> {
        let deadline = Instant::now() + timeout;
        let socket = self.run_dir.relay_socket();
        let stream = loop {
            match UnixStream::connect(&socket) {
                Ok(stream) => break stream,
                Err(err)
                    if matches!(
                        err.kind(),
                        ErrorKind::NotFound | ErrorKind::ConnectionRefused
                    ) =>
                {
                    if let Some(signal) = self.wait_step(deadline, timeout, signals)? {
                        return Ok(Boot::Interrupted(signal));
                    }
                    thread::sleep(Duration::from_millis(POLL_MS.into()));
                }
                Err(err) => {
                    return Err(err).context("cannot connect to the test host's relay socket")
                }
            }
        };
        // The agent speaks first; readable means greeted (or hung up, which
        // the session reports).
        let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
        loop {
            match poll(&mut fds, PollTimeout::from(POLL_MS)) {
                Ok(0) | Err(Errno::EINTR) => {}
                Ok(_) => break,
                Err(errno) => return Err(errno).context("cannot poll the relay socket"),
            }
            if let Some(signal) = self.wait_step(deadline, timeout, signals)? {
                return Ok(Boot::Interrupted(signal));
            }
        }
        Ok(Boot::Ready(stream))
    }

    /// Fails if QEMU has exited or `deadline` (`timeout` after the start)
    /// has passed; returns a terminating signal that arrived meanwhile.
    fn wait_step(
        &mut self,
        deadline: Instant,
        timeout: Duration,
        signals: &Signals,
    ) -> Result<Option<i32>> {
        if let Some(status) = self.qemu.try_wait().context("cannot check on QEMU")? {
            bail!("the test host VM exited early ({status})");
        }
        if Instant::now() >= deadline {
            bail!("the test host's guest agent did not come up within {timeout:?}");
        }
        Ok(signals.interruption())
    }

    /// QEMU's process ID.
    pub fn pid(&self) -> u32 {
        self.qemu.id()
    }

    /// The file that grows by a byte with each of the guest's heartbeats.
    pub fn heartbeat(&self) -> PathBuf {
        self.run_dir.heartbeat()
    }

    /// Waits up to `timeout` for the VM to power itself off, then kills it.
    pub fn shut_down(mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.qemu.try_wait() {
                Ok(None) => thread::sleep(Duration::from_millis(POLL_MS.into())),
                Ok(Some(_)) | Err(_) => return,
            }
        }
        // Drop kills it.
    }

    /// The last lines the VM and QEMU wrote, for error reports.
    pub fn diagnostics(&self, lines: usize) -> String {
        log_tails(
            &[
                ("test host console", &self.run_dir.console_log()),
                ("QEMU", &self.run_dir.qemu_log()),
            ],
            lines,
        )
    }
}

/// The last `lines` non-empty lines of each log, under a heading naming it.
pub fn log_tails(logs: &[(&str, &Path)], lines: usize) -> String {
    let mut report = String::new();
    for (what, path) in logs {
        let text = fs::read(path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        let text = text.unwrap_or_default();
        let tail: Vec<&str> = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            // TCG lacks a few EPYC features; QEMU warns about each one.
            .filter(|line| !line.contains("TCG doesn't support requested feature"))
            .collect();
        if tail.is_empty() {
            continue;
        }
        report.push_str(&format!("\n--- last lines of the {what} output ---"));
        for line in &tail[tail.len().saturating_sub(lines)..] {
            report.push('\n');
            report.push_str(line);
        }
    }
    report
}

impl Drop for TestHostVm {
    fn drop(&mut self) {
        if let Ok(None) = self.qemu.try_wait() {
            let _ = self.qemu.kill();
            let _ = self.qemu.wait();
        }
    }
}

fn socket_chardev(socket: &Path) -> Result<String> {
    let path = path_str(socket)?;
    if path.contains(',') {
        bail!("the relay socket path {path} must not contain a comma");
    }
    Ok(format!("socket,id=relay,path={path},server=on,wait=off"))
}

pub fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

pub fn env_number(name: &str, default: u32) -> Result<u32> {
    match env::var(name) {
        Ok(value) => value
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("{name}={value} is not a positive number")),
        Err(_) => Ok(default),
    }
}

/// A private directory for one VM's socket and logs, removed on drop.
struct RunDir(TempDir);

impl RunDir {
    fn create() -> Result<RunDir> {
        let dir = tempfile::Builder::new()
            .prefix("hull-testhost-")
            .tempdir()
            .context("cannot create a directory for the test host's socket and logs")?;
        Ok(RunDir(dir))
    }

    fn relay_socket(&self) -> PathBuf {
        self.0.path().join("relay.sock")
    }

    fn console_log(&self) -> PathBuf {
        self.0.path().join("console.log")
    }

    fn qemu_log(&self) -> PathBuf {
        self.0.path().join("qemu.log")
    }

    fn heartbeat(&self) -> PathBuf {
        self.0.path().join("heartbeat")
    }
}
