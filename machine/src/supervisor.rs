//! `hull __machine`: the process that holds the hull machine, as a
//! container's monitor holds its VM. It owns QEMU (which dies with it), and
//! serves the control socket: relay sessions bridged to the machine's agent,
//! port forwards, status and stop. It stops the machine when asked, or once
//! it has been idle for the idle timeout; whenever the machine ends, the
//! containers it ran are recorded as exited.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::control::{self, Request, Status};
use crate::layout::Layout;
use crate::ports::{self, PortForwards, NETDEV};
use crate::relay::run_quietly;
use crate::settings::{list, Settings};
use crate::shares::WritableShares;
use crate::GUEST_RELAY_PORT;
use hull_runtime::assets;
use hull_runtime::fsutil::write_atomically;
use hull_runtime::{ContainerInfo, RestartPolicy, Runtime};

use crate::testhost::image::Image;
use crate::testhost::vm::{cmdline_path, log_tails, path_str, spawn_qemu, VmShape};

/// How long the machine may take from QEMU's start to its relay answering.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// How often the supervisor looks at QEMU, the containers and the clock.
const TICK: Duration = Duration::from_millis(500);
/// How long running containers get to stop when the machine stops.
const STOP_GRACE_SECS: u32 = 10;
/// Console and QEMU lines shown when the machine fails to come up.
const DIAGNOSTIC_LINES: usize = 20;
/// Where programs in the machine write temporary files: the host's if
/// shared, else the machine's own (tmpfs).
const TEMPORARY_DIRS: [&str; 2] = ["/tmp", "/var/tmp"];

/// What the control socket's threads share with the main loop.
struct Shared {
    relay_port: u16,
    token: String,
    settings: Settings,
    shares: WritableShares,
    qemu_pid: u32,
    started: Instant,
    sessions: AtomicUsize,
    stop_requested: AtomicBool,
    /// Set once the machine is on its way down: no new sessions.
    stopping: AtomicBool,
    forwards: Mutex<PortForwards>,
    runtime: Runtime,
}

/// Why the machine ends.
enum End {
    Requested,
    Idle(Duration),
    QemuExited(String),
}

/// Holds the machine until it ends. `lock` is the machine's lock, taken
/// by the command that started this process (see `client`).
pub fn supervise(root: &Path, lock: File) -> Result<()> {
    let layout = Layout::new(root);
    let _up = lock;
    // Hold no directory of the user's.
    std::env::set_current_dir("/").context("cannot change to /")?;
    let stop_signal = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT, SIGHUP] {
        signal_hook::flag::register(signal, stop_signal.clone()).context("cannot catch signals")?;
    }
    let settings = Settings::load(&layout)?;
    for gone in settings.gone_shares() {
        eprintln!(
            "hull machine: the shared directory {} is gone: not shared (`hull machine set --unshare` it)",
            gone.display()
        );
    }
    let shares = WritableShares::for_machine(root, &settings)?;
    // Those running when it went down: the last supervisor's list, or, if it
    // died with the machine, those still recorded as held.
    let runtime = Runtime::new(root);
    let held = held_containers(&runtime);
    let mut ran = take_remembered(&layout);
    ran.extend(ids(&held));
    end_containers(&runtime, &held, "the hull machine was down");
    let token = write_token(&layout)?;
    let relay_port = free_loopback_port()?;

    let mut qemu = start_qemu(root, &layout, &settings, &shares, relay_port)?;
    if let Err(err) = wait_for_relay(&mut qemu, relay_port, &token, &stop_signal) {
        let _ = qemu.kill();
        let _ = qemu.wait();
        return Err(err.context(format!(
            "the hull machine did not come up{}",
            log_tails(
                &[
                    ("machine console", &layout.console_log()),
                    ("QEMU", &layout.qemu_log())
                ],
                DIAGNOSTIC_LINES
            )
        )));
    }
    eprintln!(
        "hull machine: up (QEMU pid {}, relay on 127.0.0.1:{relay_port}); it writes {}",
        qemu.id(),
        list(shares.paths())
    );

    let shared = Arc::new(Shared {
        relay_port,
        token,
        settings,
        shares,
        qemu_pid: qemu.id(),
        started: Instant::now(),
        sessions: AtomicUsize::new(0),
        stop_requested: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        forwards: Mutex::new(PortForwards::new(layout.qmp_socket())),
        runtime,
    });
    let socket = layout.control_socket();
    let _ = fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)
        .with_context(|| format!("cannot listen on {}", socket.display()))?;
    {
        let shared = shared.clone();
        thread::spawn(move || serve_control(listener, &shared));
    }
    {
        let shared = shared.clone();
        thread::spawn(move || restart_containers(&shared, &ran));
    }

    let end = watch(&mut qemu, &shared, &stop_signal);
    // From now on commands wait for the machine to go and start another.
    shared.stopping.store(true, Ordering::SeqCst);
    let running = ids(&held_containers(&shared.runtime));
    remember_running(&layout, &running);
    if !matches!(end, End::QemuExited(_)) {
        stop_containers(&shared, &running);
    }
    let _ = fs::remove_file(&socket);
    let _ = qemu.kill();
    let _ = qemu.wait();
    let why = match &end {
        End::Requested => "the hull machine was stopped".to_owned(),
        End::Idle(timeout) => format!("the hull machine stopped after {timeout:?} idle"),
        End::QemuExited(status) => format!("the hull machine's QEMU exited ({status})"),
    };
    // Listed again: a session that began before the stop may have started
    // one since.
    end_containers(&shared.runtime, &held_containers(&shared.runtime), &why);
    let _ = fs::remove_file(layout.token());
    eprintln!("hull machine: down: {why}");
    Ok(())
}

