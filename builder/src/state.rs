//! A stage's image as the build goes: the image config (kept as Docker's
//! JSON, so that fields hull does not model pass through from the base),
//! its history and its layers.

use std::collections::HashMap;

use hull_image::{Image, Layer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The shell of shell forms unless `SHELL` says otherwise.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];
/// The `PATH` a step gets where the image sets none, as BuildKit's.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A stage's image so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageState {
    /// The config's `config` object: `Env`, `Cmd`, `Entrypoint`, ...
    /// (`Env` changed through [`ImageState::set_env`] or
    /// [`ImageState::set`], which keep its index true.)
    pub config: Map<String, Value>,
    /// The config's `history`.
    pub history: Vec<Value>,
    /// Whether this stage set `CMD` (an `ENTRYPOINT` after it keeps it).
    pub cmd_set: bool,
    /// The image config's `author` (`MAINTAINER`), the base's until set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The layers, bottom first (kept beside the state in the cache).
    #[serde(skip)]
    pub layers: Vec<Layer>,
    /// Where each variable is in `Env`, kept by `set_env`: a long run of
    /// `ENV`s takes time linear in its length.
    #[serde(skip)]
    env_index: Option<EnvIndex>,
}

/// The position of each variable in an `Env` of `len` entries (its first,
/// as a lookup finds it).
#[derive(Debug, Clone)]
struct EnvIndex {
    positions: HashMap<String, usize>,
    len: usize,
}

impl EnvIndex {
    fn of(env: &[Value]) -> EnvIndex {
        let mut positions = HashMap::with_capacity(env.len());
        for (at, entry) in env.iter().enumerate() {
            if let Some(entry) = entry.as_str() {
                positions.entry(env_key(entry).to_owned()).or_insert(at);
            }
        }
        EnvIndex {
            positions,
            len: env.len(),
        }
    }
}

