//! `.env` and `env_file` files as Compose reads them: `KEY=VALUE` lines
//! (`export ` before the key allowed), `#` comments, values unquoted
//! (trimmed, a ` #` ends them), in single quotes (literal) or in double
//! quotes (escapes, several lines); unquoted and double-quoted values are
//! interpolated from the entries above them, then from `lookup`. A `KEY`
//! alone names a variable to take from `lookup`.

use std::path::Path;

use crate::interpolate::Interpolator;

/// One entry: a key and its value, or none for a bare `KEY`.
pub type Entry = (String, Option<String>);

/// Reads the env file `path`; the error names the file and line.
pub fn read(path: &Path, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Entry>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("{}: cannot read it: {err}", path.display()))?;
    parse(&text, lookup).map_err(|(line, reason)| format!("{}:{line}: {reason}", path.display()))
}

/// Parses env file text; the error gives the line number and reason.
pub fn parse(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Entry>, (usize, String)> {
    let mut entries: Vec<Entry> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut number = 0;
    while number < lines.len() {
        let first = number;
        let line = lines[number].trim();
        number += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let (key, raw) = match line.split_once('=') {
            Some((key, raw)) => (key.trim_end(), Some(raw.trim_start())),
            None => (line, None),
        };
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err((first + 1, format!("{key:?} is not a variable name")));
        }
        let Some(raw) = raw else {
            entries.push((key.to_owned(), None));
            continue;
        };
        let known = |name: &str| {
            entries
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.clone())
                .or_else(|| lookup(name))
        };
        let value = match raw.chars().next() {
            Some(quote @ ('\'' | '"')) => {
                // A quoted value may go on over the following lines.
                let mut body = raw[1..].to_owned();
                let end = loop {
                    if let Some(end) = closing_quote(&body, quote) {
                        break end;
                    }
                    let Some(next) = lines.get(number) else {
                        return Err((first + 1, format!("{quote} is never closed")));
                    };
                    body.push('\n');
                    body.push_str(next);
                    number += 1;
                };
                let rest = body[end + 1..].trim();
                if !rest.is_empty() && !rest.starts_with('#') {
                    return Err((
                        first + 1,
                        format!("unexpected {rest:?} after the quoted value"),
                    ));
                }
                let body = &body[..end];
                match quote {
                    '\'' => body.to_owned(),
                    _ => Interpolator::new(&known)
                        .text(&unescape(body))
                        .map_err(|err| (first + 1, err.to_string()))?,
                }
            }
            _ => {
                let value = match raw.find(" #") {
                    Some(at) => raw[..at].trim_end(),
                    None => raw.trim_end(),
                };
                Interpolator::new(&known)
                    .text(value)
                    .map_err(|err| (first + 1, err.to_string()))?
            }
        };
        entries.push((key.to_owned(), Some(value)));
    }
    Ok(entries)
}

/// Where the unescaped `quote` closing a value is in `body`.
fn closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (at, c) in body.char_indices() {
        match c {
            '\\' if quote == '"' && !escaped => escaped = true,
            c if c == quote && !escaped => return Some(at),
            _ => escaped = false,
        }
    }
    None
}

/// A double-quoted value's escapes resolved.
fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other @ ('"' | '\\')) => out.push(other),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<Entry> {
        let lookup = |name: &str| (name == "HOME").then(|| "/home/u".to_owned());
        parse(text, &lookup).unwrap()
    }

    fn entry(key: &str, value: &str) -> Entry {
        (key.to_owned(), Some(value.to_owned()))
    }

    #[test]
    fn lines_comments_and_export() {
        let text = "# a comment\n\nA=1\nexport B = two words \nC=x #comment\nD=x#not\nE=\nBARE\n";
        assert_eq!(
            parsed(text),
            [
                entry("A", "1"),
                entry("B", "two words"),
                entry("C", "x"),
                entry("D", "x#not"),
                entry("E", ""),
                ("BARE".to_owned(), None)
            ]
        );
    }

    #[test]
    fn quotes_and_interpolation() {
        let text = "A=a\nB=\"$A-${HOME}\\n\"\nC='$A ${HOME}'\nD=${A}x\nE=\"line1\nline2\" # c\n";
        assert_eq!(
            parsed(text),
            [
                entry("A", "a"),
                entry("B", "a-/home/u\n"),
                entry("C", "$A ${HOME}"),
                entry("D", "ax"),
                entry("E", "line1\nline2"),
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let lookup = |_: &str| None;
        assert_eq!(parse("A=1\nB C=2\n", &lookup).unwrap_err().0, 2);
        assert_eq!(parse("A=\"open\n", &lookup).unwrap_err().0, 1);
        assert_eq!(parse("A=$1\n", &lookup).unwrap_err().0, 1);
    }
}
