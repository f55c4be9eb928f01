//! Variable interpolation in a compose file's values, as the compose-spec
//! defines it: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+replacement}`,
//! `${VAR+replacement}` (defaults, errors and replacements may hold more
//! of these) and `$$` for a literal `$`. Keys are left as written.

use serde_yaml::Value;

use crate::path::YamlPath;

/// How deep `${...}` may nest in a default, error or replacement: deeper
/// than anyone writes, and shallow enough that a hostile file cannot run
/// the interpolation out of stack.
const MAX_NESTING: usize = 32;

/// Where variables come from, and what interpolation noticed.
pub struct Interpolator<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Variables used but not set, each once.
    pub unset: Vec<String>,
    /// How many `${...}` the text being interpolated sits in.
    nesting: usize,
}

/// Why a value could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationError {
    /// A `$` that starts nothing known (`$1`, `${}`, an unclosed `${`).
    Invalid(String),
    /// `${...}` nested deeper than [`MAX_NESTING`] levels.
    TooDeep,
    /// `${VAR:?error}` or `${VAR?error}` with the variable missing.
    Required {
        /// The variable.
        name: String,
        /// The error text given (interpolated).
        message: String,
    },
}

impl std::fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpolationError::Invalid(text) => write!(
                f,
                "invalid interpolation format in {text:?}: write a literal $ as $$"
            ),
            InterpolationError::TooDeep => write!(
                f,
                "variables nested more than {MAX_NESTING} levels deep in a default"
            ),
            InterpolationError::Required { name, message } if message.is_empty() => {
                write!(f, "required variable {name} is missing a value")
            }
            InterpolationError::Required { name, message } => {
                write!(f, "required variable {name} is missing a value: {message}")
            }
        }
    }
}

impl<'a> Interpolator<'a> {
    /// Interpolates with variables from `lookup`.
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Interpolator<'a> {
        Interpolator {
            lookup,
            unset: Vec::new(),
            nesting: 0,
        }
    }

    /// Interpolates every string in `value` (not mapping keys); the error
    /// names where it was.
    pub fn value(
        &mut self,
        value: &mut Value,
        path: &YamlPath,
    ) -> Result<(), (YamlPath, InterpolationError)> {
        match value {
            Value::String(text) => {
                *text = self.text(text).map_err(|err| (path.clone(), err))?;
            }
            Value::Sequence(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    self.value(item, &path.index(index))?;
                }
            }
            Value::Mapping(map) => {
                for (key, item) in map.iter_mut() {
                    self.value(item, &path.key(key))?;
                }
            }
            Value::Tagged(tagged) => self.value(&mut tagged.value, path)?,
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        Ok(())
    }

    /// `text` with its variables substituted.
    pub fn text(&mut self, text: &str) -> Result<String, InterpolationError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let invalid = || InterpolationError::Invalid(text.to_owned());
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('{') {
                let end = closing_brace(inner).ok_or_else(invalid)?;
                out.push_str(&self.braced(&inner[..end], text)?);
                rest = &inner[end + 1..];
            } else {
                let len = name_len(after);
                if len == 0 {
                    return Err(invalid());
                }
                out.push_str(&self.get(&after[..len]).unwrap_or_default());
                rest = &after[len..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// What `${body}` stands for.
    fn braced(&mut self, body: &str, text: &str) -> Result<String, InterpolationError> {
        let len = name_len(body);
        if len == 0 {
            return Err(InterpolationError::Invalid(text.to_owned()));
        }
        let (name, operator) = body.split_at(len);
        let value = (self.lookup)(name);
        let (colon, operator) = match operator.strip_prefix(':') {
            Some(operator) => (true, operator),
            None => (false, operator),
        };
        // With a colon, an empty value counts as unset.
        let set = value.as_ref().is_some_and(|v| !colon || !v.is_empty());
        let Some(kind) = operator.chars().next() else {
            if colon {
                return Err(InterpolationError::Invalid(text.to_owned()));
            }
            return Ok(self.get(name).unwrap_or_default());
        };
        let word = &operator[1..];
        match kind {
            '-' if set => Ok(value.unwrap_or_default()),
            '-' => self.nested(word),
            '?' if set => Ok(value.unwrap_or_default()),
            '?' => Err(InterpolationError::Required {
                name: name.to_owned(),
                message: self.nested(word)?,
            }),
            '+' if set => self.nested(word),
            '+' => Ok(String::new()),
            _ => Err(InterpolationError::Invalid(text.to_owned())),
        }
    }

    /// `word`, the text of a default, error or replacement, interpolated.
    fn nested(&mut self, word: &str) -> Result<String, InterpolationError> {
        if self.nesting == MAX_NESTING {
            return Err(InterpolationError::TooDeep);
        }
        self.nesting += 1;
        let text = self.text(word);
        self.nesting -= 1;
        text
    }

    /// The variable `name`, noting it if unset.
    fn get(&mut self, name: &str) -> Option<String> {
        let value = (self.lookup)(name);
        if value.is_none() && !self.unset.iter().any(|n| n == name) {
            self.unset.push(name.to_owned());
        }
        value
    }
}

/// The length of the variable name `text` starts with.
fn name_len(text: &str) -> usize {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, c)) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return 0,
    }
    chars
        .find(|(_, c)| !(*c == '_' || c.is_ascii_alphanumeric()))
        .map_or(text.len(), |(at, _)| at)
}

