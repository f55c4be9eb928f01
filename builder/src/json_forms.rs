//! Instructions' JSON forms as BuildKit reads them where the parser crate
//! reads them otherwise: a JSON array holding anything but strings is an
//! error (the crate takes it for a shell form), and `ENTRYPOINT []` resets
//! the entrypoint (the crate refuses an empty array there). Both are read
//! from each instruction's logical line before the crate reads the file.

use serde_json::Value;

use crate::words::{after_flags, split_keyword};

/// BuildKit's error for a JSON array holding anything but strings.
pub const NOT_STRINGS: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// Whether the arguments `args` of `keyword` are, where BuildKit reads a
/// JSON array, a JSON array holding anything but strings. Text that is no
/// JSON array at all is a shell form, as in BuildKit.
pub fn has_non_strings(keyword: &str, args: &str) -> bool {
    json_part(keyword, args)
        .and_then(|text| serde_json::from_str::<Vec<Value>>(text).ok())
        .is_some_and(|items| items.iter().any(|item| !item.is_string()))
}

/// Whether the instruction is `ENTRYPOINT []`.
pub fn is_empty_entrypoint(keyword: &str, args: &str) -> bool {
    keyword.eq_ignore_ascii_case("ENTRYPOINT")
        && serde_json::from_str::<Vec<Value>>(args).is_ok_and(|items| items.is_empty())
}

/// The part of an instruction's arguments that BuildKit may read as a JSON
/// array: past the flags, and past `CMD` for `HEALTHCHECK`.
fn json_part<'a>(keyword: &str, args: &'a str) -> Option<&'a str> {
    match keyword.to_ascii_uppercase().as_str() {
        "CMD" | "ENTRYPOINT" | "SHELL" | "VOLUME" => Some(args),
        "RUN" | "COPY" | "ADD" => Some(after_flags(args)),
        "HEALTHCHECK" => {
            let (word, rest) = split_keyword(after_flags(args));
            word.eq_ignore_ascii_case("CMD").then_some(rest)
        }
        "ONBUILD" => {
            let (keyword, rest) = split_keyword(args);
            json_part(keyword, rest)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_arrays_with_other_values_than_strings_are_caught() {
        for (keyword, args) in [
            ("CMD", r#" ["a", 1]"#),
            ("entrypoint", r#"[true]"#),
            ("RUN", r#"--network=none ["sh", null]"#),
            ("COPY", r#"--chown=1 ["a", ["b"]]"#),
            ("ADD", r#"[1, "/"]"#),
            ("SHELL", r#"["sh", {}]"#),
            ("VOLUME", r#"[1]"#),
            ("HEALTHCHECK", r#"--interval=5s CMD ["x", 2]"#),
            ("ONBUILD", r#"CMD [1]"#),
            // JSON, as BuildKit reads it; `[[ -e x ]]` is not.
            ("RUN", "[[ 1 ]]"),
        ] {
            assert!(has_non_strings(keyword, args), "{keyword} {args}");
        }
        for (keyword, args) in [
            ("CMD", r#"["a", "b"]"#),
            ("CMD", r#"["a", 1"#),
            ("RUN", "[ -e x ] && echo 1"),
            ("RUN", "[[ -e x ]]"),
            ("CMD", "[]"),
            ("LABEL", "[1]"),
            ("HEALTHCHECK", "NONE"),
        ] {
            assert!(!has_non_strings(keyword, args), "{keyword} {args}");
        }
    }

    #[test]
    fn only_an_empty_array_is_an_empty_entrypoint() {
        assert!(is_empty_entrypoint("ENTRYPOINT", " [ ] "));
        assert!(is_empty_entrypoint("entrypoint", "[]"));
        assert!(!is_empty_entrypoint("ENTRYPOINT", r#"[""]"#));
        assert!(!is_empty_entrypoint("CMD", "[]"));
        assert!(!is_empty_entrypoint("ENTRYPOINT", "[] x"));
    }
}
