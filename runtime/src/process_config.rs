//! What a container runs: its image's config combined with `hull run`'s
//! flags, by Docker's rules.
//!
//! - `--entrypoint` replaces the image's Entrypoint and drops its Cmd
//!   (`--entrypoint ""` leaves no entrypoint); the command given after the
//!   image replaces the Cmd. The process is Entrypoint followed by Cmd.
//! - The environment is the image's Env (with Docker's default PATH when it
//!   has none) and `HOSTNAME`, then each `-e` in order, replacing a variable
//!   of the same name. `HOME` comes from the user's passwd entry in the
//!   guest unless set here.
//! - `-w` and `-u` replace the image's WorkingDir and User; the defaults are
//!   `/` and root.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use oci_spec::image::Config;

use crate::signals::signal_number;

/// Default PATH, as Docker sets it.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the image asks for (all empty for a `--rootfs` directory).
#[derive(Debug, Default)]
pub struct ImageDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// `EXPOSE` entries: `80/tcp`, `53/udp`.
    pub exposed_ports: Vec<String>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its `STOPSIGNAL`, as a number.
    pub stop_signal: Option<i32>,
    /// Its `VOLUME`s: paths that get an anonymous volume.
    pub volumes: Vec<String>,
    /// Its `HEALTHCHECK`.
    pub healthcheck: Option<hull_image::Healthcheck>,
}

impl From<&Config> for ImageDefaults {
    fn from(config: &Config) -> ImageDefaults {
        let non_empty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        ImageDefaults {
            entrypoint: config.entrypoint().clone().unwrap_or_default(),
            cmd: config.cmd().clone().unwrap_or_default(),
            env: config.env().clone().unwrap_or_default(),
            working_dir: non_empty(config.working_dir()),
            user: non_empty(config.user()),
            exposed_ports: config.exposed_ports().clone().unwrap_or_default(),
            labels: config
                .labels()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            stop_signal: config.stop_signal().as_deref().and_then(signal_number),
            volumes: config.volumes().clone().unwrap_or_default(),
            healthcheck: None,
        }
    }
}

/// The `hull run` flags that shape the process.
#[derive(Debug, Default)]
pub struct ProcessFlags<'a> {
    pub entrypoint: Option<&'a str>,
    /// The command after the image name (or after `--rootfs DIR`).
    pub command: &'a [String],
    /// `-e KEY=VALUE`, or `-e KEY` to copy the variable from here.
    pub env: &'a [String],
    pub workdir: Option<&'a str>,
    pub user: Option<&'a str>,
    pub hostname: &'a str,
}

/// The process to start in the container.
#[derive(Debug, PartialEq, Eq)]
pub struct ProcessConfig {
    pub argv: Vec<String>,
    /// How many of `argv`'s words are the entrypoint (the rest is the Cmd).
    pub entrypoint_len: usize,
    pub env: Vec<String>,
    pub cwd: String,
    /// `USER[:GROUP]` for the agent to resolve; empty for root.
    pub user: String,
}

pub fn process_config(image: &ImageDefaults, flags: &ProcessFlags) -> Result<ProcessConfig> {
    let (entrypoint, default_cmd) = match flags.entrypoint {
        Some("") => (Vec::new(), Vec::new()),
        Some(entrypoint) => (vec![entrypoint.to_owned()], Vec::new()),
        None => (image.entrypoint.clone(), image.cmd.clone()),
    };
    let cmd = if flags.command.is_empty() {
        default_cmd
    } else {
        flags.command.to_vec()
    };
    let entrypoint_len = entrypoint.len();
    let argv = [entrypoint, cmd].concat();
    if argv.is_empty() {
        bail!("no command specified: the image has none; give one after the image name");
    }
    let cwd = flags
        .workdir
        .map(str::to_owned)
        .or_else(|| image.working_dir.clone())
        .unwrap_or_else(|| "/".to_owned());
    check_workdir(&cwd)?;
    Ok(ProcessConfig {
        argv,
        entrypoint_len,
        env: environment(&image.env, flags.env, flags.hostname),
        cwd,
        user: flags
            .user
            .filter(|user| !user.is_empty())
            .map(str::to_owned)
            .or_else(|| image.user.clone())
            .unwrap_or_default(),
    })
}

