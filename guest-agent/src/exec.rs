//! The last steps of the user's process, run in the forked child: standard
//! streams, working directory, identity, PATH lookup and `execve`.
//!
//! Failures are reported on the start report pipe with the exit status a
//! shell gives: 127 when the program or the working directory does not exist
//! (ENOENT), 126 for every other reason it cannot be run (EACCES, ENOEXEC,
//! ENOTDIR, ...). `docker run` gives the same codes for the same cases; a
//! missing working directory is 127 here because it is reported as "no such
//! file or directory", which docker maps to 127.
//!
//! The container's main process has its working directory created when it
//! is missing, as `docker run -w` does (see [`crate::workdir`]); `hull exec`
//! processes do not, as `docker exec -w` does not. A working directory that
//! cannot be created fails the start as the Docker daemon's error does
//! under `docker run`: 125, or 127/126 for ENOENT/EACCES.
//!
//! A container's processes get its resource limits and capabilities (see
//! [`crate::privileges`]) here too, in the order runc sets them: the limits
//! and the bounding set while the process is still root, then its identity,
//! then its effective and permitted capabilities. Failing to set them is a
//! start failure (125).

use std::convert::Infallible;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use hull_protocol::RunSpec;
use nix::errno::Errno;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::{
    access, chdir, dup2, execve, getegid, geteuid, getgid, getuid, setgid, setgroups, setsid,
    setuid, AccessFlags, Gid, Uid,
};

use crate::identity;
use crate::privileges::Privileges;
use crate::process::{StartFailure, StartReporter, AGENT_ERROR_CODE};
use crate::stdio::ChildStdio;
use crate::workdir;

/// PATH used when the spec's environment has none, as in Docker.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The user's program, prepared before `fork` so that the child has little
/// left to do but system calls.
pub struct Command {
    program: String,
    argv: Vec<CString>,
    envp: Vec<CString>,
    search_path: String,
    cwd: PathBuf,
    /// Whether `cwd` is created when it is missing (see
    /// [`Command::create_missing_cwd`]).
    create_cwd: bool,
    uid: Uid,
    gid: Gid,
    supplementary_gids: Vec<Gid>,
    /// The container's resource limits and capabilities.
    privileges: Privileges,
}

