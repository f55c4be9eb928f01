//! Path patterns as Docker matches them: Go's `filepath.Match` within one
//! path component (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes), and
//! `.dockerignore` patterns over whole paths, where `**` stands for any
//! number of components and a pattern that matches a directory matches
//! everything below it.

use anyhow::{bail, Result};

/// Whether `name`, one path component, matches `pattern` (Go's
/// `filepath.Match`: `*` and `?` never match `/`). A malformed pattern
/// (an unclosed `[`, a trailing `\`) is an error.
pub fn match_component(pattern: &str, name: &str) -> Result<bool> {
    let tokens = tokens(pattern)?;
    let name: Vec<char> = name.chars().collect();
    Ok(wildcard_match(
        &tokens,
        &name,
        Token::is_star,
        |&c| c != '/',
        |token, &c| token.matches(c),
    ))
}

/// One element of a component pattern.
#[derive(Debug, PartialEq)]
enum Token {
    /// `*`: any run of characters but `/`.
    Star,
    /// `?`: any one character but `/`.
    Any,
    /// `[...]`: one character but `/` in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// A character as written (or after a `\`).
    Literal(char),
}

impl Token {
    fn is_star(&self) -> bool {
        *self == Token::Star
    }

    /// Whether this token, not a star, matches the character `c`.
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Star => false,
            Token::Any => c != '/',
            Token::Class { negated, ranges } => {
                let inside = ranges.iter().any(|&(low, high)| low <= c && c <= high);
                inside != *negated && c != '/'
            }
            Token::Literal(literal) => *literal == c,
        }
    }
}

/// `pattern` as tokens, or why it is malformed.
fn tokens(pattern: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Token::Star,
            '?' => Token::Any,
            '[' => class(&mut chars)?,
            '\\' => Token::Literal(escaped(&mut chars)?),
            c => Token::Literal(c),
        });
    }
    Ok(tokens)
}

/// A character class after its `[`, up to and with its `]`.
fn class(chars: &mut std::str::Chars) -> Result<Token> {
    let negated = matches!(chars.clone().next(), Some('^' | '!'));
    if negated {
        chars.next();
    }
    let mut ranges = Vec::new();
    loop {
        let low = match chars.next() {
            None => bail!("syntax error in pattern: unclosed ["),
            Some(']') if !ranges.is_empty() => break,
            Some('\\') => escaped(chars)?,
            Some(c) => c,
        };
        let mut lookahead = chars.clone();
        let high = match (lookahead.next(), lookahead.next()) {
            (Some('-'), Some(high)) if high != ']' => {
                chars.next();
                chars.next();
                match high {
                    '\\' => escaped(chars)?,
                    high => high,
                }
            }
            _ => low,
        };
        ranges.push((low, high));
    }
    Ok(Token::Class { negated, ranges })
}

/// The character after a `\`.
fn escaped(chars: &mut std::str::Chars) -> Result<char> {
    chars
        .next()
        .ok_or_else(|| anyhow::anyhow!("syntax error in pattern: trailing \\"))
}

/// Whether `pattern` matches all of `subject`, as [`matching_prefixes`]
/// reads them.
fn wildcard_match<P, S>(
    pattern: &[P],
    subject: &[S],
    is_star: impl Fn(&P) -> bool,
    star_takes: impl Fn(&S) -> bool,
    matches: impl Fn(&P, &S) -> bool,
) -> bool {
    matching_prefixes(pattern, subject, is_star, star_takes, matches)[subject.len()]
}

/// For each length from 0 to `subject.len()`, whether `pattern` matches
/// that prefix of `subject`, where the elements for which `is_star` holds
/// match any run of elements that `star_takes`, and the others one element
/// each as `matches` says. One pass, the set of pattern elements matched so
/// far followed element by element: time bounded by the product of the
/// lengths, whatever a hostile pattern holds (trying every split at every
/// star is exponential).
pub(crate) fn matching_prefixes<P, S>(
    pattern: &[P],
    subject: &[S],
    is_star: impl Fn(&P) -> bool,
    star_takes: impl Fn(&S) -> bool,
    matches: impl Fn(&P, &S) -> bool,
) -> Vec<bool> {
    // A star matches nothing too: the elements after it are reached.
    let close = |states: &mut Vec<bool>| {
        for at in 0..pattern.len() {
            if states[at] && is_star(&pattern[at]) {
                states[at + 1] = true;
            }
        }
    };
    let mut states = vec![false; pattern.len() + 1];
    states[0] = true;
    close(&mut states);
    let mut matching = Vec::with_capacity(subject.len() + 1);
    matching.push(states[pattern.len()]);
    let mut next = vec![false; pattern.len() + 1];
    for element in subject {
        next.fill(false);
        for (at, token) in pattern.iter().enumerate() {
            if !states[at] {
                continue;
            }
            match is_star(token) {
                true if star_takes(element) => next[at] = true,
                true => {}
                false if matches(token, element) => next[at + 1] = true,
                false => {}
            }
        }
        close(&mut next);
        std::mem::swap(&mut states, &mut next);
        matching.push(states[pattern.len()]);
        if !states.contains(&true) {
            // Nothing longer can match.
            matching.resize(subject.len() + 1, false);
            break;
        }
    }
    matching
}

/// A `.dockerignore` file: patterns in order, the last one that matches a
/// path deciding (a `!` pattern lets it in again).
#[derive(Debug, Default, Clone)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    /// Components of the cleaned pattern.
    components: Vec<String>,
    /// A `!` pattern.
    exception: bool,
}

