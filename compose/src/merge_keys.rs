//! YAML merge keys (`<<: *defaults`, `<<: [*a, *b]`) applied as YAML 1.1
//! defines them and Compose reads them: the mapping's own keys win over
//! merged ones, an earlier merged mapping over a later one, and a mapping
//! merged in may itself hold merge keys (`x-web: {<<: *base, ...}` then
//! `web: {<<: *x-web}`), which are applied first.

use serde_yaml::{Mapping, Value};

use crate::path::YamlPath;

const MERGE_KEY: &str = "<<";

/// Applies every merge key in `value`; the error names where one merges
/// something other than mappings.
pub fn apply(value: &mut Value, path: &YamlPath) -> Result<(), (YamlPath, String)> {
    match value {
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                apply(item, &path.key(key))?;
            }
            let Some(merged) = map.remove(MERGE_KEY) else {
                return Ok(());
            };
            let at = path.field(MERGE_KEY);
            for source in sources(merged, &at)? {
                for (key, item) in source {
                    if !map.contains_key(&key) {
                        map.insert(key, item);
                    }
                }
            }
        }
        Value::Sequence(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                apply(item, &path.index(index))?;
            }
        }
        Value::Tagged(tagged) => apply(&mut tagged.value, path)?,
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
    Ok(())
}

/// The mappings a merge key's value names, in order of precedence.
fn sources(merged: Value, at: &YamlPath) -> Result<Vec<Mapping>, (YamlPath, String)> {
    let not_mapping = || {
        (
            at.clone(),
            "a merge key takes a mapping or a list of mappings".to_owned(),
        )
    };
    match merged {
        Value::Mapping(map) => Ok(vec![map]),
        Value::Sequence(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Mapping(map) => Ok(map),
                _ => Err(not_mapping()),
            })
            .collect(),
        _ => Err(not_mapping()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(text: &str) -> Value {
        let mut value: Value = serde_yaml::from_str(text).unwrap();
        apply(&mut value, &YamlPath::root()).unwrap();
        value
    }

    #[test]
    fn nested_merges_apply_and_own_keys_win() {
        // As getsentry/self-hosted writes its services.
        let value = applied(
            "x-restart: &restart\n  restart: unless-stopped\n\
             x-healthy: &healthy\n  condition: service_healthy\n\
             x-defaults: &defaults\n  <<: *restart\n  image: sentry\n  depends_on:\n    redis:\n      <<: *healthy\n\
             services:\n  web:\n    <<: *defaults\n    image: sentry:web\n",
        );
        let web = &value["services"]["web"];
        assert_eq!(web["restart"], Value::from("unless-stopped"));
        assert_eq!(web["image"], Value::from("sentry:web"));
        assert_eq!(
            web["depends_on"]["redis"]["condition"],
            Value::from("service_healthy")
        );
        assert!(web.get(MERGE_KEY).is_none());
        assert!(value["x-defaults"].get(MERGE_KEY).is_none());
    }

    #[test]
    fn a_list_of_merges_gives_the_first_precedence() {
        let value = applied("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n");
        assert_eq!(value["c"], applied("{x: 1, y: 1, z: 2}"));
    }

    #[test]
    fn merging_a_scalar_is_an_error_naming_its_place() {
        let mut value: Value = serde_yaml::from_str("services:\n  web:\n    <<: 3\n").unwrap();
        let (at, reason) = apply(&mut value, &YamlPath::root()).unwrap_err();
        assert_eq!(at.to_string(), "services.web.<<");
        assert!(reason.contains("mapping"), "{reason}");
    }
}
