//! The command line read as Docker's CLI reads it, and a bad one shown as
//! Docker shows it: on one line, with where to look next.
//!
//! Docker's flags take the next word as their value even when it starts
//! with `-` (`--memory-swap -1`, `stop -t -1`); clap refuses such a word
//! unless told, so every option taking a value here accepts a negative
//! number. A usage error is clap's message, with its details (the missing
//! arguments, the possible values, a similar flag) on the same line and
//! `see 'hull run --help'` after it, instead of clap's several lines of
//! tips and usage (some of which are wrong for a flag's value: "to pass
//! '-a' as a value, use '-- -a'").

use std::ffi::OsString;

use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};

/// `command` and all its subcommands with Docker's reading of values: a
/// negative number is a value.
pub fn docker_parsing(command: Command) -> Command {
    command
        .mut_args(|arg| match arg.get_action().takes_values() {
            true => arg.allow_negative_numbers(true),
            false => arg,
        })
        .mut_subcommands(docker_parsing)
}

/// `T` parsed from `args` by `command` (its derived definition) read with
/// [`docker_parsing`].
pub fn parse<T: FromArgMatches>(
    command: Command,
    args: impl IntoIterator<Item = OsString>,
) -> Result<T, clap::Error> {
    let mut command = docker_parsing(command);
    let args = bool_values(&command, args)?;
    let matches: ArgMatches = command.try_get_matches_from_mut(args)?;
    T::from_arg_matches(&matches).map_err(|err| err.format(&mut command))
}

/// `args` with the boolean flags given a value after `=`, as Go's flag
/// package takes them (`--rm=false`, `-d=true`, `-aq=0`), as clap reads
/// them: the flag for true, nothing for false. clap cannot take a value
/// for a flag without making it an option (which it then counts as given
/// even when false, for conflicts and requirements, and shows as one in
/// help). The words are read as clap would: down the subcommands, past
/// option values, and no further than `--` or the first word of a
/// trailing command (`run IMAGE CMD...`), which are left as they are. A
/// value Go does not read as a boolean is an error.
pub fn bool_values(
    command: &Command,
    args: impl IntoIterator<Item = OsString>,
) -> Result<Vec<OsString>, clap::Error> {
    let mut args = args.into_iter();
    let mut out: Vec<OsString> = args.next().into_iter().collect();
    let mut path = vec![command];
    while let Some(arg) = args.next() {
        let Some(word) = arg.to_str().map(str::to_owned) else {
            out.push(arg);
            continue;
        };
        let current = *path.last().expect("the command is on the path");
        if word == "--" {
            out.push(arg);
            break;
        }
        let (rewritten, value_follows) = match word.strip_prefix('-') {
            Some(long) if long.starts_with('-') => long_flag(&path, &long[1..])?,
            Some(shorts) if !shorts.is_empty() => short_flags(&path, shorts)?,
            _ => {
                out.push(arg);
                if let Some(subcommand) = current.find_subcommand(&word) {
                    path.push(subcommand);
                } else if current.get_positionals().any(Arg::is_trailing_var_arg_set) {
                    break;
                }
                continue;
            }
        };
        match rewritten {
            Some(Some(word)) => out.push(word.into()),
            Some(None) => {}
            None => out.push(arg),
        }
        if value_follows {
            out.extend(args.next());
        }
    }
    out.extend(args);
    Ok(out)
}

/// What [`long_flag`] and [`short_flags`] make of a word: its rewriting
/// (`None`: as it is; `Some(None)`: dropped), and whether the next word is
/// its value.
type Rewritten = Result<(Option<Option<String>>, bool), clap::Error>;

/// The error for a boolean flag's value that Go would not read.
fn not_a_bool(flag: &str, value: &str) -> clap::Error {
    clap::Error::raw(
        clap::error::ErrorKind::InvalidValue,
        format!("invalid value '{value}' for '{flag}': a boolean flag takes true or false\n"),
    )
}

/// `--NAME[=VALUE]`.
fn long_flag(path: &[&Command], flag: &str) -> Rewritten {
    let (name, value) = match flag.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (flag, None),
    };
    let Some(arg) = find_arg(path, |arg| {
        arg.get_long() == Some(name) || arg.get_all_aliases().is_some_and(|a| a.contains(&name))
    }) else {
        return Ok((None, false));
    };
    Ok(match (is_bool(arg), value) {
        (true, Some(value)) => match go_bool(value) {
            Some(true) => (Some(Some(format!("--{name}"))), false),
            Some(false) => (Some(None), false),
            None => return Err(not_a_bool(&format!("--{name}"), value)),
        },
        (false, None) => (None, takes_next_word(arg)),
        _ => (None, false),
    })
}