impl Command {
    /// Checks and converts `spec` for a process whose root file system is
    /// at `root` (its user and group names are looked up there), held to
    /// the container's `privileges`; an unusable spec is a start failure.
    pub fn from_spec(
        spec: &RunSpec,
        root: &Path,
        privileges: Privileges,
    ) -> Result<Command, StartFailure> {
        let invalid = |reason: String| StartFailure {
            code: AGENT_ERROR_CODE,
            reason,
        };
        let program = spec
            .argv
            .first()
            .ok_or_else(|| invalid("no command given: argv is empty".into()))?
            .clone();
        let to_cstrings = |what: &str, items: &[String]| {
            items
                .iter()
                .map(|item| CString::new(item.as_bytes()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| invalid(format!("{what} contains a NUL byte")))
        };
        let identity =
            identity::resolve(&spec.user, privileges.additional_groups(), root).map_err(invalid)?;
        let mut env = spec.env.clone();
        if !env.iter().any(|entry| entry.starts_with("HOME=")) {
            env.push(format!("HOME={}", identity.home));
        }
        let search_path = spec
            .env
            .iter()
            .find_map(|entry| entry.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH)
            .to_owned();
        Ok(Command {
            argv: to_cstrings("argv", &spec.argv)?,
            envp: to_cstrings("env", &env)?,
            program,
            search_path,
            cwd: PathBuf::from(&spec.cwd),
            create_cwd: false,
            uid: Uid::from_raw(identity.uid),
            gid: Gid::from_raw(identity.gid),
            supplementary_gids: identity
                .supplementary_gids
                .into_iter()
                .map(Gid::from_raw)
                .collect(),
            privileges,
        })
    }

    /// Makes the process create its working directory, with its missing
    /// parents, before it enters it, as Docker does for a container's main
    /// process: in the root it runs in (the container's, by then), as the
    /// agent (root) before the user's identity is taken, mode 0755. The path
    /// is cleaned first (`/a/../b` is `/b`), as Docker cleans it.
    pub fn create_missing_cwd(&mut self) {
        self.cwd = workdir::clean(&self.cwd);
        self.create_cwd = true;
    }

    /// Creates the working directory now, if [`Command::create_missing_cwd`]
    /// asked for it, in the calling process's root (the container's): the
    /// container's init does so before it makes a read-only root read-only,
    /// as runc creates it before `--read-only` takes effect.
    pub fn create_working_directory(&mut self) -> Result<(), StartFailure> {
        if self.create_cwd {
            workdir::create_missing(Path::new("/"), &self.cwd)
                .map_err(|err| cwd_creation_failure(&self.cwd, &err))?;
            self.create_cwd = false;
        }
        Ok(())
    }

    /// Turns the calling forked child into the user's process; on failure
    /// reports on `reporter` and exits with the failure's code.
    pub fn exec(&self, stdio: &ChildStdio, reporter: &StartReporter) -> ! {
        let Err(failure) = self.try_exec(stdio);
        reporter.fail(&failure)
    }

    fn try_exec(&self, stdio: &ChildStdio) -> Result<Infallible, StartFailure> {
        reset_signal_handling().map_err(|errno| setup_failure("reset signals", errno))?;
        redirect_stdio(stdio).map_err(|errno| setup_failure("redirect stdio", errno))?;
        if stdio.is_terminal {
            take_controlling_terminal()
                .map_err(|errno| setup_failure("take the terminal", errno))?;
        }
        // The directory is created and entered with the agent's privileges,
        // before they are dropped, as runc does.
        if self.create_cwd {
            workdir::create_missing(Path::new("/"), &self.cwd)
                .map_err(|err| cwd_creation_failure(&self.cwd, &err))?;
        }
        chdir(&self.cwd).map_err(|errno| chdir_failure(&self.cwd, errno))?;
        self.privileges
            .apply_before_identity()
            .map_err(privilege_failure)?;
        set_identity(self.uid, self.gid, &self.supplementary_gids).map_err(|errno| {
            StartFailure {
                code: exit_code_for(errno),
                reason: format!("set uid {} gid {}: {}", self.uid, self.gid, errno.desc()),
            }
        })?;
        self.privileges
            .apply_after_identity()
            .map_err(privilege_failure)?;
        let exec_failure = |errno: Errno| StartFailure {
            code: exit_code_for(errno),
            reason: format!("exec {}: {}", self.program, errno.desc()),
        };
        let path =
            resolve_program(&self.program, &self.search_path, probe).map_err(exec_failure)?;
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| setup_failure("resolve program", Errno::EINVAL))?;
        match execve(&path, &self.argv, &self.envp) {
            Err(errno) => Err(exec_failure(errno)),
        }
    }
}

/// The exit status a shell gives for a program that cannot be run.
pub fn exit_code_for(errno: Errno) -> i32 {
    match errno {
        Errno::ENOENT => 127,
        _ => 126,
    }
}

/// A working directory that cannot be entered: named, with the shell's code.
fn chdir_failure(cwd: &Path, errno: Errno) -> StartFailure {
    StartFailure {
        code: exit_code_for(errno),
        reason: format!("chdir {}: {}", cwd.display(), errno.desc()),
    }
}

/// A working directory that cannot be created, with the code `docker run`
/// gives when the daemon fails to create it: it classifies the daemon's
/// message, 127 for "no such file or directory", 126 for "permission
/// denied", 125 for the rest ("not a directory" among them).
fn cwd_creation_failure(cwd: &Path, err: &workdir::CreateError) -> StartFailure {
    StartFailure {
        code: match err.errno() {
            Errno::ENOENT => 127,
            Errno::EACCES => 126,
            _ => AGENT_ERROR_CODE,
        },
        reason: format!(
            "cannot create the working directory {}: {err}",
            cwd.display()
        ),
    }
}

