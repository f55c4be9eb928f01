//! `RUN` here-documents that the parser crate cannot read: one after the
//! command (`RUN python3 <<EOF`), or several (`RUN <<A cat && <<B cat`).
//! BuildKit hands such a `RUN` to the shell whole: its line, then each
//! document and its delimiter. This rewrites it, before the crate reads the
//! file, as that one script in a single here-document of its own (which the
//! crate reads, and which a `RUN` runs as its shell's script), and keeps the
//! line as written for display. The same walk over the logical lines reads
//! the JSON forms the crate reads otherwise than BuildKit
//! ([`crate::json_forms`]).

use anyhow::{bail, Result};

use crate::json_forms;
use crate::words::{after_flags, split_keyword};

/// The delimiter of the rewritten script.
const SCRIPT_DELIMITER: &str = "HULL_RUN_SCRIPT";

/// A Dockerfile's text with such `RUN`s rewritten.
pub struct Rewritten {
    pub text: String,
    /// Each rewritten instruction's line as written (continuations
    /// joined), by its first line in the rewritten text (0-based).
    pub displays: Vec<(usize, String)>,
    /// The lines (0-based, in the rewritten text) of the `ENTRYPOINT []`s,
    /// rewritten as `ENTRYPOINT [""]` for the crate, which refuses an empty
    /// array there while BuildKit takes it to reset the entrypoint.
    pub empty_entrypoints: Vec<usize>,
}

/// Rewrites the `RUN`s of `text` whose here-documents the crate cannot read
/// and its `ENTRYPOINT []`s; refuses a JSON array of other values than
/// strings, as BuildKit does.
pub fn rewrite(text: &str, escape: char) -> Result<Rewritten> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::with_capacity(text.len());
    let mut displays = Vec::new();
    let mut empty_entrypoints = Vec::new();
    // Lines of `out` up to `counted`, counted as it grows.
    let (mut out_lines, mut counted) = (0, 0);
    let mut index = 0;
    while index < lines.len() {
        let first = index;
        let trimmed = lines[index].trim_start();
        index += 1;
        if trimmed.trim_end().is_empty() || trimmed.starts_with('#') {
            out.push_str(lines[first]);
            continue;
        }
        let mut logical = String::new();
        let mut line = lines[first];
        loop {
            let body = line.trim_end_matches(['\n', '\r']);
            match body.trim_end().strip_suffix(escape) {
                Some(joined) if index < lines.len() => {
                    logical.push_str(joined);
                    // Comment and empty lines inside are dropped, as BuildKit drops them.
                    while index < lines.len() && is_skipped(lines[index]) {
                        index += 1;
                    }
                    if index == lines.len() {
                        break;
                    }
                    line = lines[index];
                    index += 1;
                }
                _ => {
                    logical.push_str(body);
                    break;
                }
            }
        }
        let (keyword, args) = split_keyword(&logical);
        if json_forms::has_non_strings(keyword, args) {
            bail!(
                "Dockerfile line {}: {}: {}",
                first + 1,
                logical.trim(),
                json_forms::NOT_STRINGS
            );
        }
        if json_forms::is_empty_entrypoint(keyword, args) {
            out_lines += out[counted..].matches('\n').count();
            counted = out.len();
            empty_entrypoints.push(out_lines);
            displays.push((out_lines, logical.trim().to_owned()));
            // As many lines as it took, so the lines after keep their numbers.
            let newlines = lines[first..index].concat().matches('\n').count();
            out.push_str(&format!("{keyword} [\"\"]{}", "\n".repeat(newlines)));
            continue;
        }
        let markers = match keyword.to_ascii_uppercase().as_str() {
            "RUN" | "COPY" | "ADD" => markers(args, escape),
            _ => Vec::new(),
        };
        let command_start = after_flags(args);
        let crate_reads = markers.is_empty()
            || (markers.len() == 1 && command_start.starts_with("<<"))
            || !keyword.eq_ignore_ascii_case("RUN");
        let mut documents = Vec::new();
        for marker in &markers {
            let start = index;
            while index < lines.len() && !marker.ends_at(lines[index]) {
                index += 1;
            }
            index = (index + 1).min(lines.len());
            documents.push((marker, lines[start..index].concat()));
        }
        if crate_reads {
            out.push_str(&lines[first..index].concat());
            continue;
        }
        let mut script = command_start.trim().to_owned();
        for (_, document) in &documents {
            script.push('\n');
            script.push_str(document.trim_end_matches(['\n', '\r']));
        }
        let flags = &args[..args.len() - command_start.len()];
        out_lines += out[counted..].matches('\n').count();
        counted = out.len();
        displays.push((out_lines, logical.trim().to_owned()));
        out.push_str(&format!(
            "{keyword} {}<<{SCRIPT_DELIMITER}\n{script}\n{SCRIPT_DELIMITER}\n",
            flags.trim_start()
        ));
    }
    Ok(Rewritten {
        text: out,
        displays,
        empty_entrypoints,
    })
}