/// `-abc[=VALUE]`: a value after `=` is the last flag's.
fn short_flags(path: &[&Command], shorts: &str) -> Rewritten {
    let (flags, value) = match shorts.split_once('=') {
        Some((flags, value)) => (flags, Some(value)),
        None => (shorts, None),
    };
    for (at, short) in flags.char_indices() {
        let Some(arg) = find_arg(path, |arg| {
            arg.get_short() == Some(short)
                || arg
                    .get_short_and_visible_aliases()
                    .is_some_and(|a| a.contains(&short))
        }) else {
            return Ok((None, false));
        };
        if !is_bool(arg) {
            // An option: the rest of the word is its value, else the next.
            let rest_is_value = at + short.len_utf8() < flags.len() || value.is_some();
            return Ok((None, !rest_is_value && takes_next_word(arg)));
        }
    }
    let Some(value) = value else {
        return Ok((None, false));
    };
    let last = flags.chars().last().map_or(0, char::len_utf8);
    Ok(match go_bool(value) {
        Some(true) => (Some(Some(format!("-{flags}"))), false),
        Some(false) => {
            let rest = &flags[..flags.len() - last];
            (Some((!rest.is_empty()).then(|| format!("-{rest}"))), false)
        }
        None => {
            let flag = &flags[flags.len() - last..];
            return Err(not_a_bool(&format!("-{flag}"), value));
        }
    })
}

/// The argument of the innermost command of `path` that `matches`, or a
/// global one of a command above it.
fn find_arg<'a>(path: &[&'a Command], matches: impl Fn(&Arg) -> bool) -> Option<&'a Arg> {
    let (current, above) = path.split_last()?;
    current
        .get_arguments()
        .find(|arg| matches(arg))
        .or_else(|| {
            above
                .iter()
                .rev()
                .flat_map(|command| command.get_arguments())
                .find(|arg| arg.is_global_set() && matches(arg))
        })
}

fn is_bool(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue)
}

/// Whether the option takes the next word as its value when given alone.
fn takes_next_word(arg: &Arg) -> bool {
    arg.get_action().takes_values() && !arg.is_require_equals_set()
}

/// A boolean as Go's `strconv.ParseBool` reads it.
fn go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A usage error of clap's on one line, without the `error: ` it starts
/// with: its message, its details in parentheses, and the help to read.
pub fn error_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let mut message = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    if let Some((said, reason)) = number_error(err) {
        if let Some(start) = message.strip_suffix(&said) {
            message = format!("{start}{reason}");
        }
    }
    let mut details = Vec::new();
    let mut help = None;
    for line in lines.map(str::trim) {
        if let Some(usage) = line.strip_prefix("Usage: ") {
            help = Some(command_path(usage));
        } else if let Some(tip) = line.strip_prefix("tip: ") {
            // "to pass '-a' as a value, use '-- -a'" misleads for a flag.
            if !tip.starts_with("to pass ") {
                details.push(tip.to_owned());
            }
        } else if line.is_empty()
            || line.starts_with("For more information")
            // It lists the hidden helper commands too.
            || line.starts_with("[subcommands:")
        {
            continue;
        } else {
            let detail = line.strip_prefix('[').and_then(|l| l.strip_suffix(']'));
            details.push(detail.unwrap_or(line).to_owned());
        }
    }
    if !details.is_empty() {
        match message.ends_with(':') {
            true => message = format!("{message} {}", details.join(", ")),
            false => message = format!("{message} ({})", details.join("; ")),
        }
    }
    match help {
        Some(path) => format!("{message}; see '{path} --help'"),
        None => message,
    }
}

/// Of a value that is not the number a flag takes, what Rust's parser
/// said and what to say instead ("invalid digit found in string" names
/// no number).
fn number_error(err: &clap::Error) -> Option<(String, &'static str)> {
    use std::num::IntErrorKind;
    let source = std::error::Error::source(err)?;
    if let Some(int) = source.downcast_ref::<std::num::ParseIntError>() {
        let reason = match int.kind() {
            IntErrorKind::Empty => "a number is required",
            IntErrorKind::PosOverflow => "the number is too large",
            IntErrorKind::NegOverflow => "the number is too small",
            _ => "not a whole number",
        };
        return Some((int.to_string(), reason));
    }
    let float = source.downcast_ref::<std::num::ParseFloatError>()?;
    Some((float.to_string(), "not a number"))
}

