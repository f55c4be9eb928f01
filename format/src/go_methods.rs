//! What Docker's templates get from Go itself that gotmpl's JSON-like data
//! lacks: the `Label` method of list rows (`{{.Label "com.example.tier"}}`)
//! and `index` returning the zero value for a key a map lacks.
//!
//! gotmpl calls functions, not methods of the data, so `.Label "KEY"` in an
//! action is rewritten into a call of [`LABEL_FUNCTION`] on the dot before
//! the template is parsed.

use gotmpl::{TemplateError, Value};

/// The function `.Label "KEY"` becomes (a name no template uses).
pub const LABEL_FUNCTION: &str = "__hull_label";

/// The header of a column of `.Label` (Docker's cannot render one).
pub const LABEL_HEADER: &str = "LABEL";

/// `template` with each `.Label "KEY"` (or `` .Label `KEY` ``) inside its
/// actions turned into `(__hull_label . "KEY")`.
pub fn rewrite_label_calls(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let (text, action) = rest.split_at(start + 2);
        out.push_str(text);
        let end = super::action_end(action);
        out.push_str(&rewrite_action(&action[..end]));
        rest = &action[end..];
    }
    out.push_str(rest);
    out
}

/// One action's text, its `.Label` calls rewritten; quoted text is left
/// as it is.
fn rewrite_action(action: &str) -> String {
    let mut out = String::with_capacity(action.len());
    let mut at = 0;
    while let Some(c) = action[at..].chars().next() {
        if let Some(quoted) = quoted_at(action, at) {
            out.push_str(quoted);
            at += quoted.len();
            continue;
        }
        let starts_word = at == 0 || action[..at].ends_with([' ', '\t', '\n', '(', '|']);
        if let Some((call, len)) = label_call(&action[at..]).filter(|_| starts_word) {
            out.push_str(&call);
            at += len;
            continue;
        }
        out.push(c);
        at += c.len_utf8();
    }
    out
}

/// `.Label KEY` at the start of `text`: its rewriting and its length.
fn label_call(text: &str) -> Option<(String, usize)> {
    let after = text.strip_prefix(".Label")?;
    let spaces = after.len() - after.trim_start_matches([' ', '\t']).len();
    if spaces == 0 {
        return None;
    }
    let key = quoted_at(after, spaces)?;
    let len = ".Label".len() + spaces + key.len();
    Some((format!("({LABEL_FUNCTION} . {key})"), len))
}

/// The quoted string (`"..."` with escapes, or `` `...` ``) starting at
/// `text[at]`, quotes included.
fn quoted_at(text: &str, at: usize) -> Option<&str> {
    let quote = text[at..]
        .chars()
        .next()
        .filter(|c| matches!(c, '"' | '`'))?;
    let mut escaped = false;
    for (i, c) in text[at + 1..].char_indices() {
        match c {
            '\\' if quote == '"' && !escaped => escaped = true,
            c if c == quote && !escaped => return Some(&text[at..at + 1 + i + 1]),
            _ => escaped = false,
        }
    }
    None
}

/// `__hull_label ROW KEY`: the value of the label `KEY` of a list row,
/// from its `Labels` field (`k=v,k2=v2`, see [`super::labels_field`]);
/// empty if it has none, as Docker's `Label` method.
pub fn label(arguments: &[Value]) -> gotmpl::Result<Value> {
    let [row, key] = arguments else {
        return Err(super::wrong_arguments(LABEL_FUNCTION, arguments, 2));
    };
    let key = super::string(key)?;
    let labels = match row {
        Value::Map(fields) => fields.get("Labels").and_then(Value::as_str).unwrap_or(""),
        _ => "",
    };
    let value = parse_labels(labels)
        .into_iter()
        .find(|(name, _)| *name == key)
        .map_or(String::new(), |(_, value)| value);
    Ok(Value::String(value.into()))
}

/// `k=v,k2=v2` back into pairs: a part without `=` belongs to the value
/// before it (a value with a comma).
fn parse_labels(labels: &str) -> Vec<(&str, String)> {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for part in labels.split(',').filter(|part| !part.is_empty()) {
        match (part.split_once('='), pairs.last_mut()) {
            (Some((key, value)), _) => pairs.push((key, value.to_owned())),
            (None, Some((_, value))) => {
                value.push(',');
                value.push_str(part);
            }
            (None, None) => pairs.push((part, String::new())),
        }
    }
    pairs
}

/// `index COLLECTION KEYS...`, as Go's: a map's missing key (and anything
/// of a nil map) is the zero value, taken to be the empty string, that of
/// Docker's maps of strings (labels, options), where it matters most; an
/// index out of range is an error.
pub fn index(arguments: &[Value]) -> gotmpl::Result<Value> {
    let Some((collection, keys)) = arguments.split_first() else {
        return Err(super::wrong_arguments("index", arguments, 1));
    };
    let mut value = collection.clone();
    for key in keys {
        value = match &value {
            Value::Nil => return Ok(Value::String("".into())),
            Value::Map(map) => match map.get(super::string(key)?) {
                Some(found) => found.clone(),
                None => return Ok(Value::String("".into())),
            },
            Value::List(list) => nth(list, key)?.clone(),
            // A string's byte, as a number.
            Value::String(text) => Value::Int(i64::from(*nth(text.as_bytes(), key)?)),
            other => {
                return Err(TemplateError::Exec(format!(
                    "can't index item of type {}",
                    other.type_name()
                )))
            }
        };
    }
    Ok(value)
}

/// The item of `items` at the index `key`.
fn nth<'a, T>(items: &'a [T], key: &Value) -> gotmpl::Result<&'a T> {
    let at = super::integer(key)?;
    usize::try_from(at)
        .ok()
        .and_then(|at| items.get(at))
        .ok_or_else(|| TemplateError::Exec(format!("index out of range: {at}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_calls_in_actions_become_function_calls() {
        assert_eq!(
            rewrite_label_calls(r#"{{.Names}} {{.Label "com.x"}}"#),
            r#"{{.Names}} {{(__hull_label . "com.x")}}"#
        );
        assert_eq!(
            rewrite_label_calls(r#"{{if eq (.Label `tier`) "web"}}.Label "x"{{end}}"#),
            r#"{{if eq ((__hull_label . `tier`)) "web"}}.Label "x"{{end}}"#
        );
        // Quoted text and other fields stay as they are.
        let untouched = r#"{{printf ".Label %s" .Labels}} {{.LabelCount}}"#;
        assert_eq!(rewrite_label_calls(untouched), untouched);
    }

    #[test]
    fn labels_read_back_from_their_field() {
        assert_eq!(
            parse_labels("a=1,b=x,y,c="),
            [("a", "1".into()), ("b", "x,y".into()), ("c", "".into())]
        );
        assert!(parse_labels("").is_empty());
    }
}