fn privilege_failure(reason: String) -> StartFailure {
    StartFailure {
        code: AGENT_ERROR_CODE,
        reason,
    }
}

fn setup_failure(step: &str, errno: Errno) -> StartFailure {
    StartFailure {
        code: AGENT_ERROR_CODE,
        reason: format!("{step}: {}", errno.desc()),
    }
}

/// Gives the child default signal dispositions and an empty mask. `exec`
/// keeps ignored signals ignored (Rust ignores SIGPIPE) and keeps the mask
/// (a tiny init blocks everything).
fn reset_signal_handling() -> Result<(), Errno> {
    for signo in 1..=libc::SIGRTMAX() {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installs the default disposition, no handler code runs. It
        // fails harmlessly for the signals glibc reserves for itself.
        unsafe { libc::signal(signo, libc::SIG_DFL) };
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

/// Makes the pipes fds 0, 1 and 2 (`dup2` clears close-on-exec on the copies;
/// every other fd of the agent is close-on-exec). The pipes are never fds
/// 0-2 themselves: both modes keep those open in the agent.
fn redirect_stdio(stdio: &ChildStdio) -> Result<(), Errno> {
    for (target, source) in (0..).zip(stdio.raw_fds()) {
        debug_assert!(source > 2, "pipe fd {source} overlaps the standard fds");
        dup2(source, target)?;
    }
    Ok(())
}

/// Makes the terminal on fd 0 the controlling terminal of a new session led
/// by the calling process, so that its line discipline turns Ctrl-C, Ctrl-Z
/// and Ctrl-\\ into signals for the session's foreground process group.
fn take_controlling_terminal() -> Result<(), Errno> {
    setsid()?;
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal the
    // terminal from another session) and touches no memory of ours.
    Errno::result(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) }).map(drop)
}

/// Switches to `uid`/`gid` with exactly the `supplementary` groups. An
/// unprivileged agent (relay mode run by a user) can only keep the ids it
/// has, and then keeps its groups too.
fn set_identity(uid: Uid, gid: Gid, supplementary: &[Gid]) -> Result<(), Errno> {
    match setgroups(supplementary) {
        Ok(()) => {}
        Err(Errno::EPERM) if (getuid(), geteuid(), getgid(), getegid()) == (uid, uid, gid, gid) => {
            return Ok(())
        }
        Err(errno) => return Err(errno),
    }
    setgid(gid)?;
    setuid(uid)
}

/// What a PATH candidate turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Executable,
    NotExecutable,
    Missing,
}

fn probe(path: &Path) -> Probe {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && access(path, AccessFlags::X_OK).is_ok() => Probe::Executable,
        Ok(_) => Probe::NotExecutable,
        Err(err) if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            Probe::Missing
        }
        Err(_) => Probe::NotExecutable,
    }
}