/// Refuses a working directory that is not an absolute path, as `-w` and
/// an image's `WorkingDir` must be.
pub fn check_workdir(cwd: &str) -> Result<()> {
    if !cwd.starts_with('/') {
        bail!("the working directory {cwd:?} is not an absolute path");
    }
    Ok(())
}

/// Checks a `-u` value: `USER[:GROUP]`, names or numeric ids; empty, as
/// in Docker, for the default (the image's, or the container's for exec).
pub fn parse_user(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let valid = |part: &str| {
        !part.is_empty() && !part.contains(|c: char| c.is_whitespace() || c == ':' || c == '/')
    };
    let ok = match value.split_once(':') {
        Some((user, group)) => valid(user) && valid(group),
        None => valid(value),
    };
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?} is not USER[:GROUP] (names or numeric ids)"
        ))
    }
}

fn environment(image_env: &[String], flags: &[String], hostname: &str) -> Vec<String> {
    let mut env = Vec::new();
    if !image_env.iter().any(|entry| variable(entry) == "PATH") {
        env.push(DEFAULT_PATH.to_owned());
    }
    env.push(format!("HOSTNAME={hostname}"));
    let env = with_env(&env, image_env);
    with_env_flags(&env, flags)
}

/// Gives a process on a terminal `TERM=xterm`, as Docker does, unless its
/// environment names a terminal type already.
pub fn with_default_term(env: &mut Vec<String>) {
    if !env.iter().any(|entry| variable(entry) == "TERM") {
        env.push("TERM=xterm".to_owned());
    }
}

/// `base` with each `-e` flag applied in order: `KEY=VALUE` sets, `KEY`
/// copies the variable from this process's environment (if set).
pub fn with_env_flags(base: &[String], flags: &[String]) -> Vec<String> {
    let entries: Vec<String> = flags
        .iter()
        .filter_map(|flag| match flag.split_once('=') {
            Some(_) => Some(flag.clone()),
            None => std::env::var(flag)
                .ok()
                .map(|value| format!("{flag}={value}")),
        })
        .collect();
    with_env(base, &entries)
}

/// `base` with each `KEY=VALUE` of `entries` replacing the variable of the
/// same name, or added at the end.
fn with_env(base: &[String], entries: &[String]) -> Vec<String> {
    let mut env = base.to_vec();
    for entry in entries {
        env.retain(|existing| variable(existing) != variable(entry));
        env.push(entry.clone());
    }
    env
}

