//! Errors as hull shows them: `hull: ` and one bounded line, whatever the
//! error holds (a name from an archive, a server's answer, a 100 KB
//! argument), so every place that reports an error goes through here.

/// Prints `err` with its context chain on one line on stderr.
pub fn print(err: &anyhow::Error) {
    eprintln!("hull: {}", one_line(&format!("{err:#}")));
}

/// The most characters of an error the line shows.
const ERROR_LINE_CHARS: usize = 1000;

/// Of a longer error, the characters shown from its end (where the reason
/// is) after those from its start.
const ERROR_TAIL_CHARS: usize = 300;

/// `message` as one line: control characters (a name in an archive, a
/// server's answer may hold any) escaped, and past [`ERROR_LINE_CHARS`],
/// its middle left out.
pub fn one_line(message: &str) -> String {
    if message.chars().count() <= ERROR_LINE_CHARS {
        return escape_controls(message.chars());
    }
    let head = escape_controls(message.chars().take(ERROR_LINE_CHARS - ERROR_TAIL_CHARS));
    let mut tail: Vec<char> = message.chars().rev().take(ERROR_TAIL_CHARS).collect();
    tail.reverse();
    format!("{head}…{}", escape_controls(tail.into_iter()))
}

/// `text` with control characters escaped, for a line that shows what
/// a file or an image chose (a Dockerfile's instruction).
pub fn escaped(text: &str) -> String {
    escape_controls(text.chars())
}

/// `chars` with control characters escaped.
fn escape_controls(chars: impl Iterator<Item = char>) -> String {
    let mut text = String::new();
    for c in chars {
        match c.is_control() {
            true => text.extend(c.escape_debug()),
            false => text.push(c),
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_shown_on_one_bounded_line() {
        assert_eq!(
            one_line("cannot import x: bad name a\nb\r\u{1b}[2J"),
            "cannot import x: bad name a\\nb\\r\\u{1b}[2J"
        );
        let long = format!("invalid value '{}': too long", "é".repeat(5000));
        let shown = one_line(&long);
        assert_eq!(shown.chars().count(), ERROR_LINE_CHARS + 1);
        assert!(shown.starts_with("invalid value 'éé"), "{shown}");
        assert!(shown.contains("é…é"), "{shown}");
        assert!(shown.ends_with("é': too long"), "{shown}");
    }
}