/// The delimiters of the here-documents `line` names, in order.
pub fn delimiters(line: &str, escape: char) -> Vec<String> {
    markers(line, escape)
        .into_iter()
        .map(|marker| marker.name)
        .collect()
}

/// A line inside a continuation that BuildKit skips: empty, or a comment.
fn is_skipped(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// A here-document's delimiter as its `<<` names it.
struct Marker {
    name: String,
    /// `<<-`: leading tabs do not count before the delimiter.
    strip_tabs: bool,
}

impl Marker {
    fn ends_at(&self, line: &str) -> bool {
        let line = line.trim_end_matches(['\n', '\r']);
        let line = match self.strip_tabs {
            true => line.trim_start_matches('\t'),
            false => line,
        };
        line == self.name
    }
}

/// The here-documents `args` names: each unquoted word that starts with
/// `<<` (not `<<<`), as BuildKit finds them.
fn markers(args: &str, escape: char) -> Vec<Marker> {
    let mut found = Vec::new();
    let mut quote = None;
    let mut word_start = true;
    let mut chars = args.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c == escape && quote != Some('\'') {
            chars.next();
            word_start = false;
            continue;
        }
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(open), _) if open == c => quote = None,
            (None, c) if c.is_whitespace() => {
                word_start = true;
                continue;
            }
            (None, '<') if word_start => {
                if let Some(marker) = marker(&args[at..]) {
                    found.push(marker);
                }
            }
            _ => {}
        }
        word_start = false;
    }
    found
}

/// The marker a word starting at `<` is, if it is one.
fn marker(word: &str) -> Option<Marker> {
    let rest = word.strip_prefix("<<")?;
    if rest.starts_with('<') {
        return None;
    }
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let name: String = rest[..end]
        .chars()
        .filter(|c| !matches!(c, '"' | '\''))
        .collect();
    (!name.is_empty()).then_some(Marker { name, strip_tabs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_after_the_command_becomes_the_script_with_its_line() {
        let text = "FROM a\nRUN --network=none python3 <<EOF\nprint(1)\nEOF\nCMD x\n";
        let rewritten = rewrite(text, '\\').unwrap();
        assert_eq!(
            rewritten.text,
            "FROM a\nRUN --network=none <<HULL_RUN_SCRIPT\npython3 <<EOF\nprint(1)\nEOF\nHULL_RUN_SCRIPT\nCMD x\n"
        );
        assert_eq!(
            rewritten.displays,
            [(1, "RUN --network=none python3 <<EOF".to_owned())]
        );
    }

    #[test]
    fn several_documents_follow_in_order_and_what_the_crate_reads_is_kept() {
        let text = "RUN <<A cat > a && <<-'B' cat > b\n1\nA\n\t2\n\tB\nRUN <<EOF\nx\nEOF\nCOPY <<F /f\nRUN no\nF\n";
        let rewritten = rewrite(text, '\\').unwrap();
        assert_eq!(
            rewritten.text,
            "RUN <<HULL_RUN_SCRIPT\n<<A cat > a && <<-'B' cat > b\n1\nA\n\t2\n\tB\nHULL_RUN_SCRIPT\n\
             RUN <<EOF\nx\nEOF\nCOPY <<F /f\nRUN no\nF\n"
        );
    }

    #[test]
    fn quoted_and_here_string_words_are_no_documents() {
        assert!(markers("echo \"a <<b\" '<<c' <<<d x<<e", '\\').is_empty());
        let found = markers("cat <<-\"EOT\" | sh", '\\');
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].name.as_str(), found[0].strip_tabs), ("EOT", true));
    }
}
