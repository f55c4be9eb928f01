//! Metadata instructions (`ENV`, `LABEL`, `EXPOSE`, `USER`, `VOLUME`,
//! `STOPSIGNAL`, `SHELL`, `CMD`, `ENTRYPOINT`, `ONBUILD`, `MAINTAINER`,
//! `HEALTHCHECK`) as changes to an image config, with Docker's expansion
//! and combination rules: for a build's steps and `hull commit -c`.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::dockerfile::{Command, Kind};
use crate::state::ImageState;
use crate::words;

/// A change a metadata instruction makes to the config.
pub(crate) type Change = Box<dyn FnOnce(&mut ImageState)>;

/// A metadata instruction's text (expanded) for its key and history, and
/// its change to the config.
pub(crate) fn metadata(
    kind: &Kind,
    expand: &dyn Fn(&str) -> Result<String>,
    state: &ImageState,
    escape: char,
) -> Result<(String, Change)> {
    Ok(match kind {
        Kind::Env(text) => {
            let mut pairs = Vec::new();
            for (key, value) in words::assignments(text, escape, true)? {
                let value = value
                    .with_context(|| format!("ENV {key}: give it a value, ENV {key}=VALUE"))?;
                // Later pairs see earlier ones? Not in Docker: all expand
                // against the state before the instruction.
                pairs.push((expand(&key)?, expand(&value)?));
            }
            let text = format!(
                "ENV {}",
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            (
                text,
                Box::new(move |state: &mut ImageState| {
                    for (key, value) in &pairs {
                        state.set_env(key, value);
                    }
                }),
            )
        }
        Kind::Label(text) => {
            let mut pairs = Vec::new();
            for (key, value) in words::assignments(text, escape, true)? {
                pairs.push((expand(&key)?, expand(&value.unwrap_or_default())?));
            }
            let text = format!(
                "LABEL {}",
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            (
                text,
                Box::new(move |state: &mut ImageState| {
                    for (key, value) in &pairs {
                        state.add_label(key, value);
                    }
                }),
            )
        }
        Kind::Expose(ports) => {
            // A set, as Docker's map of ports: each at most once however
            // often (and in however many ranges) it is named.
            let mut specs = Vec::new();
            for port in ports {
                for port in words::expand_words(port, escape, &|k| {
                    expand(&format!("${{{k}}}")).ok().filter(|v| !v.is_empty())
                })? {
                    // The instruction is named by the caller; the reason
                    // names the port.
                    hull_image::check_port_spec(&port).map_err(|reason| anyhow!(reason))?;
                    specs.push(port);
                }
            }
            // Ordered as Go orders the map's keys.
            let expanded: std::collections::BTreeSet<String> =
                hull_image::exposed_port_set(specs.iter().map(String::as_str))
                    .map_err(|reason| anyhow!(reason))?
                    .into_iter()
                    .collect();
            (
                // As Go prints BuildKit's map of ports.
                format!(
                    "EXPOSE map[{}]",
                    expanded
                        .iter()
                        .map(|port| format!("{port}:{{}}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                Box::new(move |state: &mut ImageState| {
                    for port in &expanded {
                        state.add_to_set("ExposedPorts", port);
                    }
                }),
            )
        }
        Kind::User(user) => {
            let user = expand(user)?;
            (
                format!("USER {user}"),
                Box::new(move |state: &mut ImageState| state.set("User", json!(user))),
            )
        }
        Kind::Volume(volumes) => {
            let volumes = volumes
                .iter()
                .map(|v| expand(v))
                .collect::<Result<Vec<_>>>()?;
            (
                format!("VOLUME {volumes:?}"),
                Box::new(move |state: &mut ImageState| {
                    for volume in &volumes {
                        state.add_to_set("Volumes", volume);
                    }
                }),
            )
        }
        Kind::Stopsignal(signal) => {
            let signal = expand(signal)?;
            if hull_runtime::signals::signal_number(&signal).is_none() {
                bail!("Invalid signal: {signal}: use a name such as SIGTERM or a number");
            }
            (
                format!("STOPSIGNAL {signal}"),
                Box::new(move |state: &mut ImageState| state.set("StopSignal", json!(signal))),
            )
        }
        Kind::Shell(shell) => {
            let shell = shell.clone();
            (
                format!("SHELL {shell:?}"),
                Box::new(move |state: &mut ImageState| state.set("Shell", json!(shell))),
            )
        }
        Kind::Cmd(command) => process(Process::Cmd, command, state),
        Kind::Entrypoint(command) => process(Process::Entrypoint, command, state),
        Kind::Onbuild(trigger) => {
            let trigger = trigger.clone();
            (
                format!("ONBUILD {trigger}"),
                Box::new(move |state: &mut ImageState| {
                    let mut triggers = state.strings("OnBuild");
                    triggers.push(trigger);
                    state.set("OnBuild", json!(triggers));
                }),
            )
        }
        Kind::Maintainer(name) => {
            let name = expand(name)?;
            (
                format!("MAINTAINER {name}"),
                // BuildKit's: the image's author, not a label.
                Box::new(move |state: &mut ImageState| state.author = Some(name)),
            )
        }
        Kind::Healthcheck { flags, command } => {
            let test = match command {
                None => json!(["NONE"]),
                Some(Command::Exec(args)) => {
                    let mut test = vec!["CMD".to_owned()];
                    test.extend(args.iter().cloned());
                    json!(test)
                }
                Some(Command::Shell(line)) => json!(["CMD-SHELL", line]),
            };
            let mut check = json!({ "Test": test });
            for (name, value) in flags {
                let value = expand(value.as_deref().unwrap_or_default())?;
                let field = match name.as_str() {
                    "interval" => "Interval",
                    "timeout" => "Timeout",
                    "start-period" => "StartPeriod",
                    "start-interval" => "StartInterval",
                    "retries" => {
                        check["Retries"] = json!(value.parse::<u64>().map_err(|_| anyhow!("--retries={value}: give a number"))?);
                        continue;
                    }
                    other => bail!("HEALTHCHECK --{other} is not an option: use --interval, --timeout, --start-period, --start-interval or --retries"),
                };
                check[field] = json!(duration_nanos(&value)?);
            }
            (
                format!("HEALTHCHECK {check}"),
                Box::new(move |state: &mut ImageState| state.set("Healthcheck", check)),
            )
        }
        other => bail!("{other:?} is handled elsewhere"),
    })
}

/// The two instructions that set the container's process.
#[derive(Debug, Clone, Copy)]
enum Process {
    Cmd,
    Entrypoint,
}

/// `CMD` or `ENTRYPOINT`: its command (the shell form through `SHELL`) in
/// the config field of that name, with Docker's rule between the two: a
/// new `ENTRYPOINT` drops an inherited `CMD` (not one this stage set). An
/// empty exec form (`ENTRYPOINT []`) leaves the field unset, as in BuildKit.
fn process(which: Process, command: &Command, state: &ImageState) -> (String, Change) {
    let argv = match command {
        Command::Exec(args) => args.clone(),
        Command::Shell(line) => {
            let mut argv = state.shell();
            argv.push(line.clone());
            argv
        }
    };
    let (keyword, field) = match which {
        Process::Cmd => ("CMD", "Cmd"),
        Process::Entrypoint => ("ENTRYPOINT", "Entrypoint"),
    };
    let argv = json!(argv);
    (
        format!("{keyword} {argv}"),
        Box::new(move |state: &mut ImageState| {
            let value = match argv.as_array().is_some_and(Vec::is_empty) {
                true => Value::Null,
                false => argv,
            };
            state.set(field, value);
            match which {
                Process::Cmd => state.cmd_set = true,
                Process::Entrypoint if !state.cmd_set => state.set("Cmd", Value::Null),
                Process::Entrypoint => {}
            }
        }),
    )
}

/// Go's duration syntax (`30s`, `1m30s`, `500ms`) in nanoseconds.
fn duration_nanos(text: &str) -> Result<u64> {
    let mut total = 0f64;
    let mut rest = text;
    if rest == "0" {
        return Ok(0);
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| anyhow!("{text}: not a duration such as 30s"))?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => bail!("{text}: not a duration such as 30s"),
        };
        total += number * factor;
        rest = &rest[unit..];
    }
    Ok(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state after applying `kinds` (metadata instructions) to `state`.
    fn apply(mut state: ImageState, kinds: &[Kind]) -> (ImageState, Vec<String>) {
        let mut texts = Vec::new();
        for kind in kinds {
            let snapshot = state.clone();
            let lookup = |key: &str| snapshot.env_var(key);
            let expand = |text: &str| words::expand(text, '\\', &lookup);
            let (text, change) = metadata(kind, &expand, &snapshot, '\\').unwrap();
            change(&mut state);
            texts.push(text);
        }
        (state, texts)
    }

    #[test]
    fn a_bad_port_is_named_once() {
        let state = ImageState::default();
        let lookup = |key: &str| state.env_var(key);
        let expand = |text: &str| words::expand(text, '\\', &lookup);
        let expose = Kind::Expose(vec!["80".into(), "abc".into()]);
        let err = metadata(&expose, &expand, &state, '\\').err().unwrap();
        assert_eq!(format!("{err:#}"), "invalid containerPort: abc");
    }

    #[test]
    fn cmd_and_entrypoint_follow_dockers_rules() {
        let mut base = ImageState::default();
        base.set("Cmd", json!(["nginx"]));
        // A new ENTRYPOINT drops the base's CMD...
        let entrypoint = Kind::Entrypoint(Command::Exec(vec!["/run.sh".into()]));
        let (state, _) = apply(base.clone(), std::slice::from_ref(&entrypoint));
        assert_eq!(state.config.get("Cmd"), None);
        assert_eq!(state.strings("Entrypoint"), ["/run.sh"]);
        // ...but not one this stage set; the shell form goes through SHELL.
        let cmd = Kind::Cmd(Command::Shell("serve $PORT".into()));
        let shell = Kind::Shell(vec!["/bin/bash".into(), "-c".into()]);
        let (state, _) = apply(base, &[shell, cmd, entrypoint]);
        assert_eq!(state.strings("Cmd"), ["/bin/bash", "-c", "serve $PORT"]);
    }

    #[test]
    fn an_empty_entrypoint_resets_it_and_the_inherited_cmd() {
        let mut base = ImageState::default();
        base.set("Entrypoint", json!(["/docker-entrypoint.sh"]));
        base.set("Cmd", json!(["nginx"]));
        let empty = Kind::Entrypoint(Command::Exec(Vec::new()));
        let (state, texts) = apply(base.clone(), std::slice::from_ref(&empty));
        assert_eq!(texts[0], "ENTRYPOINT []");
        assert_eq!(state.config.get("Entrypoint"), None);
        assert_eq!(state.config.get("Cmd"), None);
        let cmd = Kind::Cmd(Command::Exec(vec!["sh".into()]));
        let (state, _) = apply(base, &[cmd, empty]);
        assert_eq!(state.config.get("Entrypoint"), None);
        assert_eq!(state.strings("Cmd"), ["sh"]);
    }

    #[test]
    fn a_stop_signal_must_be_one() {
        let (state, _) = apply(
            ImageState::default(),
            &[Kind::Stopsignal("SIGRTMIN+3".into())],
        );
        assert_eq!(state.config["StopSignal"], "SIGRTMIN+3");
        for good in ["TERM", "15", "sigkill"] {
            apply(ImageState::default(), &[Kind::Stopsignal(good.into())]);
        }
        let state = ImageState::default();
        let lookup = |key: &str| state.env_var(key);
        let expand = |text: &str| words::expand(text, '\\', &lookup);
        let bad = Kind::Stopsignal("FOO".into());
        let err = metadata(&bad, &expand, &state, '\\').err().unwrap();
        assert_eq!(
            err.to_string(),
            "Invalid signal: FOO: use a name such as SIGTERM or a number"
        );
    }

    #[test]
    fn metadata_expands_variables_and_keeps_dockers_config_format() {
        let env = Kind::Env("APP=/srv PORT=80".into());
        let expose = Kind::Expose(vec!["${PORT}".into(), "53/UDP".into()]);
        let workdir_label = Kind::Label("dir=$APP/x".into());
        let health = Kind::Healthcheck {
            flags: vec![
                ("interval".into(), Some("30s".into())),
                ("retries".into(), Some("3".into())),
            ],
            command: Some(Command::Shell("wget -q localhost:$PORT".into())),
        };
        let (state, texts) = apply(ImageState::default(), &[env, expose, workdir_label, health]);
        assert_eq!(state.strings("Env"), ["APP=/srv", "PORT=80"]);
        let ports: Vec<&String> = state.config["ExposedPorts"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(ports, ["53/udp", "80/tcp"]);
        assert_eq!(state.config["Labels"]["dir"], "/srv/x");
        // The check's command is the shell's to expand, at run time.
        assert_eq!(
            state.config["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "wget -q localhost:$PORT"], "Interval": 30_000_000_000u64, "Retries": 3})
        );
        // The history (and the cache key) names the expanded values.
        assert_eq!(texts[0], "ENV APP=/srv PORT=80");
        assert_eq!(texts[1], "EXPOSE map[53/udp:{} 80/tcp:{}]");
    }

    #[test]
    fn maintainer_is_the_images_author() {
        let (state, texts) = apply(
            ImageState::default(),
            &[Kind::Maintainer("Jane <jane@example.com>".into())],
        );
        assert_eq!(texts[0], "MAINTAINER Jane <jane@example.com>");
        assert_eq!(state.author.as_deref(), Some("Jane <jane@example.com>"));
        assert_eq!(state.config.get("Labels"), None);
        let config: Value = serde_json::from_slice(&state.config_json()).unwrap();
        assert_eq!(config["author"], "Jane <jane@example.com>");
    }

    #[test]
    fn a_port_exposed_many_times_is_one_port() {
        let expose = Kind::Expose(vec!["80".into(), "79-81".into(), "80/tcp".into()]);
        let (state, texts) = apply(ImageState::default(), &[expose]);
        assert_eq!(texts[0], "EXPOSE map[79/tcp:{} 80/tcp:{} 81/tcp:{}]");
        assert_eq!(state.config["ExposedPorts"].as_object().unwrap().len(), 3);
    }

    #[test]
    fn durations_read_as_go_reads_them() {
        assert_eq!(duration_nanos("30s").unwrap(), 30_000_000_000);
        assert_eq!(duration_nanos("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration_nanos("500ms").unwrap(), 500_000_000);
        assert!(duration_nanos("soon").is_err());
    }
}
