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

use clap::{ArgMatches, Command, FromArgMatches};

/// `command` and all its subcommands with Docker's reading of values.
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
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<T, clap::Error> {
    let mut command = docker_parsing(command);
    let matches: ArgMatches = command.try_get_matches_from_mut(args)?;
    T::from_arg_matches(&matches).map_err(|err| err.format(&mut command))
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