impl ImageState {
    /// The state of image `image`, whose config as stored is `config`
    /// (Docker's JSON: the fields the OCI config leaves out, such as
    /// `Healthcheck`, `OnBuild` and `Shell`, are kept).
    pub fn of_image(image: &Image, config: &Value) -> anyhow::Result<ImageState> {
        let layers = image
            .manifest
            .layers
            .iter()
            .zip(image.config.rootfs().diff_ids())
            .map(|(blob, diff_id)| {
                Ok(Layer {
                    diff_id: hull_image::Digest::parse(diff_id)?,
                    blob: hull_image::Digest::parse(&blob.digest)?,
                    blob_size: u64::try_from(blob.size).unwrap_or(0),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(ImageState {
            config: config
                .get("config")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            history: config
                .get("history")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            cmd_set: false,
            author: config
                .get("author")
                .and_then(Value::as_str)
                .map(str::to_owned),
            layers,
            env_index: None,
        })
    }

    /// `Env` as pairs, in order.
    pub fn env(&self) -> Vec<(String, String)> {
        self.strings("Env")
            .into_iter()
            .map(|entry| match entry.split_once('=') {
                Some((key, value)) => (key.to_owned(), value.to_owned()),
                None => (entry, String::new()),
            })
            .collect()
    }

    /// The value of `Env`'s `key`.
    pub fn env_var(&self, key: &str) -> Option<String> {
        let env = self.config.get("Env")?.as_array()?;
        let entry = env[find_env(env, self.env_index.as_ref(), key)?].as_str()?;
        Some(entry.split_once('=').map_or("", |(_, v)| v).to_owned())
    }

    /// Sets `key` in `Env`, in its place if it is there.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let env = self
            .config
            .entry("Env".to_owned())
            .or_insert_with(|| json!([]));
        if !env.is_array() {
            *env = json!([]);
        }
        let env = env.as_array_mut().expect("made an array");
        let mut index = self
            .env_index
            .take()
            .filter(|index| index.len == env.len())
            .unwrap_or_else(|| EnvIndex::of(env));
        let entry = Value::String(format!("{key}={value}"));
        let at = match find_env(env, Some(&index), key) {
            Some(at) => {
                env[at] = entry;
                at
            }
            None => {
                env.push(entry);
                env.len() - 1
            }
        };
        index.positions.insert(key.to_owned(), at);
        index.len = env.len();
        self.env_index = Some(index);
    }

    /// `WorkingDir`, `/` if unset.
    pub fn workdir(&self) -> String {
        self.string("WorkingDir")
            .filter(|dir| !dir.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    /// `User`, empty for root.
    pub fn user(&self) -> String {
        self.string("User").unwrap_or_default()
    }

    /// `Shell`, or `/bin/sh -c`.
    pub fn shell(&self) -> Vec<String> {
        let shell = self.strings("Shell");
        match shell.is_empty() {
            true => DEFAULT_SHELL.map(String::from).to_vec(),
            false => shell,
        }
    }

    /// A string field of the config.
    pub fn string(&self, key: &str) -> Option<String> {
        self.config
            .get(key)
            .and_then(Value::as_str)
            .map(String::from)
    }

    /// A string list field of the config (empty if unset or null).
    pub fn strings(&self, key: &str) -> Vec<String> {
        self.config
            .get(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets a field; `Value::Null` removes it.
    pub fn set(&mut self, key: &str, value: Value) {
        if key == "Env" {
            self.env_index = None;
        }
        match value {
            Value::Null => self.config.remove(key),
            value => self.config.insert(key.into(), value),
        };
    }

    /// Adds `key` to the object field `field` (`ExposedPorts`, `Volumes`).
    pub fn add_to_set(&mut self, field: &str, key: &str) {
        let entry = self
            .config
            .entry(field.to_owned())
            .or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        entry
            .as_object_mut()
            .expect("made an object")
            .insert(key.to_owned(), json!({}));
    }

    /// Adds a `LABEL`.
    pub fn add_label(&mut self, key: &str, value: &str) {
        let labels = self
            .config
            .entry("Labels".to_owned())
            .or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        labels
            .as_object_mut()
            .expect("made an object")
            .insert(key.to_owned(), json!(value));
    }

    /// Records an instruction in the history, at `created`.
    pub fn record(&mut self, created: &str, created_by: &str, empty_layer: bool) {
        let mut entry = json!({
            "created": created,
            "created_by": created_by,
            "comment": "buildkit.dockerfile.v0",
        });
        if empty_layer {
            entry["empty_layer"] = json!(true);
        }
        self.history.push(entry);
    }

    /// The image config as stored: Docker's JSON, created when its last
    /// history entry was, so an unchanged build gives the same bytes.
    pub fn config_json(&self) -> Vec<u8> {
        let created = self
            .history
            .iter()
            .rev()
            .find_map(|entry| entry.get("created").cloned())
            .unwrap_or(Value::Null);
        let diff_ids: Vec<&str> = self
            .layers
            .iter()
            .map(|layer| layer.diff_id.as_str())
            .collect();
        let mut config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": self.config,
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": self.history,
        });
        if !created.is_null() {
            config["created"] = created;
        }
        if let Some(author) = &self.author {
            config["author"] = json!(author);
        }
        serde_json::to_vec(&config).expect("JSON values serialize")
    }
}

/// Where `key` is in `env`: from `index` if it is `env`'s, else by a scan.
fn find_env(env: &[Value], index: Option<&EnvIndex>, key: &str) -> Option<usize> {
    let is_key = |at: &usize| {
        env.get(*at)
            .and_then(Value::as_str)
            .is_some_and(|entry| env_key(entry) == key)
    };
    if let Some(index) = index.filter(|index| index.len == env.len()) {
        match index.positions.get(key) {
            None => return None,
            Some(at) if is_key(at) => return Some(*at),
            Some(_) => {}
        }
    }
    (0..env.len()).find(is_key)
}

/// The variable an `Env` entry (`KEY=value`) sets.
fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(key, _)| key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keeps_order_and_replaces_in_place() {
        let mut state = ImageState::default();
        state.set_env("PATH", "/bin");
        state.set_env("A", "1");
        state.set_env("PATH", "/usr/bin:/bin");
        assert_eq!(state.strings("Env"), ["PATH=/usr/bin:/bin", "A=1"]);
        assert_eq!(state.env_var("A").as_deref(), Some("1"));
        // An Env set whole is found again, its first entry for a name.
        state.set("Env", json!(["B=2", "A", "B=3"]));
        assert_eq!(state.env_var("B").as_deref(), Some("2"));
        assert_eq!(state.env_var("A").as_deref(), Some(""));
        state.set_env("B", "4");
        state.set_env("C", "5");
        assert_eq!(state.strings("Env"), ["B=4", "A", "B=3", "C=5"]);
        assert_eq!(state.env_var("C").as_deref(), Some("5"));
        assert_eq!(state.env_var("PATH"), None);
        // A state read back from the cache has no index, and needs none.
        let read: ImageState =
            serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
        assert_eq!(read.env_var("C").as_deref(), Some("5"));
        assert_eq!(state.shell(), ["/bin/sh", "-c"]);
        assert_eq!(state.workdir(), "/");
    }

    #[test]
    fn the_config_is_created_when_its_last_step_was() {
        let mut state = ImageState::default();
        state.record("2026-01-01T00:00:00Z", "ENV A=1", true);
        state.record("2026-01-02T00:00:00Z", "RUN true", false);
        let config: Value = serde_json::from_slice(&state.config_json()).unwrap();
        assert_eq!(config["created"], "2026-01-02T00:00:00Z");
        assert_eq!(config.get("author"), None);
        assert_eq!(config["history"][0]["empty_layer"], true);
        assert_eq!(state.config_json(), state.clone().config_json());
    }
}
