//! Dockerfile words as BuildKit's shell lexer reads them: quotes removed,
//! `$VAR` and `${VAR}` expanded with the `:-`, `-`, `:+`, `+`, `:?` and `?`
//! forms and the patterns of `#`, `##`, `%`, `%%`, `/` and `//`, the escape character (`\`, or `` ` `` with `# escape=`) taking
//! the next character literally; and the `KEY=VALUE` lists of `ENV`,
//! `LABEL` and `ARG`.
//!
//! Hand-written: the Dockerfile parser crate leaves these to its caller,
//! and no crate has Docker's rules (a POSIX shell's differ: no field
//! splitting, no command substitution, `\` kept in double quotes).

use anyhow::{bail, Result};

use crate::pattern::matching_prefixes;

/// How deep `${...}` may nest in a modifier's word: deeper than anyone
/// writes, and shallow enough that a hostile Dockerfile cannot run the
/// lexer out of stack.
const MAX_NESTING: usize = 32;

/// The longest a word may grow as variables expand: past what any real
/// value needs (an environment string reaches a program only up to
/// 128 KiB), short of what `ENV A=$A$A`, repeated, would make of memory.
const MAX_EXPANDED_LEN: usize = 1 << 20;

/// The most steps (characters of the value times tokens of the pattern,
/// for each place a match is tried) one `${VAR#pattern}`, `%` or `/` may
/// take: a second or so, far past what a real substitution needs.
const MAX_PATTERN_STEPS: usize = 1 << 30;

/// Looks a variable up: `None` for one that is not set.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// `word` with its quotes removed and variables expanded.
pub fn expand(word: &str, escape: char, lookup: Lookup) -> Result<String> {
    let mut words = Lexer::new(word, escape, lookup, false).run()?;
    Ok(words.pop().unwrap_or_default())
}

/// A `COPY` here-document's text with its variables expanded as BuildKit
/// expands them: quotes are the text's own, `\\` (whatever the escape
/// directive) still takes the next character literally.
pub fn expand_heredoc(text: &str, lookup: Lookup) -> Result<String> {
    let mut lexer = Lexer::new(text, '\\', lookup, false);
    lexer.quotes = false;
    let mut words = lexer.run()?;
    Ok(words.pop().unwrap_or_default())
}

/// `text` split into words at unquoted white space, each expanded (for
/// `EXPOSE`, `VOLUME`'s string form, `COPY`'s sources).
pub fn expand_words(text: &str, escape: char, lookup: Lookup) -> Result<Vec<String>> {
    Lexer::new(text, escape, lookup, true).run()
}

/// The `KEY=VALUE ...` pairs of `ENV`, `LABEL` and `ARG`, unexpanded
/// (quotes kept, for [`expand`]); the old `KEY VALUE` form of `ENV`
/// (one pair, the value the rest of the line) when `legacy` allows it.
/// `ARG NAME` without a value gives `(NAME, None)`.
pub fn assignments(
    text: &str,
    escape: char,
    legacy: bool,
) -> Result<Vec<(String, Option<String>)>> {
    let words = raw_words(text, escape);
    let Some(first) = words.first() else {
        bail!("missing KEY=VALUE");
    };
    if legacy && !first.contains('=') && words.len() > 1 {
        let rest = text.trim_start()[first.len()..].trim().to_owned();
        return Ok(vec![(first.clone(), Some(rest))]);
    }
    Ok(words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) => (key.to_owned(), Some(value.to_owned())),
            None => (word, None),
        })
        .collect())
}

