//! Several compose files (`-f a.yaml -f b.yaml`, or a file and its
//! `compose.override.yaml`) merged into one by the compose-spec's rules, on
//! their canonical YAML values (`crate::canonical`): mappings merge key by
//! key, the later file's scalars win, sequences append, except commands
//! (`command`, `entrypoint`, `healthcheck.test`: replaced) and the unique
//! resources (`ports` by address and port, `volumes` by target: replaced
//! where they collide). `!reset` removes a value, `!override` replaces it
//! whole.

use serde_yaml::{Mapping, Value};

/// `over` merged onto `base`.
pub fn merge(base: &mut Value, over: Value) {
    merge_at(base, over, &[]);
    strip_tags(base);
}

/// The service `over` merged onto the service `base` by the same rules, as
/// `extends` does.
pub fn merge_service(base: &mut Value, over: Value) {
    merge_at(base, over, &["services", ""]);
    strip_tags(base);
}

/// The YAML tag of `value`, if any (`!reset`, `!override`).
fn tag(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => Some(tagged.tag.to_string()),
        _ => None,
    }
}

fn merge_at(base: &mut Value, over: Value, path: &[&str]) {
    match tag(&over).as_deref() {
        Some("!override") => {
            *base = over;
            return;
        }
        Some("!reset") => {
            *base = Value::Null;
            return;
        }
        _ => {}
    }
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => merge_mappings(base, over, path),
        (Value::Sequence(base), Value::Sequence(over)) => match sequence_rule(path) {
            Rule::Replace => *base = over,
            Rule::UniqueBy(key) => merge_unique(base, over, key),
            Rule::Append => {
                for item in over {
                    if !base.contains(&item) {
                        base.push(item);
                    }
                }
            }
        },
        (base, over) => *base = over,
    }
}

fn merge_mappings(base: &mut Mapping, over: Mapping, path: &[&str]) {
    for (key, value) in over {
        if tag(&value).as_deref() == Some("!reset") {
            base.remove(&key);
            continue;
        }
        let name = key.as_str().unwrap_or_default().to_owned();
        let mut inner: Vec<&str> = path.to_vec();
        inner.push(&name);
        match base.get_mut(&key) {
            Some(existing) => merge_at(existing, value, &inner),
            None => {
                base.insert(key, value);
            }
        }
    }
}

/// How the sequences at a path merge.
enum Rule {
    Append,
    Replace,
    /// Items with the same identity (by this function) replace each other.
    UniqueBy(fn(&Value) -> Value),
}

fn sequence_rule(path: &[&str]) -> Rule {
    match path {
        ["services", _, "command" | "entrypoint"] => Rule::Replace,
        ["services", _, "healthcheck", "test"] => Rule::Replace,
        ["services", _, "ports"] => Rule::UniqueBy(port_identity),
        ["services", _, "volumes"] => Rule::UniqueBy(|item| item["target"].clone()),
        _ => Rule::Append,
    }
}

/// A port's identity: its address, published port, target and protocol.
fn port_identity(port: &Value) -> Value {
    let field = |name: &str| match &port[name] {
        Value::Number(n) => Value::String(n.to_string()),
        other => other.clone(),
    };
    Value::Sequence(vec![
        field("host_ip"),
        field("published"),
        field("target"),
        field("protocol"),
    ])
}

fn merge_unique(base: &mut Vec<Value>, over: Vec<Value>, identity: fn(&Value) -> Value) {
    for item in over {
        let id = identity(&item);
        match base.iter_mut().find(|existing| identity(existing) == id) {
            Some(existing) => *existing = item,
            None => base.push(item),
        }
    }
}

/// The values under tags, without the tags.
pub fn strip_tags(value: &mut Value) {
    if let Value::Tagged(tagged) = value {
        *value = std::mem::replace(&mut tagged.value, Value::Null);
    }
    match value {
        Value::Mapping(map) => map.iter_mut().for_each(|(_, v)| strip_tags(v)),
        Value::Sequence(items) => items.iter_mut().for_each(strip_tags),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::canonicalize;

    fn doc(text: &str) -> Value {
        let mut value: Value = serde_yaml::from_str(text).unwrap();
        canonicalize(&mut value).unwrap();
        value
    }

    #[test]
    fn two_files_merge_by_the_spec() {
        let mut base = doc(
            "services:\n  web:\n    image: web:1\n    command: [serve, --slow]\n    \
             environment: [A=1, B=2]\n    ports: ['8080:80']\n    volumes: ['data:/data', './a:/a']\n    \
             dns: [1.1.1.1]\n  db:\n    image: db\nvolumes:\n  data:\n",
        );
        let over = doc(
            "services:\n  web:\n    image: web:2\n    command: serve\n    environment: {B: '3', C: '4'}\n    \
             ports: ['8080:80', '9090:90']\n    volumes: ['other:/data']\n    dns: [8.8.8.8, 1.1.1.1]\n\
             volumes:\n  other:\n",
        );
        merge(&mut base, over);
        let web = &base["services"]["web"];
        assert_eq!(web["image"], Value::from("web:2"));
        assert_eq!(
            web["command"],
            serde_yaml::from_str::<Value>("[serve]").unwrap()
        );
        assert_eq!(
            web["environment"],
            serde_yaml::from_str::<Value>("{A: '1', B: '3', C: '4'}").unwrap()
        );
        assert_eq!(web["ports"].as_sequence().unwrap().len(), 2);
        let volumes = web["volumes"].as_sequence().unwrap();
        assert_eq!(volumes.len(), 2);
        assert_eq!(volumes[0]["source"], Value::from("other"));
        assert_eq!(
            web["dns"],
            serde_yaml::from_str::<Value>("[1.1.1.1, 8.8.8.8]").unwrap()
        );
        assert_eq!(base["services"]["db"]["image"], Value::from("db"));
        assert!(base["volumes"].as_mapping().unwrap().contains_key("data"));
        assert!(base["volumes"].as_mapping().unwrap().contains_key("other"));
    }

    #[test]
    fn reset_and_override_tags() {
        let mut base = doc(
            "services:\n  web:\n    image: w\n    ports: ['8080:80']\n    environment: {A: '1', B: '2'}\n",
        );
        let over = doc(
            "services:\n  web:\n    ports: !override ['9090:90']\n    environment: {A: !reset null}\n",
        );
        merge(&mut base, over);
        let web = &base["services"]["web"];
        assert_eq!(web["ports"].as_sequence().unwrap().len(), 1);
        assert_eq!(web["ports"][0]["target"], Value::from(90));
        assert_eq!(
            web["environment"],
            serde_yaml::from_str::<Value>("{B: '2'}").unwrap()
        );
    }
}
