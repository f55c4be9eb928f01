//! YAML text as Docker Compose writes it (go-yaml v3, two-space indents,
//! sequences indented under their key), quoting every string a YAML 1.1
//! reader would take for something else: `no`, `off`, `yes` and `on` stay
//! strings (an environment's `KONG_DATABASE: "off"`), as do numbers and
//! `8080:80`. Strings of several lines are literal blocks.

use std::fmt::Write as _;

use serde_yaml::{Mapping, Value};

const INDENT: usize = 2;

/// `value` as a YAML document.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Mapping(map) if !map.is_empty() => mapping(map, 0, &mut out),
        Value::Sequence(items) if !items.is_empty() => sequence(items, 0, &mut out),
        other => {
            out.push_str(&inline(other, 0));
            out.push('\n');
        }
    }
    out
}

/// A mapping's entries at `indent`, the first one's indentation already
/// written when the mapping is a sequence item.
fn mapping(map: &Mapping, indent: usize, out: &mut String) {
    for (index, (key, item)) in map.iter().enumerate() {
        if index > 0 || !out.ends_with("- ") {
            pad(indent, out);
        }
        out.push_str(&scalar_key(key));
        out.push(':');
        nested(item, indent, out);
    }
}

/// A sequence's items at `indent`.
fn sequence(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        pad(indent, out);
        out.push('-');
        match item {
            Value::Mapping(map) if !map.is_empty() => {
                out.push(' ');
                mapping(map, indent + INDENT, out);
            }
            Value::Sequence(inner) if !inner.is_empty() => {
                out.push('\n');
                sequence(inner, indent + INDENT, out);
            }
            other => {
                out.push(' ');
                out.push_str(&inline(other, indent + INDENT));
                out.push('\n');
            }
        }
    }
}

/// What follows `key:` at `indent`.
fn nested(item: &Value, indent: usize, out: &mut String) {
    match item {
        Value::Mapping(map) if !map.is_empty() => {
            out.push('\n');
            mapping(map, indent + INDENT, out);
        }
        Value::Sequence(items) if !items.is_empty() => {
            out.push('\n');
            sequence(items, indent + INDENT, out);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other, indent + INDENT));
            out.push('\n');
        }
    }
}

fn pad(indent: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A scalar, an empty collection or a tagged value on one line (a block
/// string continues on lines indented by `indent`).
fn inline(value: &Value, indent: usize) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => string(text, indent),
        Value::Mapping(_) => "{}".into(),
        Value::Sequence(_) => "[]".into(),
        Value::Tagged(tagged) => format!("{} {}", tagged.tag, inline(&tagged.value, indent)),
    }
}

fn scalar_key(key: &Value) -> String {
    match key {
        Value::String(text) if plain_is_safe(text) => text.clone(),
        Value::String(text) => quoted(text),
        other => inline(other, 0),
    }
}

/// A string: plain if a reader takes it back as this string, a literal
/// block if it has several lines, else double-quoted.
fn string(text: &str, indent: usize) -> String {
    if plain_is_safe(text) {
        return text.to_owned();
    }
    literal_block(text, indent).unwrap_or_else(|| quoted(text))
}

/// `|` with the lines of `text` (chomping as its final newlines need), if
/// a literal block holds it exactly.
fn literal_block(text: &str, indent: usize) -> Option<String> {
    let body = text.trim_end_matches('\n');
    let trailing = text.len() - body.len();
    let fits = text.contains('\n')
        && !body.is_empty()
        && !body.starts_with([' ', '\t'])
        && !body.lines().any(|line| line.ends_with([' ', '\t']))
        && !text.chars().any(|c| c.is_control() && c != '\n');
    if !fits {
        return None;
    }
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}");
    for line in text
        .split('\n')
        .take(body.lines().count() + trailing.saturating_sub(1))
    {
        out.push('\n');
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(line);
        }
    }
    Some(out)
}

/// Whether `text` reads back, unquoted, as this string under YAML 1.1
/// and 1.2 alike.
fn plain_is_safe(text: &str) -> bool {
    const SPECIAL_FIRST: &[char] = &[
        '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`',
        ' ', '\t',
    ];
    const WORDS: &[&str] = &[
        "null", "true", "false", "yes", "no", "on", "off", "y", "n", "~",
    ];
    let Some(first) = text.chars().next() else {
        return false;
    };
    let lower = text.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let looks_numeric = unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && unsigned
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "xo_.:+-".contains(c));
    let lone_dash = first == '-' && (text.len() == 1 || text[1..].starts_with(' '));
    !(SPECIAL_FIRST.contains(&first)
        || lone_dash
        || looks_numeric
        || text.ends_with([' ', ':'])
        || text.contains(": ")
        || text.contains(" #")
        || text.chars().any(char::is_control)
        || WORDS.contains(&lower.as_str())
        || matches!(unsigned, ".inf" | ".nan"))
}

/// `text` double-quoted, escaped.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn writes_compose_s_layout_and_quotes_what_yaml_1_1_misreads() {
        let value = yaml(
            "name: shop\nservices:\n  kong:\n    environment:\n      KONG_DATABASE: 'off'\n      \
             EMPTY: ''\n      TOKEN: 'a: b'\n      PORT: '8000'\n      LISTEN: 0.0.0.0:8000\n    \
             ports:\n    - {mode: ingress, target: 8000, published: '8000'}\n    \
             networks: {default: null}\n    restart: 'no'\n    tmpfs: []\n    \
             command: [bash, -c, echo $$HOME]\n    labels: {'-1': '-1', a: '- b', c: '~/x', d: '~', e: '.5', f: '12-alpine'}\n",
        );
        let text = to_string(&value);
        assert_eq!(
            text,
            "name: shop
services:
  kong:
    environment:
      KONG_DATABASE: \"off\"
      EMPTY: \"\"
      TOKEN: \"a: b\"
      PORT: \"8000\"
      LISTEN: \"0.0.0.0:8000\"
    ports:
      - mode: ingress
        target: 8000
        published: \"8000\"
    networks:
      default: null
    restart: \"no\"
    tmpfs: []
    command:
      - bash
      - -c
      - echo $$HOME
    labels:
      \"-1\": \"-1\"
      a: \"- b\"
      c: ~/x
      d: \"~\"
      e: \".5\"
      f: 12-alpine
"
        );
        assert_eq!(yaml(&text), value);
    }

    #[test]
    fn strings_of_several_lines_are_literal_blocks_that_read_back() {
        for text in [
            "ServerName localhost\n",
            "a\n\nb",
            "two\nlines\n\n",
            " leading space\nx",
            "tab\tinside\nx",
            "\"quoted\" \\ back\u{1}",
        ] {
            let mut map = Mapping::new();
            map.insert("content".into(), text.into());
            let value = Value::Mapping(map);
            let written = to_string(&value);
            assert_eq!(yaml(&written), value, "{text:?} as {written}");
        }
        let mut map = Mapping::new();
        map.insert("content".into(), "ServerName localhost\n".into());
        assert_eq!(
            to_string(&Value::Mapping(map)),
            "content: |\n  ServerName localhost\n"
        );
    }
}
