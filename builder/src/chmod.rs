//! `COPY --chmod` / `ADD --chmod`: an octal mode, or chmod(1)'s symbolic
//! one (`u=rwx,go=rx`, `+x`, `a-w,u+s`), which BuildKit takes since
//! Dockerfile 1.14 and applies to each file's own mode. With no class
//! named, a clause is for all of them (a build has no umask).

use anyhow::{bail, Result};

/// A `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// Every file and directory gets these bits.
    Octal(u32),
    /// Each file's bits changed clause by clause.
    Symbolic(Vec<Clause>),
}

/// One comma-separated part: the classes it is for and its operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// The `rwx` bits of its classes (`u` 0o700, `g` 0o070, `o` 0o007).
    classes: u32,
    operations: Vec<(char, Perms)>,
}

/// What an operation sets, adds or removes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Perms {
    /// `r`, `w`, `x`, `X` (execute if a directory or executable by
    /// someone), `s`, `t`.
    Letters(String),
    /// The current bits of a class (`u`, `g`, `o`), copied.
    Copy(char),
}

/// The `rwx` bits of each class, and its special bit.
const CLASSES: [(char, u32, u32); 3] = [
    ('u', 0o700, 0o4000),
    ('g', 0o070, 0o2000),
    ('o', 0o007, 0o1000),
];

impl Chmod {
    /// Reads a `--chmod` value.
    pub fn parse(value: &str) -> Result<Chmod> {
        if value.chars().all(|c| c.is_ascii_digit()) && !value.is_empty() {
            return match u32::from_str_radix(value, 8) {
                Ok(mode) if mode <= 0o7777 => Ok(Chmod::Octal(mode)),
                _ => bail!(
                    "invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777"
                ),
            };
        }
        let clauses = value
            .split(',')
            .map(Clause::parse)
            .collect::<Option<Vec<_>>>();
        match clauses {
            Some(clauses) => Ok(Chmod::Symbolic(clauses)),
            None => {
                bail!("--chmod={value}: give an octal mode (755) or a symbolic one (u=rwx,go=rx)")
            }
        }
    }

    /// The mode a file (or directory, `is_dir`) whose mode is `mode` gets.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(bits) => *bits,
            Chmod::Symbolic(clauses) => clauses
                .iter()
                .fold(mode & 0o7777, |mode, clause| clause.apply(mode, is_dir)),
        }
    }
}

impl Clause {
    fn parse(text: &str) -> Option<Clause> {
        let who_end = text.find(['+', '-', '=']).unwrap_or(text.len());
        let mut classes = 0;
        for who in text[..who_end].chars() {
            classes |= match who {
                'a' => 0o777,
                who => CLASSES.iter().find(|(c, _, _)| *c == who)?.1,
            };
        }
        if classes == 0 {
            classes = 0o777;
        }
        let mut operations = Vec::new();
        let mut rest = &text[who_end..];
        while let Some(op) = rest.chars().next() {
            rest = &rest[1..];
            let end = rest.find(['+', '-', '=']).unwrap_or(rest.len());
            let perms = &rest[..end];
            let perms = match perms {
                "u" | "g" | "o" => Perms::Copy(perms.chars().next()?),
                letters if letters.chars().all(|c| "rwxXst".contains(c)) => {
                    Perms::Letters(letters.to_owned())
                }
                _ => return None,
            };
            operations.push((op, perms));
            rest = &rest[end..];
        }
        (!operations.is_empty()).then_some(Clause {
            classes,
            operations,
        })
    }

    fn apply(&self, mut mode: u32, is_dir: bool) -> u32 {
        // The special bits of the classes named: setuid for u, and so on.
        let specials: u32 = CLASSES
            .iter()
            .filter(|(_, rwx, _)| self.classes & rwx != 0)
            .map(|(_, _, special)| special)
            .sum();
        for (op, perms) in &self.operations {
            let bits = match perms {
                Perms::Letters(letters) => {
                    let mut bits = 0;
                    for letter in letters.chars() {
                        bits |= match letter {
                            'r' => 0o444 & self.classes,
                            'w' => 0o222 & self.classes,
                            'x' => 0o111 & self.classes,
                            'X' if is_dir || mode & 0o111 != 0 => 0o111 & self.classes,
                            's' => 0o6000 & specials,
                            't' => 0o1000 & specials,
                            _ => 0,
                        };
                    }
                    bits
                }
                Perms::Copy(class) => {
                    let shift = match class {
                        'u' => 6,
                        'g' => 3,
                        _ => 0,
                    };
                    (((mode >> shift) & 0o7) * 0o111) & self.classes
                }
            };
            mode = match op {
                '+' => mode | bits,
                '-' => mode & !bits,
                _ => (mode & !(self.classes | specials)) | bits,
            };
        }
        mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(value: &str, mode: u32, is_dir: bool) -> u32 {
        Chmod::parse(value).unwrap().apply(mode, is_dir)
    }

    #[test]
    fn octal_modes_replace_and_symbolic_ones_change_as_chmod_does() {
        assert_eq!(chmod("755", 0o600, false), 0o755);
        assert_eq!(chmod("0640", 0o777, true), 0o640);
        assert_eq!(chmod("u=rwx,g=rx,o=", 0o644, false), 0o750);
        assert_eq!(chmod("+x", 0o644, false), 0o755);
        assert_eq!(chmod("go-w", 0o666, false), 0o644);
        assert_eq!(chmod("a+X", 0o644, false), 0o644);
        assert_eq!(chmod("a+X", 0o644, true), 0o755);
        assert_eq!(chmod("a+X", 0o744, false), 0o755);
        assert_eq!(chmod("u+s,g=u", 0o750, false), 0o4770);
        assert_eq!(chmod("o+t", 0o777, true), 0o1777);
        assert_eq!(chmod("u=rw,go=r", 0o4755, false), 0o644);
    }

    #[test]
    fn malformed_modes_are_refused() {
        for bad in ["8", "17777", "u=rwz", "q+x", "u", "", "u+r,"] {
            assert!(Chmod::parse(bad).is_err(), "{bad}");
        }
    }
}
