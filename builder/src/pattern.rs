//! Path patterns as Docker matches them: Go's `filepath.Match` within one
//! path component (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes), and
//! `.dockerignore` patterns over whole paths, where `**` stands for any
//! number of components and a pattern that matches a directory matches
//! everything below it.

use anyhow::{bail, Result};

/// Whether `name`, one path component, matches `pattern` (Go's
/// `filepath.Match`: `*` and `?` never match `/`). A malformed pattern
/// (an unclosed `[`) is an error.
pub fn match_component(pattern: &str, name: &str) -> Result<bool> {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    matches(&pattern, &name)
}

fn matches(pattern: &[char], name: &[char]) -> Result<bool> {
    let Some((&first, rest)) = pattern.split_first() else {
        return Ok(name.is_empty());
    };
    match first {
        '*' => {
            for skip in 0..=name.len() {
                if name[..skip].contains(&'/') {
                    break;
                }
                if matches(rest, &name[skip..])? {
                    return Ok(true);
                }
            }
            // A malformed rest is an error even when nothing matched.
            check(rest)?;
            Ok(false)
        }
        '?' => match name.split_first() {
            Some((&c, name)) if c != '/' => matches(rest, name),
            _ => Ok(false),
        },
        '[' => {
            let (matched, rest) = class(rest, name.first().copied())?;
            match matched {
                true => matches(rest, &name[1..]),
                false => {
                    check(rest)?;
                    Ok(false)
                }
            }
        }
        '\\' => match (rest.split_first(), name.split_first()) {
            (Some((&p, rest)), Some((&c, name))) if p == c => matches(rest, name),
            (None, _) => bail!("syntax error in pattern: trailing \\"),
            _ => Ok(false),
        },
        p => match name.split_first() {
            Some((&c, name)) if c == p => matches(rest, name),
            _ => Ok(false),
        },
    }
}

/// Checks that `pattern` is well formed.
fn check(pattern: &[char]) -> Result<()> {
    let mut rest = pattern;
    while let Some((&c, tail)) = rest.split_first() {
        rest = match c {
            '[' => class(tail, None)?.1,
            '\\' if tail.is_empty() => bail!("syntax error in pattern: trailing \\"),
            '\\' => &tail[1..],
            _ => tail,
        };
    }
    Ok(())
}

/// A character class after its `[`: whether `c` is in it, and the pattern
/// after its `]`.
fn class(pattern: &[char], c: Option<char>) -> Result<(bool, &[char])> {
    let (negated, mut rest) = match pattern.split_first() {
        Some(('^' | '!', rest)) => (true, rest),
        _ => (false, pattern),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let Some((&low, tail)) = rest.split_first() else {
            bail!("syntax error in pattern: unclosed [");
        };
        if low == ']' && !first {
            rest = tail;
            break;
        }
        first = false;
        let (low, tail) = unescape(low, tail)?;
        let (high, tail) = match tail {
            ['-', high, tail @ ..] if *high != ']' => unescape(*high, tail)?,
            _ => (low, tail),
        };
        if c.is_some_and(|c| low <= c && c <= high) {
            matched = true;
        }
        rest = tail;
    }
    Ok((c.is_some() && matched != negated && c != Some('/'), rest))
}

fn unescape(c: char, rest: &[char]) -> Result<(char, &[char])> {
    match (c, rest.split_first()) {
        ('\\', Some((&next, rest))) => Ok((next, rest)),
        ('\\', None) => bail!("syntax error in pattern: trailing \\"),
        (c, _) => Ok((c, rest)),
    }
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
                    check(&component.chars().collect::<Vec<_>>())
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
    /// Whether the rule matches `path` or a directory above it.
    fn matches_or_parent(&self, path: &[&str]) -> bool {
        (1..=path.len()).any(|len| match_path(&self.components, &path[..len]))
    }

    /// Whether the rule could match a path below `dir`.
    fn may_match_below(&self, dir: &[&str]) -> bool {
        prefix_match(&self.components, dir)
    }
}

/// Whether the pattern components match the path components exactly.
fn match_path(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_path(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((name, path)) => {
                match_component(first, name).unwrap_or(false) && match_path(rest, path)
            }
            None => false,
        },
    }
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
