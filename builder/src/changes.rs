//! `hull commit -c`: Dockerfile instructions as changes to an image's
//! config, the ones Docker's commit takes, with a build's rules (variables
//! expand against the config's `Env`; a new `ENTRYPOINT` drops the `Cmd`
//! unless a change set one; `WORKDIR` is relative to the one before).

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::dockerfile::{self, Instruction, Kind};
use crate::metadata::metadata;
use crate::state::ImageState;
use crate::words;

/// The instructions a change may be, as Docker's commit allows them.
const ALLOWED: [&str; 11] = [
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
    "HEALTHCHECK",
];

/// Changes to an image's config, checked.
#[derive(Debug, Clone, Default)]
pub struct Changes(Vec<Instruction>);

impl Changes {
    /// Reads `lines`, one instruction each; refuses an instruction Docker's
    /// commit does not take, or one whose values are malformed.
    pub fn parse(lines: &[String]) -> Result<Changes> {
        let mut instructions = Vec::new();
        for line in lines {
            let keyword = line.split_whitespace().next().unwrap_or_default();
            if !ALLOWED.contains(&keyword.to_ascii_uppercase().as_str()) {
                bail!(
                    "{keyword:?} is not a valid change command: use one of {}",
                    ALLOWED.join(", ")
                );
            }
            let instruction = dockerfile::parse_instruction(line)
                .with_context(|| format!("invalid change {line:?}"))?;
            instructions.push(instruction);
        }
        let changes = Changes(instructions);
        // Malformed values show now, before anything is committed.
        changes.apply(&mut Map::new())?;
        Ok(changes)
    }

    /// Applies the changes, in order, to `config`: Docker's `config`
    /// object of an image config (`Env`, `Cmd`, ...).
    pub fn apply(&self, config: &mut Map<String, Value>) -> Result<()> {
        let mut state = ImageState::default();
        state.config = std::mem::take(config);
        let applied = self
            .0
            .iter()
            .try_for_each(|instruction| apply_one(&mut state, instruction));
        *config = state.config;
        applied
    }
}

fn apply_one(state: &mut ImageState, instruction: &Instruction) -> Result<()> {
    let snapshot = state.clone();
    let lookup = |key: &str| snapshot.env_var(key);
    let expand = |text: &str| words::expand(text, '\\', &lookup);
    match &instruction.kind {
        // A build makes the directory; a commit only records it.
        Kind::Workdir(dir) => {
            let dir = expand(dir)?;
            let dir = match dir.starts_with('/') {
                true => dir,
                false => format!("{}/{dir}", snapshot.workdir().trim_end_matches('/')),
            };
            state.set("WorkingDir", json!(dir));
        }
        kind => {
            let (_, change) = metadata(kind, &expand, &snapshot, '\\')
                .with_context(|| format!("invalid change {:?}", instruction.text))?;
            change(state);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(lines: &[&str], config: Value) -> Value {
        let lines: Vec<String> = lines.iter().map(|line| line.to_string()).collect();
        let Value::Object(mut config) = config else {
            panic!("not an object")
        };
        Changes::parse(&lines).unwrap().apply(&mut config).unwrap();
        Value::Object(config)
    }

    #[test]
    fn changes_set_the_config_as_a_dockerfile_would() {
        let config = applied(
            &[
                r#"CMD ["cat","/greeting"]"#,
                "ENV MODE=prod DIR=$HOME/app",
                "expose 8080",
                "LABEL team=core",
                "WORKDIR sub",
                "USER app",
                "VOLUME /data",
                "STOPSIGNAL SIGQUIT",
                "ONBUILD RUN make",
                "HEALTHCHECK --interval=5s CMD true",
            ],
            json!({
                "Env": ["PATH=/bin", "HOME=/root"],
                "Cmd": ["sh"],
                "WorkingDir": "/srv",
            }),
        );
        assert_eq!(
            config,
            json!({
                "Env": ["PATH=/bin", "HOME=/root", "MODE=prod", "DIR=/root/app"],
                "Cmd": ["cat", "/greeting"],
                "ExposedPorts": { "8080/tcp": {} },
                "Labels": { "team": "core" },
                "WorkingDir": "/srv/sub",
                "User": "app",
                "Volumes": { "/data": {} },
                "StopSignal": "SIGQUIT",
                "OnBuild": ["RUN make"],
                "Healthcheck": { "Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000u64 },
            })
        );
    }

    #[test]
    fn a_new_entrypoint_drops_the_cmd_unless_a_change_set_it() {
        let base = json!({ "Cmd": ["sh"] });
        let config = applied(&[r#"ENTRYPOINT ["/run"]"#], base.clone());
        assert_eq!(config, json!({ "Entrypoint": ["/run"] }));
        let config = applied(&["CMD serve", r#"ENTRYPOINT ["/run"]"#], base);
        assert_eq!(
            config,
            json!({ "Entrypoint": ["/run"], "Cmd": ["/bin/sh", "-c", "serve"] })
        );
    }

    #[test]
    fn an_empty_entrypoint_change_resets_the_entrypoint_and_cmd() {
        let base = json!({ "Entrypoint": ["/init"], "Cmd": ["sh"], "User": "app" });
        let config = applied(&["ENTRYPOINT []"], base);
        assert_eq!(config, json!({ "User": "app" }));
    }

    #[test]
    fn other_instructions_and_malformed_values_are_refused() {
        for (line, expected) in [
            ("RUN rm -rf /", "\"RUN\" is not a valid change command"),
            ("FROM busybox", "\"FROM\" is not a valid change command"),
            ("", "\"\" is not a valid change command"),
            ("ENV", "invalid change \"ENV\""),
            (
                "HEALTHCHECK --every=5s CMD true",
                "HEALTHCHECK --every is not an option",
            ),
            ("STOPSIGNAL FOO", "Invalid signal: FOO"),
            ("LABEL a", "LABEL must have two arguments"),
        ] {
            let err = Changes::parse(&[line.to_owned()]).unwrap_err();
            assert!(format!("{err:#}").contains(expected), "{line}: {err:#}");
        }
    }
}