/// Where the `}` closing a `${` is in `inner` (what follows the `${`),
/// past nested `${...}`.
fn closing_brace(inner: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = inner.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'$' if bytes.get(at + 1) == Some(&b'$') => at += 1,
            b'$' if bytes.get(at + 1) == Some(&b'{') => {
                depth += 1;
                at += 1;
            }
            b'}' if depth == 0 => return Some(at),
            b'}' => depth -= 1,
            _ => {}
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)], text: &str) -> Result<String, InterpolationError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Interpolator::new(&lookup).text(text)
    }

    #[test]
    fn plain_and_braced_variables() {
        let vars = [("TAG", "1.2"), ("EMPTY", "")];
        assert_eq!(with(&vars, "app:$TAG").unwrap(), "app:1.2");
        assert_eq!(with(&vars, "app:${TAG}-x").unwrap(), "app:1.2-x");
        assert_eq!(with(&vars, "[$EMPTY][$MISSING]").unwrap(), "[][]");
        assert_eq!(with(&vars, "$TAG.$TAG").unwrap(), "1.2.1.2");
    }

    #[test]
    fn defaults_tell_unset_from_empty() {
        let vars = [("EMPTY", "")];
        assert_eq!(with(&vars, "${EMPTY:-d}").unwrap(), "d");
        assert_eq!(with(&vars, "${EMPTY-d}").unwrap(), "");
        assert_eq!(with(&vars, "${MISSING-d}").unwrap(), "d");
        assert_eq!(with(&vars, "${MISSING:-d}").unwrap(), "d");
        assert_eq!(with(&vars, "${EMPTY:+r}|${EMPTY+r}").unwrap(), "|r");
    }

    #[test]
    fn nested_defaults() {
        let vars = [("B", "bee")];
        assert_eq!(with(&vars, "${A:-${B}}").unwrap(), "bee");
        assert_eq!(with(&vars, "${A:-x${C:-${B}}y}").unwrap(), "xbeey");
    }

    #[test]
    fn nesting_is_bounded_not_a_stack_overflow() {
        let nested = |depth| format!("{}x{}", "${A:-".repeat(depth), "}".repeat(depth));
        assert_eq!(with(&[], &nested(MAX_NESTING)).unwrap(), "x");
        let hostile = nested(100_000);
        assert_eq!(with(&[], &hostile), Err(InterpolationError::TooDeep));
    }

    #[test]
    fn required_variables() {
        let vars = [("EMPTY", "")];
        assert_eq!(
            with(&vars, "${MISSING:?give a tag}").unwrap_err(),
            InterpolationError::Required {
                name: "MISSING".into(),
                message: "give a tag".into()
            }
        );
        assert!(with(&vars, "${EMPTY:?no}").is_err());
        assert_eq!(with(&vars, "${EMPTY?no}").unwrap(), "");
        assert_eq!(
            with(&vars, "${MISSING?}").unwrap_err().to_string(),
            "required variable MISSING is missing a value"
        );
    }

    #[test]
    fn dollars_escape_and_bad_forms_fail() {
        assert_eq!(with(&[], "cost: $$5 $${X}").unwrap(), "cost: $5 ${X}");
        for bad in ["echo $1", "${}", "${X", "a $", "${X:}", "${X!y}"] {
            assert!(
                matches!(with(&[], bad), Err(InterpolationError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn values_are_walked_and_unset_names_noted() {
        let lookup = |name: &str| (name == "P").then(|| "8080".to_owned());
        let mut interpolator = Interpolator::new(&lookup);
        let mut value: Value =
            serde_yaml::from_str("ports: ['${P}:80']\n$KEY: $NOPE\nn: 3\n").unwrap();
        interpolator.value(&mut value, &YamlPath::root()).unwrap();
        assert_eq!(value["ports"][0], Value::from("8080:80"));
        assert_eq!(value["$KEY"], Value::from(""));
        assert_eq!(interpolator.unset, ["NOPE"]);
        let mut bad: Value = serde_yaml::from_str("a: {b: ['x', '$1']}").unwrap();
        let (path, _) = interpolator.value(&mut bad, &YamlPath::root()).unwrap_err();
        assert_eq!(path.to_string(), "a.b[1]");
    }
}