impl IgnoreRules {
    /// Reads a `.dockerignore` file's text.
    pub fn parse(text: &str) -> Result<IgnoreRules> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(pattern) => (true, pattern.trim()),
                None => (false, line),
            };
            let components = clean(pattern);
            if components.is_empty() {
                continue;
            }
            for component in &components {
                if component != "**" {
                    tokens(component)
                        .map_err(|err| anyhow::anyhow!(".dockerignore: {line}: {err}"))?;
                }
            }
            rules.push(Rule {
                components,
                exception,
            });
        }
        Ok(IgnoreRules { rules })
    }

    /// Whether there are no patterns: nothing is left out.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether the context path `path` (relative, `/`-separated) is left
    /// out.
    pub fn ignores(&self, path: &str) -> bool {
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let mut ignored = false;
        for rule in &self.rules {
            if rule.exception == ignored && rule.matches_or_parent(&components) {
                ignored = !rule.exception;
            }
        }
        ignored
    }

    /// Whether a `!` pattern might let in something below the ignored
    /// directory `dir`, which must then be walked all the same.
    pub fn may_let_in_below(&self, dir: &str) -> bool {
        let components: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
        self.rules
            .iter()
            .filter(|rule| rule.exception)
            .any(|rule| rule.may_match_below(&components))
    }
}

impl Rule {
    /// Whether the rule matches `path` or a directory above it: whether
    /// the rule followed by `**` matches it.
    fn matches_or_parent(&self, path: &[&str]) -> bool {
        let components: Vec<&str> = self.components.iter().map(String::as_str).collect();
        match_path(&[components.as_slice(), &["**"]].concat(), path)
    }

    /// Whether the rule could match a path below `dir`.
    fn may_match_below(&self, dir: &[&str]) -> bool {
        prefix_match(&self.components, dir)
    }
}

/// Whether the pattern components match the path components exactly,
/// `**` standing for any number of them.
fn match_path(pattern: &[&str], path: &[&str]) -> bool {
    wildcard_match(
        pattern,
        path,
        |component| *component == "**",
        |_| true,
        |component, name| match_component(component, name).unwrap_or(false),
    )
}

/// Whether some path below `dir` could match the pattern.
fn prefix_match(pattern: &[String], dir: &[&str]) -> bool {
    match (pattern.split_first(), dir.split_first()) {
        (_, None) => !pattern.is_empty(),
        (None, Some(_)) => false,
        (Some((first, _)), Some(_)) if first == "**" => true,
        (Some((first, rest)), Some((name, dir))) => {
            match_component(first, name).unwrap_or(false) && prefix_match(rest, dir)
        }
    }
}

/// A pattern's components as Go's `filepath.Clean` leaves them, relative
/// to the context root.
fn clean(pattern: &str) -> Vec<String> {
    let mut components: Vec<String> = Vec::new();
    for component in pattern.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                components.pop();
            }
            component => components.push(component.to_owned()),
        }
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_match_as_go_filepath_match() {
        let yes = [
            ("*.py", "app.py"),
            ("a?c", "abc"),
            ("[a-c]x", "bx"),
            ("[^a-c]x", "dx"),
            ("\\*", "*"),
            ("*", ""),
        ];
        for (pattern, name) in yes {
            assert!(match_component(pattern, name).unwrap(), "{pattern} {name}");
        }
        let no = [
            ("*.py", "app.pyc"),
            ("a?c", "ac"),
            ("[a-c]x", "dx"),
            ("[^a-c]x", "bx"),
        ];
        for (pattern, name) in no {
            assert!(!match_component(pattern, name).unwrap(), "{pattern} {name}");
        }
        assert!(match_component("[a", "b").is_err());
        assert!(match_component("a\\", "a").is_err());
        assert!(match_component("[\\]-\\^]", "^").unwrap());
    }

    #[test]
    fn hostile_patterns_match_in_polynomial_time() {
        // Each would take longer than the age of the universe trying every
        // split at every star.
        let name = "a".repeat(255);
        let stars = format!("{}b", "*a".repeat(40));
        assert!(!match_component(&stars, &name).unwrap());
        assert!(match_component(&"*a".repeat(40), &name).unwrap());
        let deep: Vec<&str> = std::iter::repeat_n("a", 2000).collect();
        let pattern: Vec<&str> = std::iter::repeat_n("**", 40).chain(["b"]).collect();
        assert!(!match_path(&pattern, &deep));
        let rules = IgnoreRules::parse(&format!("{}b\n", "**/a/".repeat(40))).unwrap();
        assert!(!rules.ignores(&deep.join("/")));
    }

    #[test]
    fn dockerignore_last_match_wins_with_double_star_and_parents() {
        let rules = IgnoreRules::parse(
            "# comment\n*.md\n!README.md\nbuild/\n**/*.pyc\n/secrets/../secret.txt\ndocs\n!docs/keep/**\n",
        )
        .unwrap();
        assert!(rules.ignores("CHANGES.md"));
        assert!(!rules.ignores("README.md"));
        assert!(rules.ignores("build/out/x.o"));
        assert!(rules.ignores("a/b/c.pyc"));
        assert!(rules.ignores("c.pyc"));
        assert!(rules.ignores("secret.txt"));
        assert!(!rules.ignores("src/app.py"));
        assert!(
            !rules.ignores("sub/CHANGES.md"),
            "*.md is anchored at the root"
        );
        assert!(rules.ignores("docs/index.html"));
        assert!(!rules.ignores("docs/keep/a.txt"));
        assert!(rules.may_let_in_below("docs"));
        assert!(!rules.may_let_in_below("build"));
    }
}