/// Splits at white space outside quotes, keeping quotes and escapes.
fn raw_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == escape && quote != Some('\'') {
            word.push(c);
            if let Some(next) = chars.next() {
                word.push(next);
            }
            continue;
        }
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(open), _) if open == c => quote = None,
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    escape: char,
    lookup: Lookup<'a>,
    split: bool,
    /// Whether quotes are the lexer's to remove (not for here-documents).
    quotes: bool,
    /// How many `${...}` the lexer is in.
    nesting: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str, escape: char, lookup: Lookup<'a>, split: bool) -> Lexer<'a> {
        Lexer {
            chars: text.chars().peekable(),
            escape,
            lookup,
            split,
            quotes: true,
            nesting: 0,
        }
    }

    fn run(mut self) -> Result<Vec<String>> {
        let mut words = Vec::new();
        let mut word = String::new();
        // A word of empty quotes is still a word.
        let mut started = false;
        while let Some(c) = self.chars.next() {
            match c {
                c if self.split && c.is_whitespace() => {
                    if started {
                        words.push(std::mem::take(&mut word));
                        started = false;
                    }
                    continue;
                }
                '\'' if self.quotes => {
                    for c in self.chars.by_ref() {
                        if c == '\'' {
                            break;
                        }
                        word.push(c);
                    }
                }
                '"' if self.quotes => self.double_quoted(&mut word)?,
                '$' => append(&mut word, &self.dollar()?)?,
                c if c == self.escape => match self.chars.next() {
                    Some(next) => word.push(next),
                    None => word.push(c),
                },
                c => word.push(c),
            }
            started = true;
        }
        if started || !self.split {
            words.push(word);
        }
        Ok(words)
    }

    fn double_quoted(&mut self, word: &mut String) -> Result<()> {
        while let Some(c) = self.chars.next() {
            match c {
                '"' => return Ok(()),
                '$' => append(word, &self.dollar()?)?,
                c if c == self.escape => match self.chars.peek() {
                    Some(&next) if next == '"' || next == '$' || next == self.escape => {
                        word.push(next);
                        self.chars.next();
                    }
                    _ => word.push(c),
                },
                c => word.push(c),
            }
        }
        bail!("unexpected end of statement while looking for matching double-quote")
    }

    /// After a `$`: the variable's value, or the `$` itself.
    fn dollar(&mut self) -> Result<String> {
        match self.chars.peek() {
            Some('{') => {
                self.chars.next();
                if self.nesting == MAX_NESTING {
                    bail!("bad substitution: variables nested more than {MAX_NESTING} levels deep");
                }
                self.nesting += 1;
                let value = self.braced();
                self.nesting -= 1;
                value
            }
            Some(&c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok((self.lookup)(&name).unwrap_or_default())
            }
            _ => Ok("$".to_owned()),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(&c) = self.chars.peek() {
            if !(c.is_ascii_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.chars.next();
        }
        name
    }

    /// After `${`: the name, an optional modifier and its word, the `}`.
    fn braced(&mut self) -> Result<String> {
        let name = self.name();
        if name.is_empty() {
            bail!("bad substitution: a variable name must follow ${{");
        }
        let value = (self.lookup)(&name);
        let colon = self.chars.peek() == Some(&':');
        if colon {
            self.chars.next();
        }
        let modifier = match self.chars.next() {
            Some('}') if !colon => return Ok(value.unwrap_or_default()),
            Some(modifier @ ('-' | '+' | '?')) => modifier,
            Some(modifier @ ('#' | '%')) if !colon => {
                let word = self.until('}', true)?;
                let (greedy, word) = match word.strip_prefix(modifier) {
                    Some(rest) => (true, rest.to_owned()),
                    None => (false, word),
                };
                let pattern = Pattern::parse(&word)?;
                let value = value.unwrap_or_default();
                pattern.check_cost(&name, &value, false)?;
                return Ok(match modifier {
                    '#' => pattern.trim_prefix(&value, greedy),
                    _ => pattern.trim_suffix(&value, greedy),
                });
            }
            Some('/') if !colon => {
                let all = self.chars.peek() == Some(&'/');
                if all {
                    self.chars.next();
                }
                let pattern = Pattern::parse(&self.until('/', true)?)?;
                let replacement = self.until('}', true)?;
                let value = value.unwrap_or_default();
                pattern.check_cost(&name, &value, true)?;
                return pattern.replace(&value, &replacement, all);
            }
            _ => bail!("bad substitution in ${{{name}...}}: use ${{{name}}}, ${{{name}:-word}}, ${{{name}:+word}}, ${{{name}#pattern}}, ${{{name}%pattern}} or ${{{name}/pattern/word}}"),
        };
        let word = self.until('}', false)?;
        // With the colon, an empty value counts as unset.
        let set = value.as_deref().is_some_and(|v| !colon || !v.is_empty());
        Ok(match modifier {
            '-' if set => value.unwrap_or_default(),
            '-' => word,
            '+' if set => word,
            '+' => String::new(),
            _ if set => value.unwrap_or_default(),
            _ => match word.is_empty() {
                true => bail!("{name}: is not allowed to be unset"),
                false => bail!("{name}: {word}"),
            },
        })
    }

    /// The word of a modifier, expanded, up to `stop` (taken). `raw` keeps
    /// each escape as `\` before the character it escapes, for a pattern.
    fn until(&mut self, stop: char, raw: bool) -> Result<String> {
        let mut word = String::new();
        while let Some(c) = self.chars.next() {
            match c {
                c if c == stop => return Ok(word),
                '$' => append(&mut word, &self.dollar()?)?,
                '\'' if self.quotes => {
                    for c in self.chars.by_ref() {
                        if c == '\'' {
                            break;
                        }
                        word.push(c);
                    }
                }
                '"' if self.quotes => self.double_quoted(&mut word)?,
                c if c == self.escape => {
                    if let Some(next) = self.chars.next() {
                        if raw {
                            word.push('\\');
                        }
                        word.push(next);
                    }
                }
                c => word.push(c),
            }
        }
        bail!("bad substitution: missing {stop}")
    }
}

/// Of the lengths `matching` marks, the longest (`greedy`) or shortest.
fn chosen_length(matching: &[bool], greedy: bool) -> Option<usize> {
    match greedy {
        true => matching.iter().rposition(|m| *m),
        false => matching.iter().position(|m| *m),
    }
}

/// Appends a variable's `value` to `word`, up to [`MAX_EXPANDED_LEN`].
fn append(word: &mut String, value: &str) -> Result<()> {
    if word.len() + value.len() > MAX_EXPANDED_LEN {
        bail!(
            "variables expand past {} MiB in one word",
            MAX_EXPANDED_LEN >> 20
        );
    }
    word.push_str(value);
    Ok(())
}

/// A pattern of `${VAR#pattern}`, `%` and `/`, as BuildKit reads one: `*`
/// any characters, `?` one, `\` the next literally.
struct Pattern(Vec<Token>);

#[derive(Clone, Copy, PartialEq)]
enum Token {
    Star,
    Any,
    Char(char),
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern> {
        let mut tokens = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::Star,
                '?' => Token::Any,
                '\\' => match chars.next() {
                    Some(next @ ('*' | '?' | '\\' | '}' | '/')) => Token::Char(next),
                    Some(next) => {
                        bail!("invalid pattern ({text}) in substitution: invalid escape '\\{next}'")
                    }
                    None => Token::Char('\\'),
                },
                c => Token::Char(c),
            });
        }
        // `**` is `*`, and costs one token.
        tokens.dedup_by(|next, previous| *next == Token::Star && *previous == Token::Star);
        Ok(Pattern(tokens))
    }

    /// Refuses a substitution of this pattern in `value` that would take
    /// more than [`MAX_PATTERN_STEPS`]: a pass over the value for a prefix
    /// or suffix; for a replacement, one from each character, as long as
    /// the value with a star, as long as the pattern without one.
    fn check_cost(&self, name: &str, value: &str, replacing: bool) -> Result<()> {
        let chars = value.chars().count() + 1;
        let tokens = self.0.len() + 1;
        let pass = match self.0.contains(&Token::Star) {
            true => chars,
            false => tokens,
        };
        let steps = match replacing {
            true => chars.saturating_mul(pass).saturating_mul(tokens),
            false => chars.saturating_mul(tokens),
        };
        if steps > MAX_PATTERN_STEPS {
            bail!("${{{name}...}}: the pattern is too costly to match in a value of {chars} characters");
        }
        Ok(())
    }

    /// For each length from 0 to `text.len()`, whether the pattern
    /// matches that prefix of `text`.
    fn prefixes_matched(tokens: &[Token], text: &[char]) -> Vec<bool> {
        matching_prefixes(
            tokens,
            text,
            |token| *token == Token::Star,
            |_| true,
            |token, c| match token {
                Token::Any => true,
                Token::Char(literal) => literal == c,
                Token::Star => false,
            },
        )
    }

    /// `value` less its shortest (or, `greedy`, longest) matching prefix.
    fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let matching = Self::prefixes_matched(&self.0, &chars);
        match chosen_length(&matching, greedy) {
            Some(len) => chars[len..].iter().collect(),
            None => value.to_owned(),
        }
    }

    /// `value` less its shortest (or, `greedy`, longest) matching suffix:
    /// the reversed pattern's prefix of the reversed value.
    fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let reversed_tokens: Vec<Token> = self.0.iter().rev().copied().collect();
        let reversed: Vec<char> = chars.iter().rev().copied().collect();
        let matching = Self::prefixes_matched(&reversed_tokens, &reversed);
        match chosen_length(&matching, greedy) {
            Some(len) => chars[..chars.len() - len].iter().collect(),
            None => value.to_owned(),
        }
    }

    /// The longest match starting at the beginning of `text`, if any.
    fn longest_match(&self, text: &[char]) -> Option<usize> {
        chosen_length(&Self::prefixes_matched(&self.0, text), true)
    }

    /// `value` with the first (or `all`) longest matches, leftmost first,
    /// replaced by `replacement`.
    /// An empty match where the previous one ended is none, as Go's
    /// `ReplaceAllString` has it (`${V//*/x}` of `abc` is `x`).
    fn replace(&self, value: &str, replacement: &str, all: bool) -> Result<String> {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut at = 0;
        let mut replaced = false;
        let mut last_end = None;
        while at <= chars.len() {
            let found = (!replaced || all)
                .then(|| self.longest_match(&chars[at..]).map(|len| at + len))
                .flatten()
                .filter(|end| !(*end == at && last_end == Some(at)));
            match found {
                Some(end) => {
                    append(&mut out, replacement)?;
                    replaced = true;
                    last_end = Some(end);
                    if end == at {
                        if let Some(c) = chars.get(at) {
                            out.push(*c);
                        }
                        at += 1;
                    } else {
                        at = end;
                    }
                }
                None => {
                    if let Some(c) = chars.get(at) {
                        out.push(*c);
                    }
                    at += 1;
                }
            }
        }
        Ok(out)
    }
}

