//! Drives the real `hull-agent` binary in relay mode over a unix socket, as
//! the host side of the protocol.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use hull_protocol::{
    read_message, write_message, ExitStatus, Hello, Message, Query, RunSpec, TerminalSize,
    MAX_BODY, VERSION,
};

const TIMEOUT: Duration = Duration::from_secs(20);

/// The host's end of one agent session.
struct Host {
    agent: Option<Child>,
    channel: UnixStream,
    dir: PathBuf,
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Exited(ExitStatus),
    Failed { code: i32, reason: String },
}

/// Everything the agent sent about one run.
#[derive(Debug)]
struct Outcome {
    started: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    end: End,
}

impl Host {
    /// Starts an agent on a fresh socket in a fresh scratch directory and
    /// receives its Hello (without answering it).
    fn start(name: &str) -> Host {
        let dir = std::env::temp_dir().join(format!("hull-agent-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("channel.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let agent = Command::new(env!("CARGO_BIN_EXE_hull-agent"))
            .arg("relay")
            .arg("--channel")
            .arg(&socket)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let channel = loop {
            match listener.accept() {
                Ok((channel, _)) => break channel,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Err(err) => panic!("the agent never connected: {err}"),
            }
        };
        channel.set_nonblocking(false).unwrap();
        channel.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut host = Host {
            agent: Some(agent),
            channel,
            dir,
        };
        match host.recv() {
            Message::Hello(hello) => {
                assert_eq!(hello.version, VERSION);
                assert!(hello.software.starts_with("hull-agent "), "{hello:?}");
            }
            other => panic!("expected the agent's Hello, got {other:?}"),
        }
        host
    }

    /// Starts an agent and completes the handshake.
    fn greeted(name: &str) -> Host {
        let mut host = Host::start(name);
        host.send(&Message::Hello(Hello {
            version: VERSION,
            software: "hull-test".into(),
        }));
        host
    }

    fn send(&mut self, message: &Message) {
        write_message(&mut self.channel, message).unwrap();
    }

    fn recv(&mut self) -> Message {
        read_message(&mut self.channel)
            .unwrap()
            .expect("the agent closed the channel")
    }

    /// Collects messages until the run ends.
    fn collect(&mut self) -> Outcome {
        let mut outcome = Outcome {
            started: false,
            stdout: Vec::new(),
            stderr: Vec::new(),
            end: End::Exited(ExitStatus::Code(-1)),
        };
        loop {
            match self.recv() {
                Message::Started { .. } => {
                    assert!(!outcome.started, "Started sent twice");
                    outcome.started = true;
                }
                Message::Stdout(data) => {
                    assert!(outcome.started, "output before Started");
                    outcome.stdout.extend(data);
                }
                Message::Stderr(data) => {
                    assert!(outcome.started, "output before Started");
                    outcome.stderr.extend(data);
                }
                Message::Exited(status) => {
                    outcome.end = End::Exited(status);
                    return outcome;
                }
                Message::Failed { code, reason } => {
                    outcome.end = End::Failed { code, reason };
                    return outcome;
                }
                other => panic!("unexpected message from the agent: {other:?}"),
            }
        }
    }

    /// Receives output after Started until stdout contains `needle`.
    fn stdout_until(&mut self, needle: &str) {
        let mut stdout = Vec::new();
        while !String::from_utf8_lossy(&stdout).contains(needle) {
            match self.recv() {
                Message::Started { .. } => {}
                Message::Stdout(data) => stdout.extend(data),
                other => panic!("waiting for {needle:?} in {stdout:?}, got {other:?}"),
            }
        }
    }

    fn run(&mut self, spec: Box<RunSpec>) -> Outcome {
        self.send(&Message::Run(spec));
        self.collect()
    }

    /// Asks for a detached run and returns the agent's answer, checking
    /// that the agent then ends the session.
    fn run_detached(&mut self, spec: Box<RunSpec>) -> Message {
        self.send(&Message::RunDetached(spec));
        let answer = self.recv();
        assert_eq!(
            read_message(&mut self.channel).unwrap(),
            None,
            "the agent kept the session open after {answer:?}"
        );
        answer
    }

    /// Waits for the agent to exit and returns its exit code and stderr.
    fn wait_agent(&mut self) -> (Option<i32>, String) {
        let mut agent = self.agent.take().unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = agent.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the agent did not exit");
            thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        agent
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status.code(), stderr)
    }

    /// Sends Shutdown and checks that the agent exits with status 0.
    fn shutdown(mut self) {
        self.send(&Message::Shutdown);
        let (code, stderr) = self.wait_agent();
        assert_eq!(code, Some(0), "agent stderr: {stderr}");
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn current_ids() -> (u32, u32) {
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

fn spec(argv: &[&str]) -> Box<RunSpec> {
    let (uid, gid) = current_ids();
    Box::new(RunSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/usr/bin:/bin".into()],
        cwd: "/".into(),
        user: format!("{uid}:{gid}"),
        hostname: "test".into(),
        domainname: String::new(),
        rootfs: None,
        tty: None,
        network: None,
        limits: None,
        hold: false,
        privileged: false,
    })
}

/// Bytes that differ from any shifted copy of themselves, so reordered or
/// lost chunks cannot compare equal.
fn pattern(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn echo_output_and_exit_code_arrive() {
    let mut host = Host::greeted("echo");
    let outcome = host.run(spec(&["sh", "-c", "echo hello; exit 3"]));
    assert!(outcome.started);
    assert_eq!(outcome.stdout, b"hello\n");
    assert_eq!(outcome.stderr, b"");
    assert_eq!(outcome.end, End::Exited(ExitStatus::Code(3)));
    host.shutdown();
}

#[test]
fn a_terminal_run_gets_its_size_a_controlling_terminal_and_one_stream() {
    let mut host = Host::greeted("tty");
    let mut spec = spec(&[
        "sh",
        "-c",
        "stty size; test -t 0 && test -t 2 && echo on-a-tty; echo to-stderr >&2",
    ]);
    spec.tty = Some(TerminalSize {
        rows: 30,
        cols: 100,
    });
    let outcome = host.run(spec);
    // The terminal's line discipline turns each newline into CR LF.
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "30 100\r\non-a-tty\r\nto-stderr\r\n"
    );
    assert!(outcome.stderr.is_empty(), "{:?}", outcome.stderr);
    assert_eq!(outcome.end, End::Exited(ExitStatus::Code(0)));
    host.shutdown();
}

#[test]
fn a_resize_reaches_the_process_and_ctrl_c_on_its_terminal_interrupts_it() {
    let mut host = Host::greeted("tty-resize");
    let mut spec = spec(&[
        "sh",
        "-c",
        "trap 'stty size' WINCH; echo ready; while :; do sleep 0.05; done",
    ]);
    spec.tty = Some(TerminalSize { rows: 24, cols: 80 });
    host.send(&Message::Run(spec));
    host.stdout_until("ready");
    host.send(&Message::Resize(TerminalSize {
        rows: 40,
        cols: 120,
    }));
    host.stdout_until("40 120");
    // Ctrl-C typed on the terminal: the line discipline signals SIGINT to
    // the foreground process group, the shell and its sleep.
    host.send(&Message::Stdin(vec![0x03]));
    let end = loop {
        match host.recv() {
            Message::Stdout(_) => {}
            Message::Exited(status) => break status,
            other => panic!("expected the end of the run, got {other:?}"),
        }
    };
    assert_eq!(end, ExitStatus::Signal(libc::SIGINT));
    host.shutdown();
}

#[test]
fn a_query_without_a_container_is_answered_with_a_failure() {
    let mut host = Host::greeted("query");
    host.send(&Message::Query(Query::Stats));
    match host.recv() {
        Message::Failed { code, reason } => {
            assert_eq!(code, 125);
            assert!(reason.contains("no container"), "{reason}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let (code, stderr) = host.wait_agent();
    assert_eq!(code, Some(0), "agent stderr: {stderr}");
}

#[test]
fn stdin_round_trips_through_cat() {
    let mut host = Host::greeted("stdin");
    host.send(&Message::Run(spec(&["cat"])));
    host.send(&Message::Stdin(b"hello ".to_vec()));
    host.send(&Message::Stdin(b"world\n".to_vec()));
    host.send(&Message::StdinClose);
    let outcome = host.collect();
    assert_eq!(outcome.stdout, b"hello world\n");
    assert_eq!(outcome.end, End::Exited(ExitStatus::Code(0)));
    host.shutdown();
}

#[test]
fn one_mebibyte_of_stdout_arrives_intact_and_in_order() {
    let mut host = Host::greeted("bigout");
    let data = pattern(1 << 20);
    let file = host.dir.join("data");
    std::fs::write(&file, &data).unwrap();
    let outcome = host.run(spec(&["cat", file.to_str().unwrap()]));
    assert_eq!(outcome.stdout.len(), data.len());
    assert!(outcome.stdout == data, "stdout differs from the file");
    assert_eq!(outcome.end, End::Exited(ExitStatus::Code(0)));
    host.shutdown();
}

#[test]
fn two_mebibytes_of_stdin_come_back_intact_through_cat() {
    let mut host = Host::greeted("bigin");
    let data = pattern(2 << 20);
    host.send(&Message::Run(spec(&["cat"])));
    for chunk in data.chunks(MAX_BODY) {
        host.send(&Message::Stdin(chunk.to_vec()));
    }
    host.send(&Message::StdinClose);
    let outcome = host.collect();
    assert!(
        outcome.stdout == data,
        "cat's output differs from its input"
    );
    assert_eq!(outcome.end, End::Exited(ExitStatus::Code(0)));
    host.shutdown();
}

#[test]
fn stdout_and_stderr_stay_separate() {
    let mut host = Host::greeted("streams");
    let outcome = host.run(spec(&["sh", "-c", "echo out; echo err >&2; echo more"]));
    assert_eq!(outcome.stdout, b"out\nmore\n");
    assert_eq!(outcome.stderr, b"err\n");
    assert_eq!(outcome.end, End::Exited(ExitStatus::Code(0)));
    host.shutdown();
}

#[test]
fn a_signal_frame_kills_the_process() {
    let mut host = Host::greeted("signal");
    host.send(&Message::Run(spec(&["sleep", "30"])));
    assert!(matches!(host.recv(), Message::Started { pid } if pid > 0));
    let sent = Instant::now();
    host.send(&Message::Signal(libc::SIGTERM));
    let outcome = host.collect();
    assert_eq!(outcome.end, End::Exited(ExitStatus::Signal(libc::SIGTERM)));
    assert!(sent.elapsed() < Duration::from_secs(10));
    host.shutdown();
}

#[test]
fn a_missing_command_fails_with_127() {
    let mut host = Host::greeted("missing");
    let outcome = host.run(spec(&["hull-no-such-command"]));
    assert!(!outcome.started);
    assert_eq!(
        outcome.end,
        End::Failed {
            code: 127,
            reason: "exec hull-no-such-command: No such file or directory".into()
        }
    );
    host.shutdown();
}

#[test]
fn a_file_without_execute_permission_fails_with_126() {
    let mut host = Host::greeted("noexec");
    let script = host.dir.join("script");
    std::fs::write(&script, "#!/bin/sh\necho unreachable\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let outcome = host.run(spec(&[script.to_str().unwrap()]));
    match outcome.end {
        End::Failed { code, reason } => {
            assert_eq!(code, 126);
            assert!(reason.ends_with("Permission denied"), "{reason}");
        }
        other => panic!("expected a failed start, got {other:?}"),
    }
    host.shutdown();
}

#[test]
fn a_missing_working_directory_fails_with_127() {
    let mut host = Host::greeted("badcwd");
    let mut spec = spec(&["true"]);
    spec.cwd = "/hull-no-such-dir".into();
    let outcome = host.run(spec);
    assert_eq!(
        outcome.end,
        End::Failed {
            code: 127,
            reason: "chdir /hull-no-such-dir: No such file or directory".into()
        }
    );
    host.shutdown();
}

#[test]
fn cwd_is_applied() {
    let mut host = Host::greeted("cwd");
    let dir = host.dir.canonicalize().unwrap();
    let mut spec = spec(&["pwd", "-P"]);
    spec.cwd = dir.to_str().unwrap().into();
    let outcome = host.run(spec);
    assert_eq!(outcome.stdout, format!("{}\n", dir.display()).into_bytes());
    assert_eq!(outcome.end, End::Exited(ExitStatus::Code(0)));
    host.shutdown();
}

#[test]
fn the_environment_is_exactly_the_specs_plus_the_users_home() {
    let mut host = Host::greeted("env");
    let mut spec = spec(&["env"]);
    spec.env = vec!["PATH=/usr/bin:/bin".into(), "HULL_TEST=a=b c".into()];
    let outcome = host.run(spec.clone());
    host.shutdown();
    let output = String::from_utf8(outcome.stdout).unwrap();
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines[..2], ["PATH=/usr/bin:/bin", "HULL_TEST=a=b c"]);
    assert!(
        lines[2].starts_with("HOME=/") && lines.len() == 3,
        "{output}"
    );

    let mut host = Host::greeted("env-home");
    spec.env.push("HOME=/elsewhere".into());
    let outcome = host.run(spec);
    assert_eq!(
        String::from_utf8(outcome.stdout).unwrap(),
        "PATH=/usr/bin:/bin\nHULL_TEST=a=b c\nHOME=/elsewhere\n"
    );
    host.shutdown();
}

#[test]
fn uid_and_gid_are_applied() {
    let mut host = Host::greeted("ids");
    let (current_uid, current_gid) = current_ids();
    // Only root can switch; otherwise the ids are the current ones.
    let (uid, gid) = if current_uid == 0 {
        (1234, 4321)
    } else {
        (current_uid, current_gid)
    };
    // `id -G` shows that no supplementary group is kept from the agent.
    let mut spec = spec(&["sh", "-c", "id -u; id -g; id -G"]);
    spec.user = format!("{uid}:{gid}");
    let outcome = host.run(spec);
    assert_eq!(
        String::from_utf8(outcome.stdout).unwrap(),
        format!("{uid}\n{gid}\n{gid}\n")
    );
    assert_eq!(outcome.end, End::Exited(ExitStatus::Code(0)));
    host.shutdown();
}

#[test]
fn shutdown_while_running_ends_the_agent() {
    let mut host = Host::greeted("early-shutdown");
    host.send(&Message::Run(spec(&["sleep", "30"])));
    assert!(matches!(host.recv(), Message::Started { .. }));
    let sent = Instant::now();
    host.shutdown();
    assert!(sent.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_host_with_another_protocol_version_is_refused() {
    let mut host = Host::start("version");
    host.send(&Message::Hello(Hello {
        version: VERSION + 1,
        software: "hull-future".into(),
    }));
    let (code, stderr) = host.wait_agent();
    assert_eq!(code, Some(1));
    assert!(stderr.contains("protocol version"), "{stderr}");
}

#[test]
fn channel_eof_before_run_ends_the_agent_cleanly() {
    let mut host = Host::greeted("eof");
    host.channel.shutdown(std::net::Shutdown::Write).unwrap();
    let (code, stderr) = host.wait_agent();
    assert_eq!(code, Some(0), "{stderr}");
}

/// A shell loop that waits (at most 20 s) for `path` to exist.
fn wait_in_shell_for(path: &Path) -> String {
    format!(
        "i=0; while [ ! -e {path} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done",
        path = path.display()
    )
}

/// Waits (at most [`TIMEOUT`]) for a process to write `path`, and reads it.
fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(contents) = std::fs::read_to_string(path) {
            if contents.ends_with('\n') {
                return contents;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_detached_process_outlives_its_session_and_the_agent_with_null_streams() {
    let dir = tempfile::tempdir().unwrap();
    let (go, done, fds) = (
        dir.path().join("go"),
        dir.path().join("done"),
        dir.path().join("fds"),
    );
    let script = format!(
        "streams=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2); \
         echo \"$streams\" > {fds}; \
         cat; echo to-nobody; echo to-nobody >&2; {wait}; echo done > {done}",
        fds = fds.display(),
        wait = wait_in_shell_for(&go),
        done = done.display(),
    );
    let mut host = Host::greeted("detached");
    let answer = host.run_detached(spec(&["sh", "-c", &script]));
    assert!(matches!(answer, Message::Started { .. }), "{answer:?}");
    // The session is over and the agent gone (its stderr, which the
    // process does not hold, reaches end of file), the process not.
    let (code, stderr) = host.wait_agent();
    assert_eq!(code, Some(0), "agent stderr: {stderr}");
    assert!(!done.exists());
    std::fs::write(&go, "").unwrap();
    assert_eq!(wait_for_file(&done), "done\n");
    assert_eq!(
        std::fs::read_to_string(&fds).unwrap(),
        "/dev/null\n/dev/null\n/dev/null\n"
    );
}

#[test]
fn a_detached_process_that_cannot_start_is_reported_with_the_shells_code() {
    let mut host = Host::greeted("detached-missing");
    let answer = host.run_detached(spec(&["/no/such/program"]));
    assert!(
        matches!(answer, Message::Failed { code: 127, ref reason } if reason.contains("/no/such/program")),
        "{answer:?}"
    );
    let (code, stderr) = host.wait_agent();
    assert_eq!(code, Some(0), "agent stderr: {stderr}");
}

#[test]
fn a_detached_process_on_a_terminal_keeps_it_while_its_output_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let (go, done) = (dir.path().join("go"), dir.path().join("done"));
    // A mebibyte is far more than a terminal buffers: the process would
    // block if nobody read it, and would be hung up if the terminal closed.
    let script = format!(
        "test -t 0 && test -t 1 && test -t 2 || exit 1; {wait}; \
         head -c 1048576 /dev/zero; echo tty-kept > {done}",
        wait = wait_in_shell_for(&go),
        done = done.display(),
    );
    let mut spec = spec(&["sh", "-c", &script]);
    spec.tty = Some(TerminalSize { rows: 24, cols: 80 });
    let mut host = Host::greeted("detached-tty");
    let answer = host.run_detached(spec);
    assert!(matches!(answer, Message::Started { .. }), "{answer:?}");
    std::fs::write(&go, "").unwrap();
    assert_eq!(wait_for_file(&done), "tty-kept\n");
    // The agent stays for the terminal, and goes once the process has.
    let (code, stderr) = host.wait_agent();
    assert_eq!(code, Some(0), "agent stderr: {stderr}");
}