/// Runs until the machine should end: keeps the port forwards in line with
/// the running containers and watches QEMU, the stop request and idleness.
fn watch(qemu: &mut Child, shared: &Shared, stop_signal: &AtomicBool) -> End {
    let mut busy_at = Instant::now();
    let mut reported = Vec::new();
    loop {
        match qemu.try_wait() {
            Ok(Some(status)) => return End::QemuExited(status.to_string()),
            Ok(None) => {}
            Err(err) => return End::QemuExited(err.to_string()),
        }
        if shared.stop_requested.load(Ordering::SeqCst) || stop_signal.load(Ordering::SeqCst) {
            return End::Requested;
        }
        let held = held_containers(&shared.runtime);
        let failures = sync_forwards(shared, &ports::wanted(&held));
        // A forward that keeps failing is retried each tick, reported once.
        if failures != reported {
            for failure in &failures {
                eprintln!("hull machine: {failure}");
            }
            reported = failures;
        }
        if !held.is_empty() || shared.sessions.load(Ordering::SeqCst) > 0 {
            busy_at = Instant::now();
        }
        if let Some(timeout) = shared.settings.idle_timeout() {
            if busy_at.elapsed() >= timeout {
                return End::Idle(timeout);
            }
        }
        thread::sleep(TICK);
    }
}

/// The containers whose monitors (the machine's processes) hold them, as
/// recorded; one whose records cannot be read is passed over.
fn held_containers(runtime: &Runtime) -> Vec<ContainerInfo> {
    let containers = match runtime.list_as_recorded() {
        Ok(containers) => containers,
        Err(err) => {
            eprintln!("hull machine: cannot list the containers: {err:#}");
            return Vec::new();
        }
    };
    containers
        .into_iter()
        .filter(|container| container.state.monitor_pid().is_some())
        .collect()
}

fn sync_forwards(shared: &Shared, wanted: &HashSet<ports::Forward>) -> Vec<String> {
    shared
        .forwards
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .sync(wanted)
}

fn serve_control(listener: UnixListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let shared = shared.clone();
        thread::spawn(move || {
            if let Err(err) = serve_client(client, &shared) {
                eprintln!("hull machine: control: {err:#}");
            }
        });
    }
}

fn serve_client(mut client: UnixStream, shared: &Shared) -> Result<()> {
    let request = control::receive(&mut client)?;
    if shared.stopping.load(Ordering::SeqCst) && request != Request::Stop {
        client.write_all(b"ERR the hull machine is stopping\n")?;
        return Ok(());
    }
    match request {
        Request::Session => {
            let relay = match connect_relay(shared.relay_port, &shared.token) {
                Ok(relay) => relay,
                Err(err) => {
                    writeln!(client, "ERR cannot reach the machine's relay: {err}")?;
                    return Ok(());
                }
            };
            client.write_all(b"OK\n")?;
            shared.sessions.fetch_add(1, Ordering::SeqCst);
            bridge(client, relay);
            shared.sessions.fetch_sub(1, Ordering::SeqCst);
        }
        Request::SyncPorts => {
            let held = held_containers(&shared.runtime);
            let failures = sync_forwards(shared, &ports::wanted(&held));
            client.write_all(b"OK\n")?;
            for failure in failures {
                writeln!(client, "{failure}")?;
            }
        }
        Request::Status => {
            let forwards = shared
                .forwards
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .active()
                .map(ToString::to_string)
                .collect();
            let status = Status {
                supervisor_pid: std::process::id(),
                qemu_pid: shared.qemu_pid,
                cpus: shared.settings.cpus,
                memory_mib: shared.settings.memory_mib,
                idle_timeout_secs: shared.settings.idle_timeout_secs,
                uptime_secs: shared.started.elapsed().as_secs(),
                sessions: shared.sessions.load(Ordering::SeqCst),
                forwards,
                shares: Some(shared.shares.clone()),
            };
            client.write_all(b"OK\n")?;
            writeln!(client, "{}", serde_json::to_string(&status)?)?;
        }
        Request::Stop => {
            shared.stop_requested.store(true, Ordering::SeqCst);
            client.write_all(b"OK\n")?;
        }
    }
    Ok(())
}