/// The instruction's keyword and the rest.
pub(crate) fn split_keyword(logical: &str) -> (&str, &str) {
    let logical = logical.trim_start();
    match logical.find(char::is_whitespace) {
        Some(end) => (&logical[..end], &logical[end..]),
        None => (logical, ""),
    }
}

/// `args` from its command on, past the leading `--flag[=value]`s.
pub(crate) fn after_flags(args: &str) -> &str {
    let mut rest = args.trim_start();
    while rest.starts_with("--") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "NAME" => Some("app".into()),
            "EMPTY" => Some(String::new()),
            "SPACED" => Some("a b".into()),
            _ => None,
        }
    }

    fn ex(word: &str) -> String {
        expand(word, '\\', &vars).unwrap()
    }

    #[test]
    fn variables_expand_with_dockers_modifiers() {
        assert_eq!(ex("$NAME/${NAME}x"), "app/appx");
        assert_eq!(
            ex("${MISSING:-dflt} ${EMPTY:-dflt} ${EMPTY-dflt}"),
            "dflt dflt "
        );
        assert_eq!(
            ex("${NAME:+set} ${EMPTY:+set} ${EMPTY+set} ${MISSING+set}"),
            "set  set "
        );
        assert_eq!(ex("${MISSING:-${NAME}}"), "app");
        assert_eq!(ex("cost $ 5 $"), "cost $ 5 $");
        assert!(expand("${MISSING:?need it}", '\\', &vars)
            .unwrap_err()
            .to_string()
            .contains("need it"));
        assert!(expand("${NAME", '\\', &vars).is_err());
        assert!(expand("${NAME:#x}", '\\', &vars).is_err());
    }

    #[test]
    fn patterns_trim_and_replace_as_buildkit_does() {
        let version = |word: &str| {
            let lookup = |name: &str| match name {
                "V" => Some("v1.2.3-rc.1".to_owned()),
                "P" => Some("/usr/local/bin/app".to_owned()),
                _ => None,
            };
            expand(word, '\\', &lookup).unwrap()
        };
        assert_eq!(version("${V#v}"), "1.2.3-rc.1");
        assert_eq!(version("${V#*.}"), "2.3-rc.1");
        assert_eq!(version("${V##*.}"), "1");
        assert_eq!(version("${V%.*}"), "v1.2.3-rc");
        assert_eq!(version("${V%%.*}"), "v1");
        assert_eq!(version("${V%%-*}"), "v1.2.3");
        assert_eq!(version("${P##*/}"), "app");
        assert_eq!(version("${P%/*}"), "/usr/local/bin");
        assert_eq!(version("${V/./_}"), "v1_2.3-rc.1");
        assert_eq!(version("${V//./_}"), "v1_2_3-rc_1");
        assert_eq!(version("${V/rc*/final}"), "v1.2.3-final");
        assert_eq!(version("${V//*/x}"), "x");
        assert_eq!(version("${V//**/x}"), "x");
        assert_eq!(version("${V#\\*}"), "v1.2.3-rc.1");
        assert_eq!(version("${MISSING#v}"), "");
        assert!(expand("${V/x}", '\\', &|_| None).is_err());
        assert!(expand("${V#\\a}", '\\', &|_| Some("a".into())).is_err());
    }

    #[test]
    fn hostile_patterns_and_values_are_bounded() {
        let long = |name: &str| (name == "A").then(|| "a".repeat(10_000));
        let stars = format!("${{A#{}b}}", "*a".repeat(40));
        assert_eq!(expand(&stars, '\\', &long).unwrap(), "a".repeat(10_000));
        let greedy = format!("${{A%%{}}}", "*a".repeat(40));
        assert_eq!(expand(&greedy, '\\', &long).unwrap(), "");
        // Tried from every character: quadratic, hence the cap below.
        let short = |name: &str| (name == "A").then(|| "a".repeat(2_000));
        let replaced = expand("${A//*b/x}", '\\', &short).unwrap();
        assert_eq!(replaced, "a".repeat(2_000));
        let costly = format!("${{A//{}b/x}}", "*a".repeat(300));
        let err = expand(&costly, '\\', &long).unwrap_err().to_string();
        assert!(err.contains("too costly"), "{err}");
        // Each of 16K characters replaced by 512 KiB: refused before 8 GiB.
        let wide = |name: &str| match name {
            "A" => Some("a".repeat(16_384)),
            "B" => Some("b".repeat(512 << 10)),
            _ => None,
        };
        let err = expand("${A//?/$B}", '\\', &wide).unwrap_err().to_string();
        assert!(err.contains("expand past 1 MiB"), "{err}");
        // Nesting through every form, and doubling, stop with an error.
        let nested = format!("{}x{}", "${A#${A%".repeat(20_000), "}}".repeat(20_000));
        let err = expand(&nested, '\\', &vars).unwrap_err().to_string();
        assert!(err.contains("nested more than 32 levels"), "{err}");
        let big = |name: &str| (name == "A").then(|| "a".repeat(MAX_EXPANDED_LEN / 2 + 1));
        let err = expand("$A$A", '\\', &big).unwrap_err().to_string();
        assert!(err.contains("expand past 1 MiB"), "{err}");
    }

    #[test]
    fn nesting_is_bounded_not_a_stack_overflow() {
        let nested = |depth| format!("{}x{}", "${A:-".repeat(depth), "}".repeat(depth));
        assert_eq!(ex(&nested(MAX_NESTING)), "x");
        let hostile = nested(100_000);
        let err = expand(&hostile, '\\', &vars).unwrap_err().to_string();
        assert!(err.contains("nested more than 32 levels"), "{err}");
    }

    #[test]
    fn quotes_and_escapes_are_removed_as_docker_removes_them() {
        assert_eq!(ex("'$NAME' \"$NAME\""), "$NAME app");
        assert_eq!(ex(r#""a\"b\$c\d""#), r#"a"b$c\d"#);
        assert_eq!(ex(r"\$NAME a\ b"), "$NAME a b");
        assert_eq!(expand("`$NAME", '`', &vars).unwrap(), "$NAME");
        assert!(expand("\"open", '\\', &vars).is_err());
    }

    #[test]
    fn a_heredoc_keeps_its_quotes_and_expands_its_variables_as_buildkit_does() {
        let text = "server_name \"$NAME\";\necho 'it''s ${EMPTY:-\"x\"}' \\$HOME\n";
        assert_eq!(
            expand_heredoc(text, &vars).unwrap(),
            "server_name \"app\";\necho 'it''s \"x\"' $HOME\n"
        );
    }

    #[test]
    fn words_split_outside_quotes_only_and_values_do_not_split() {
        assert_eq!(
            expand_words("80/tcp  \"a b\" $SPACED ''", '\\', &vars).unwrap(),
            ["80/tcp", "a b", "a b", ""]
        );
    }

    #[test]
    fn assignments_keep_quotes_for_expansion_and_know_the_legacy_form() {
        assert_eq!(
            assignments(r#"A=1 B="x y" C=a\ b D"#, '\\', false).unwrap(),
            [
                ("A".into(), Some("1".into())),
                ("B".into(), Some("\"x y\"".into())),
                ("C".into(), Some(r"a\ b".into())),
                ("D".into(), None),
            ]
        );
        assert_eq!(
            assignments("PATH /usr/bin:/bin  more", '\\', true).unwrap(),
            [("PATH".into(), Some("/usr/bin:/bin  more".into()))]
        );
    }
}