/// The command's words of a usage line (`hull volume create`), without
/// its arguments.
fn command_path(usage: &str) -> String {
    usage
        .split_whitespace()
        .take_while(|word| !word.starts_with(['-', '[', '<']))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Parser, Debug)]
    #[command(name = "hull")]
    struct Cli {
        #[arg(long, global = true)]
        root: Option<String>,
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Subcommand, Debug)]
    enum Sub {
        Stop {
            #[arg(short, long)]
            time: Option<u64>,
        },
        Run {
            #[arg(long)]
            memory: Option<i64>,
            #[arg(long)]
            cpus: Option<String>,
            #[arg(long, value_parser = ["always", "missing", "never"])]
            pull: Option<String>,
            #[arg(short, long)]
            detach: bool,
            image: String,
        },
        Rm {
            #[arg(required = true)]
            containers: Vec<String>,
        },
    }

    fn error(words: &[&str]) -> String {
        let args = std::iter::once("hull").chain(words.iter().copied());
        match parse::<Cli>(Cli::command(), args.map(Into::into)) {
            Ok(cli) => panic!("{words:?} parsed: {cli:?}"),
            Err(err) => error_line(&err),
        }
    }

    #[test]
    fn a_flag_takes_a_negative_number_as_its_value() {
        let args = ["hull", "run", "--memory", "-1", "--cpus", "-2", "alpine"];
        let cli = parse::<Cli>(Cli::command(), args.map(Into::into)).unwrap();
        let Sub::Run { memory, cpus, .. } = cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!((memory, cpus.as_deref()), (Some(-1), Some("-2")));
        // Other words starting with '-' are still flags.
        assert!(error(&["run", "--memory", "-x", "alpine"]).starts_with("unexpected argument"));
    }

    #[test]
    fn a_usage_error_is_one_line_naming_the_help_to_read() {
        assert_eq!(
            error(&["run", "--bogus", "all", "alpine"]),
            "unexpected argument '--bogus' found; see 'hull run --help'"
        );
        assert_eq!(
            error(&["run", "--detatch", "alpine"]),
            "unexpected argument '--detatch' found (a similar argument exists: '--detach'); \
             see 'hull run --help'"
        );
        assert_eq!(
            error(&["--root", "/r", "rm"]),
            "the following required arguments were not provided: <CONTAINERS>...; \
             see 'hull rm --help'"
        );
        assert_eq!(
            error(&[""]),
            "unrecognized subcommand ''; see 'hull --help'"
        );
    }

    #[test]
    fn a_boolean_flag_takes_a_value_after_equals() {
        let detach = |words: &[&str]| {
            let args = ["hull", "run"].iter().chain(words).map(Into::into);
            match parse::<Cli>(Cli::command(), args).unwrap().command {
                Sub::Run { detach, image, .. } => (detach, image),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(detach(&["-d", "alpine"]), (true, "alpine".into()));
        assert_eq!(
            detach(&["--detach=false", "alpine"]),
            (false, "alpine".into())
        );
        assert_eq!(detach(&["-d=1", "alpine"]), (true, "alpine".into()));
        assert_eq!(detach(&["alpine"]), (false, "alpine".into()));
        // Without `=`, the next word is not its value.
        assert_eq!(detach(&["-d", "false"]), (true, "false".into()));
        assert_eq!(
            error(&["run", "-d=maybe", "alpine"]),
            "invalid value 'maybe' for '-d': a boolean flag takes true or false"
        );
        // A false flag is not given: it conflicts with nothing.
        assert_eq!(detach(&["-d=0", "-d", "alpine"]), (true, "alpine".into()));
    }

    #[test]
    fn a_value_that_is_no_number_says_so() {
        assert_eq!(
            error(&["stop", "-t", "abc"]),
            "invalid value 'abc' for '--time <TIME>': not a whole number"
        );
    }

    #[test]
    fn an_invalid_value_names_the_values_there_are() {
        assert_eq!(
            error(&["run", "--pull", "bogus", "alpine"]),
            "invalid value 'bogus' for '--pull <PULL>' (possible values: always, missing, never)"
        );
    }
}