/// Opens a relay connection: the token first, then the agent's session.
fn connect_relay(port: u16, token: &str) -> io::Result<TcpStream> {
    let mut relay = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    relay.set_nodelay(true)?;
    relay.write_all(format!("{token}\n").as_bytes())?;
    Ok(relay)
}

/// Copies bytes both ways until the relay side ends the session.
fn bridge(client: UnixStream, relay: TcpStream) {
    let (Ok(mut from_client), Ok(mut to_relay)) = (client.try_clone(), relay.try_clone()) else {
        return;
    };
    let upstream = thread::spawn(move || {
        let _ = io::copy(&mut from_client, &mut to_relay);
        // The client is done: the agent sees end of file.
        let _ = to_relay.shutdown(Shutdown::Write);
    });
    let (mut from_relay, mut to_client) = (relay, client);
    let _ = io::copy(&mut from_relay, &mut to_client);
    // The session is over either way.
    let _ = to_client.shutdown(Shutdown::Both);
    let _ = from_relay.shutdown(Shutdown::Both);
    let _ = upstream.join();
}

/// Asks the machine's hull to stop `running` (IDs), so they end as
/// `hull stop` ends them.
fn stop_containers(shared: &Shared, running: &[String]) {
    if running.is_empty() {
        return;
    }
    eprintln!("hull machine: stopping {} container(s)", running.len());
    let mut args = vec![
        "stop".to_owned(),
        "-t".to_owned(),
        STOP_GRACE_SECS.to_string(),
    ];
    args.extend_from_slice(running);
    if let Err(err) = run_hull(shared, args) {
        eprintln!("hull machine: cannot stop the containers: {err:#}");
    }
}

/// Starts again those of `ran` (IDs of the containers running when the
/// machine last went down) that have `--restart always` or
/// `unless-stopped`, as Docker does when its daemon comes back.
fn restart_containers(shared: &Shared, ran: &[String]) {
    let Ok(containers) = shared.runtime.list_as_recorded() else {
        return;
    };
    let restart: Vec<String> = containers
        .iter()
        .filter(|container| ran.iter().any(|id| id == container.id()))
        .filter(|container| {
            matches!(
                container.config.restart,
                RestartPolicy::Always | RestartPolicy::UnlessStopped
            )
        })
        .map(|container| container.id().to_owned())
        .collect();
    if restart.is_empty() {
        return;
    }
    eprintln!(
        "hull machine: restarting {} container(s) (--restart)",
        restart.len()
    );
    let mut args = vec!["start".to_owned()];
    args.extend(restart);
    if let Err(err) = run_hull(shared, args) {
        eprintln!("hull machine: cannot restart the containers: {err:#}");
    }
}

/// Runs `hull --root ROOT ARGS...` in the machine through a session of the
/// supervisor's own.
fn run_hull(shared: &Shared, args: Vec<String>) -> Result<u8> {
    let mut argv = vec![
        "--root".to_owned(),
        shared.runtime.root().to_string_lossy().into_owned(),
    ];
    argv.extend(args);
    let relay = connect_relay(shared.relay_port, &shared.token)?;
    // The session's own end of a bridge, as a client's would be.
    let (ours, theirs) = UnixStream::pair()?;
    thread::spawn(move || bridge(theirs, relay));
    run_quietly(ours, argv)
}

/// The IDs of the containers running when the machine went down, kept for
/// its next start.
fn remember_running(layout: &Layout, ids: &[String]) {
    let remembered = serde_json::to_vec(ids)
        .map_err(anyhow::Error::from)
        .and_then(|json| write_atomically(&layout.ran_at_stop(), &json));
    if let Err(err) = remembered {
        eprintln!("hull machine: cannot remember the running containers: {err:#}");
    }
}

