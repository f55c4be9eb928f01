//! Where in a compose file a value is: `services.web.ports[0]`, as error
//! messages and warnings name it.

use std::fmt;

use serde_yaml::Value;

/// A path from a file's root to one of its values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YamlPath(String);

impl YamlPath {
    /// The file's root.
    pub fn root() -> YamlPath {
        YamlPath::default()
    }

    /// The value at mapping key `key` below this one.
    pub fn key(&self, key: &Value) -> YamlPath {
        let key = match key {
            Value::String(key) => key.clone(),
            other => serde_yaml::to_string(other)
                .unwrap_or_default()
                .trim_end()
                .to_owned(),
        };
        self.field(&key)
    }

    /// The value at field `name` below this one.
    pub fn field(&self, name: &str) -> YamlPath {
        match self.0.is_empty() {
            true => YamlPath(name.to_owned()),
            false => YamlPath(format!("{}.{name}", self.0)),
        }
    }

    /// The item `index` of the sequence here.
    pub fn index(&self, index: usize) -> YamlPath {
        YamlPath(format!("{}[{index}]", self.0))
    }
}

impl From<&str> for YamlPath {
    fn from(path: &str) -> YamlPath {
        YamlPath(path.to_owned())
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.is_empty() {
            true => f.write_str("(top level)"),
            false => f.write_str(&self.0),
        }
    }
}