fn variable(entry: &str) -> &str {
    entry.split('=').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_gets_xterm_unless_told_otherwise() {
        let mut env = vec!["PATH=/bin".to_owned()];
        with_default_term(&mut env);
        assert_eq!(env, ["PATH=/bin", "TERM=xterm"]);
        let mut told = vec!["TERM=vt100".to_owned()];
        with_default_term(&mut told);
        assert_eq!(told, ["TERM=vt100"]);
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn python_like() -> ImageDefaults {
        ImageDefaults {
            entrypoint: strings(&["/entry.sh"]),
            cmd: strings(&["serve", "--port", "80"]),
            env: strings(&["PATH=/opt/bin:/bin", "LANG=C.UTF-8"]),
            working_dir: Some("/app".into()),
            user: Some("app".into()),
            exposed_ports: strings(&["80/tcp"]),
            ..ImageDefaults::default()
        }
    }

    #[test]
    fn the_image_config_applies_when_no_flag_is_given() {
        let config = process_config(
            &python_like(),
            &ProcessFlags {
                hostname: "h",
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            config,
            ProcessConfig {
                argv: strings(&["/entry.sh", "serve", "--port", "80"]),
                entrypoint_len: 1,
                env: strings(&["HOSTNAME=h", "PATH=/opt/bin:/bin", "LANG=C.UTF-8"]),
                cwd: "/app".into(),
                user: "app".into(),
            }
        );
    }

    #[test]
    fn a_command_replaces_cmd_but_keeps_the_entrypoint() {
        let command = strings(&["migrate"]);
        let flags = ProcessFlags {
            command: &command,
            ..Default::default()
        };
        let config = process_config(&python_like(), &flags).unwrap();
        assert_eq!(config.argv, ["/entry.sh", "migrate"]);
    }

    #[test]
    fn entrypoint_flag_drops_the_images_cmd() {
        let flags = ProcessFlags {
            entrypoint: Some("/bin/sh"),
            ..Default::default()
        };
        assert_eq!(
            process_config(&python_like(), &flags).unwrap().argv,
            ["/bin/sh"]
        );
        let command = strings(&["-c", "id"]);
        let flags = ProcessFlags {
            entrypoint: Some("/bin/sh"),
            command: &command,
            ..Default::default()
        };
        assert_eq!(
            process_config(&python_like(), &flags).unwrap().argv,
            ["/bin/sh", "-c", "id"]
        );
        let command = strings(&["ls"]);
        let flags = ProcessFlags {
            entrypoint: Some(""),
            command: &command,
            ..Default::default()
        };
        assert_eq!(process_config(&python_like(), &flags).unwrap().argv, ["ls"]);
    }

    #[test]
    fn nothing_to_run_is_an_error() {
        let error =
            process_config(&ImageDefaults::default(), &ProcessFlags::default()).unwrap_err();
        assert!(
            error.to_string().starts_with("no command specified"),
            "{error}"
        );
        let flags = ProcessFlags {
            entrypoint: Some(""),
            ..Default::default()
        };
        assert!(process_config(&python_like(), &flags).is_err());
    }

    #[test]
    fn flags_override_workdir_user_and_env_in_order() {
        std::env::set_var("HULL_TEST_COPIED", "from-host");
        let command = strings(&["true"]);
        let env = strings(&[
            "LANG=fr",
            "A=1",
            "A=2",
            "HULL_TEST_COPIED",
            "HULL_TEST_UNSET_VARIABLE",
        ]);
        let flags = ProcessFlags {
            command: &command,
            env: &env,
            workdir: Some("/tmp"),
            user: Some("1000:100"),
            hostname: "box",
            ..Default::default()
        };
        let config = process_config(&python_like(), &flags).unwrap();
        assert_eq!(
            config.env,
            [
                "HOSTNAME=box",
                "PATH=/opt/bin:/bin",
                "LANG=fr",
                "A=2",
                "HULL_TEST_COPIED=from-host"
            ]
        );
        assert_eq!(
            (config.cwd.as_str(), config.user.as_str()),
            ("/tmp", "1000:100")
        );
        let default_user = ProcessFlags {
            user: Some(""),
            ..flags
        };
        let config = process_config(&python_like(), &default_user).unwrap();
        assert_eq!(config.user, "app", "-u '' is the image's user");
    }

    #[test]
    fn defaults_are_dockers_path_root_and_slash() {
        let command = strings(&["true"]);
        let flags = ProcessFlags {
            command: &command,
            hostname: "h",
            ..Default::default()
        };
        let config = process_config(&ImageDefaults::default(), &flags).unwrap();
        assert_eq!(config.env, [DEFAULT_PATH, "HOSTNAME=h"]);
        assert_eq!((config.cwd.as_str(), config.user.as_str()), ("/", ""));
        let flags = ProcessFlags {
            command: &command,
            workdir: Some("rel"),
            ..Default::default()
        };
        assert!(process_config(&ImageDefaults::default(), &flags).is_err());
    }

    #[test]
    fn users_are_names_or_ids_with_an_optional_group() {
        for good in ["1000", "1000:100", "app", "app:staff", "0:wheel"] {
            assert_eq!(parse_user(good).as_deref(), Ok(good));
        }
        assert_eq!(parse_user("").as_deref(), Ok(""), "the default");
        for bad in [":", "a:", ":b", "a:b:c", "a b", "../x"] {
            assert!(parse_user(bad).is_err(), "{bad:?} accepted");
        }
    }
}