/// Finds `program` like `execvp`: a name with a slash is used as is; a bare
/// name is looked up in each directory of `search_path` (an empty entry is
/// the working directory). When no candidate is executable the error is
/// EACCES if one existed, ENOENT otherwise.
pub fn resolve_program(
    program: &str,
    search_path: &str,
    probe: impl Fn(&Path) -> Probe,
) -> Result<PathBuf, Errno> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    if program.is_empty() {
        return Err(Errno::ENOENT);
    }
    let mut seen_unexecutable = false;
    for dir in search_path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(program);
        match probe(&candidate) {
            Probe::Executable => return Ok(candidate),
            Probe::NotExecutable => seen_unexecutable = true,
            Probe::Missing => {}
        }
    }
    Err(if seen_unexecutable {
        Errno::EACCES
    } else {
        Errno::ENOENT
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_fs(entries: &'static [(&'static str, Probe)]) -> impl Fn(&Path) -> Probe {
        move |path| {
            entries
                .iter()
                .find(|(name, _)| Path::new(name) == path)
                .map_or(Probe::Missing, |(_, probe)| *probe)
        }
    }

    #[test]
    fn names_with_a_slash_are_not_searched() {
        let nothing = fake_fs(&[]);
        assert_eq!(
            resolve_program("./run.sh", "/bin", &nothing),
            Ok(PathBuf::from("./run.sh"))
        );
        assert_eq!(
            resolve_program("/no/such", "/bin", &nothing),
            Ok(PathBuf::from("/no/such"))
        );
    }

    #[test]
    fn the_first_executable_in_path_order_wins() {
        let fs = fake_fs(&[
            ("/usr/local/bin/tool", Probe::NotExecutable),
            ("/usr/bin/tool", Probe::Executable),
            ("/bin/tool", Probe::Executable),
        ]);
        assert_eq!(
            resolve_program("tool", "/usr/local/bin:/usr/bin:/bin", &fs),
            Ok(PathBuf::from("/usr/bin/tool"))
        );
    }

    #[test]
    fn an_empty_path_entry_is_the_working_directory() {
        let fs = fake_fs(&[("./tool", Probe::Executable)]);
        assert_eq!(
            resolve_program("tool", "/bin::/usr/bin", &fs),
            Ok(PathBuf::from("./tool"))
        );
    }

    #[test]
    fn missing_and_unexecutable_programs_get_enoent_and_eacces() {
        let fs = fake_fs(&[("/opt/tool", Probe::NotExecutable)]);
        assert_eq!(
            resolve_program("tool", "/bin:/opt", &fs),
            Err(Errno::EACCES)
        );
        assert_eq!(
            resolve_program("other", "/bin:/opt", &fs),
            Err(Errno::ENOENT)
        );
        assert_eq!(resolve_program("", "/bin", &fs), Err(Errno::ENOENT));
    }

    #[test]
    fn errnos_map_to_shell_exit_codes() {
        assert_eq!(exit_code_for(Errno::ENOENT), 127);
        assert_eq!(exit_code_for(Errno::EACCES), 126);
        assert_eq!(exit_code_for(Errno::ENOEXEC), 126);
        assert_eq!(exit_code_for(Errno::ENOTDIR), 126);
        assert_eq!(exit_code_for(Errno::EPERM), 126);
    }

    /// A root without /etc/passwd: users are numeric, HOME is /.
    const NO_ROOT: &str = "/nonexistent";

    fn spec(argv: &[&str], env: &[&str]) -> RunSpec {
        RunSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|s| s.to_string()).collect(),
            cwd: "/".into(),
            user: String::new(),
            hostname: "box".into(),
            domainname: String::new(),
            rootfs: None,
            tty: None,
            network: None,
            limits: None,
            hold: false,
            privileged: false,
        }
    }

    #[test]
    fn path_comes_from_the_spec_env_or_the_docker_default() {
        let command = Command::from_spec(
            &spec(&["ls"], &["A=1", "PATH=/x:/y"]),
            NO_ROOT.as_ref(),
            Privileges::default(),
        )
        .unwrap();
        assert_eq!(command.search_path, "/x:/y");
        let command = Command::from_spec(
            &spec(&["ls"], &["A=1"]),
            NO_ROOT.as_ref(),
            Privileges::default(),
        )
        .unwrap();
        assert_eq!(command.search_path, DEFAULT_PATH);
    }

    #[test]
    fn empty_argv_and_nul_bytes_are_agent_errors() {
        let failure = Command::from_spec(&spec(&[], &[]), NO_ROOT.as_ref(), Privileges::default())
            .err()
            .unwrap();
        assert_eq!(failure.code, AGENT_ERROR_CODE);
        let failure = Command::from_spec(
            &spec(&["a\0b"], &[]),
            NO_ROOT.as_ref(),
            Privileges::default(),
        )
        .err()
        .unwrap();
        assert_eq!(failure.code, AGENT_ERROR_CODE);
        assert!(failure.reason.contains("argv"));
        let failure = Command::from_spec(
            &spec(&["ls"], &["A=\0"]),
            NO_ROOT.as_ref(),
            Privileges::default(),
        )
        .err()
        .unwrap();
        assert!(failure.reason.contains("env"));
    }

    #[test]
    fn home_comes_from_the_user_unless_the_env_sets_it() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "app:x:7:7::/srv/app:/bin/sh\n",
        )
        .unwrap();
        let mut with_user = spec(&["ls"], &["A=1"]);
        with_user.user = "app".into();
        let command = Command::from_spec(&with_user, root.path(), Privileges::default()).unwrap();
        assert_eq!((command.uid.as_raw(), command.gid.as_raw()), (7, 7));
        assert_eq!(command.envp.last().unwrap().to_str(), Ok("HOME=/srv/app"));
        let command = Command::from_spec(
            &spec(&["ls"], &["HOME=/h"]),
            root.path(),
            Privileges::default(),
        )
        .unwrap();
        assert_eq!(command.envp, [CString::new("HOME=/h").unwrap()]);
    }

    #[test]
    fn only_the_main_process_creates_its_cleaned_working_directory() {
        let mut main = spec(&["pwd"], &[]);
        main.cwd = "/new/./dir/../work/".into();
        let mut command =
            Command::from_spec(&main, NO_ROOT.as_ref(), Privileges::default()).unwrap();
        assert!(!command.create_cwd, "exec processes create nothing");
        assert_eq!(command.cwd, Path::new("/new/./dir/../work/"));
        command.create_missing_cwd();
        assert!(command.create_cwd);
        assert_eq!(command.cwd, Path::new("/new/work"));
    }

    #[test]
    fn a_working_directory_that_cannot_be_entered_is_named() {
        assert_eq!(
            chdir_failure(Path::new("/missing"), Errno::ENOENT),
            StartFailure {
                code: 127,
                reason: "chdir /missing: No such file or directory".into()
            }
        );
        assert_eq!(
            chdir_failure(Path::new("/etc/passwd"), Errno::ENOTDIR).code,
            126
        );
    }

    #[test]
    fn a_working_directory_that_cannot_be_created_fails_as_docker_run_does() {
        let in_the_way = workdir::CreateError::NotADirectory {
            at: "/etc/passwd".into(),
        };
        assert_eq!(
            cwd_creation_failure(Path::new("/etc/passwd/x"), &in_the_way),
            StartFailure {
                code: AGENT_ERROR_CODE,
                reason: "cannot create the working directory /etc/passwd/x: \
                         /etc/passwd exists and is not a directory"
                    .into()
            }
        );
        let failed = |errno| workdir::CreateError::Failed {
            call: "mkdir",
            at: "/x".into(),
            errno,
        };
        let code = |errno| cwd_creation_failure(Path::new("/x/y"), &failed(errno)).code;
        assert_eq!(code(Errno::EROFS), AGENT_ERROR_CODE);
        assert_eq!(code(Errno::EEXIST), AGENT_ERROR_CODE);
        assert_eq!(code(Errno::EACCES), 126);
        assert_eq!(code(Errno::ENOENT), 127);
        assert_eq!(
            cwd_creation_failure(Path::new("/x/y"), &failed(Errno::EROFS)).reason,
            "cannot create the working directory /x/y: mkdir /x: Read-only file system"
        );
    }

    #[test]
    fn unknown_users_are_agent_errors() {
        let mut unknown = spec(&["ls"], &[]);
        unknown.user = "nobody-here".into();
        let failure = Command::from_spec(&unknown, NO_ROOT.as_ref(), Privileges::default())
            .err()
            .unwrap();
        assert_eq!(failure.code, AGENT_ERROR_CODE);
        assert!(
            failure.reason.contains("unable to find user nobody-here"),
            "{}",
            failure.reason
        );
    }
}