/// What [`remember_running`] kept, forgotten now.
fn take_remembered(layout: &Layout) -> Vec<String> {
    let path = layout.ran_at_stop();
    let ids = fs::read(&path)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or_default();
    let _ = fs::remove_file(&path);
    ids
}

fn ids(containers: &[ContainerInfo]) -> Vec<String> {
    containers
        .iter()
        .map(|container| container.id().to_owned())
        .collect()
}

/// Records the `held` containers as exited: their monitors were the
/// machine's processes. Each is checked again under its state's lock (one
/// `hull stop` ended meanwhile keeps its own record); one that cannot be
/// updated is reported.
fn end_containers(runtime: &Runtime, held: &[ContainerInfo], why: &str) {
    for container in held {
        if let Err(err) = runtime.record_monitor_lost(container.id(), why) {
            eprintln!(
                "hull machine: cannot record container {} as exited: {err:#}",
                container.short_id()
            );
        }
    }
}

/// A fresh random token, readable by the owner only.
fn write_token(layout: &Layout) -> Result<String> {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let path = layout.token();
    let _ = fs::remove_file(&path);
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{token}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

/// A loopback port free right now, for QEMU to forward to the relay.
fn free_loopback_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("cannot find a free loopback port for the machine's relay")?;
    Ok(listener.local_addr()?.port())
}

fn start_qemu(
    root: &Path,
    layout: &Layout,
    settings: &Settings,
    shares: &WritableShares,
    relay_port: u16,
) -> Result<Child> {
    let image = Image::prepare().context("cannot prepare the hull machine's image")?;
    let agent = assets::agent_binary()?;
    let run_dir = root.join("run");
    fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
    let console_log = layout.console_log();
    let mut cmdline = vec![
        format!("hull.machine={GUEST_RELAY_PORT}"),
        format!("hull.token={}", cmdline_path(&layout.token(), "the token")?),
        format!(
            "hull.tmpfs={}",
            cmdline_path(&run_dir, "the runtime directory")?
        ),
    ];
    // Temporary directories the host does not share are the machine's own.
    for dir in TEMPORARY_DIRS {
        if !shares.covers(Path::new(dir)) {
            cmdline.push(format!("hull.tmpdir={dir}"));
        }
    }
    let shape = VmShape {
        image: &image,
        agent: &agent,
        cmdline,
        cpus: settings.cpus,
        memory_mib: u32::try_from(settings.memory_mib).with_context(|| {
            format!(
                "{} MiB is more memory than QEMU takes: `hull machine set --memory` a smaller size",
                settings.memory_mib
            )
        })?,
        writable_shares: shares.paths(),
        console_log: &console_log,
        qemu_log: File::create(layout.qemu_log()).context("cannot create the QEMU log")?,
    };
    let qmp = layout.qmp_socket();
    let _ = fs::remove_file(&qmp);
    let mut command = shape.qemu_command()?;
    command
        .args([
            "-netdev",
            &format!("user,id={NETDEV},hostfwd=tcp:127.0.0.1:{relay_port}-:{GUEST_RELAY_PORT}"),
        ])
        .args(["-device", &format!("virtio-net-pci,netdev={NETDEV}")])
        .args([
            "-qmp",
            &format!("unix:{},server=on,wait=off", path_str(&qmp)?),
        ]);
    spawn_qemu(command)
}

/// Waits until the machine's relay answers with an agent's greeting.
fn wait_for_relay(qemu: &mut Child, port: u16, token: &str, stop: &AtomicBool) -> Result<()> {
    let deadline = Instant::now() + BOOT_TIMEOUT;
    loop {
        if let Some(status) = qemu.try_wait().context("cannot check on QEMU")? {
            bail!("QEMU exited ({status})");
        }
        if stop.load(Ordering::SeqCst) {
            bail!("stopped while it booted");
        }
        if Instant::now() >= deadline {
            return Err(anyhow!("its relay did not answer within {BOOT_TIMEOUT:?}"));
        }
        // QEMU accepts at once and hangs up if nothing listens inside yet.
        if let Ok(mut relay) = connect_relay(port, token) {
            relay.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut greeting = [0u8; 1];
            if matches!(relay.read(&mut greeting), Ok(1)) {
                return Ok(());
            }
        }
        thread::sleep(TICK);
    }
}
