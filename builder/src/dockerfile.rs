//! A Dockerfile read into stages of instructions, with the parser crate's
//! syntax tree turned into what the builder acts on: flags as pairs,
//! shell forms with their line continuations joined, here-documents.

use anyhow::{anyhow, bail, Context, Result};
use parse_dockerfile::{
    Command as ParsedCommand, Flag, HealthcheckArguments, Instruction as Parsed, JsonOrStringArray,
    Source as ParsedSource,
};

/// The `# syntax=` values taken as Docker's own Dockerfile frontend (its
/// releases, and its builds from BuildKit's master branch).
const DOCKERFILE_SYNTAX: [&str; 4] = [
    "docker/dockerfile",
    "docker.io/docker/dockerfile",
    "docker/dockerfile-upstream",
    "docker.io/docker/dockerfile-upstream",
];

/// A parsed Dockerfile.
#[derive(Debug)]
pub struct Dockerfile {
    /// The escape character (`# escape=`).
    pub escape: char,
    /// `ARG`s before the first `FROM`: name and default, unexpanded.
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
}

/// One `FROM` and what follows it.
#[derive(Debug)]
pub struct Stage {
    /// Its `AS` name, lower-cased as BuildKit compares them.
    pub name: Option<String>,
    /// The base as written (`python:3.12`, `${BASE}`, a stage name, `scratch`).
    pub base: String,
    /// `--platform`, as written.
    pub platform: Option<String>,
    /// The `FROM` line, for progress.
    pub text: String,
    pub instructions: Vec<Instruction>,
}

/// An instruction and its source text.
#[derive(Debug, Clone)]
pub struct Instruction {
    /// As written, on one line (continuations joined), for progress and
    /// errors.
    pub text: String,
    pub kind: Kind,
}

/// A command in exec (JSON) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    /// Continuations joined, escapes and quotes as written (the shell's).
    Shell(String),
}

/// A here-document: its delimiter, its text and whether variables expand
/// in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HereDoc {
    pub name: String,
    pub text: String,
    pub expand: bool,
}

/// A source of `COPY`/`ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path, glob or URL, unexpanded.
    Path(String),
    /// A here-document becoming a file.
    HereDoc(HereDoc),
}

/// What an instruction does. Values are unexpanded.
#[derive(Debug, Clone)]
pub enum Kind {
    Run {
        flags: Vec<(String, Option<String>)>,
        command: Command,
        /// For `RUN <<EOF`: the here-document, and the shell line that
        /// names it (its first line).
        heredoc: Option<HereDoc>,
    },
    Copy {
        add: bool,
        flags: Vec<(String, Option<String>)>,
        sources: Vec<Source>,
        dest: String,
    },
    Workdir(String),
    Env(String),
    Arg(String),
    Label(String),
    Expose(Vec<String>),
    User(String),
    Volume(Vec<String>),
    Stopsignal(String),
    Healthcheck {
        flags: Vec<(String, Option<String>)>,
        /// `None` for `HEALTHCHECK NONE`.
        command: Option<Command>,
    },
    Shell(Vec<String>),
    Onbuild(String),
    Cmd(Command),
    Entrypoint(Command),
    Maintainer(String),
}

impl Kind {
    /// Whether it changes the file system (a step with a layer, shown in
    /// progress): `RUN`, `COPY`, `ADD`, `WORKDIR`.
    pub fn is_file_step(&self) -> bool {
        matches!(
            self,
            Kind::Run { .. } | Kind::Copy { .. } | Kind::Workdir(_)
        )
    }
}

/// Parses `text`, refusing another frontend than Docker's.
pub fn parse(text: &str) -> Result<Dockerfile> {
    if let Some(at) = text.find('\0') {
        let line = text[..at].matches('\n').count() + 1;
        bail!("Dockerfile line {line} holds a NUL byte: a Dockerfile is text");
    }
    let rewritten = crate::run_heredocs::rewrite(text, escape_directive(text))?;
    let text = rewritten.text.as_str();
    let parsed = parse_dockerfile::parse(text).map_err(|err| anyhow!("{err}"))?;
    if let Some(syntax) = &parsed.parser_directives.syntax {
        check_syntax(syntax.value.value)?;
    }
    let escape = parsed
        .parser_directives
        .escape
        .as_ref()
        .map_or('\\', |escape| escape.value.value);
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let starts: Vec<usize> = parsed
        .instructions
        .iter()
        .map(|i| keyword_start(i))
        .collect();
    let displays: std::collections::HashMap<usize, &str> = rewritten
        .displays
        .iter()
        .map(|(line, written)| (*line, written.as_str()))
        .collect();
    // The line each instruction starts on, counted as they come.
    let (mut line, mut counted) = (0, 0);
    for (index, instruction) in parsed.instructions.iter().enumerate() {
        let end = starts.get(index + 1).copied().unwrap_or(text.len());
        let source = &text[starts[index]..end];
        line += text[counted..starts[index]].matches('\n').count();
        counted = starts[index];
        let display = one_line(displays.get(&line).copied().unwrap_or(source), escape);
        match instruction {
            Parsed::From(from) => {
                let platform = flags(&from.options)
                    .into_iter()
                    .find(|(name, _)| name == "platform")
                    .and_then(|(_, value)| value);
                let name = from
                    .as_
                    .as_ref()
                    .map(|(_, name)| stage_name(&name.value))
                    .transpose()?;
                stages.push(Stage {
                    name,
                    base: from.image.value.to_string(),
                    platform,
                    text: display,
                    instructions: Vec::new(),
                });
            }
            Parsed::Arg(arg) if stages.is_empty() => {
                global_args.extend(crate::words::assignments(
                    &arg.arguments.value,
                    escape,
                    false,
                )?);
            }
            other => {
                let kind = match other {
                    Parsed::Entrypoint(_) if rewritten.empty_entrypoints.contains(&line) => {
                        Kind::Entrypoint(Command::Exec(Vec::new()))
                    }
                    other => convert(other, source, escape)
                        .with_context(|| format!("Dockerfile: {display}"))?,
                };
                let stage = stages
                    .last_mut()
                    .context("Dockerfile: an instruction before FROM")?;
                stage.instructions.push(Instruction {
                    text: display,
                    kind,
                });
            }
        }
    }
    if stages.is_empty() {
        bail!("Dockerfile has no FROM: every build starts FROM an image (or scratch)");
    }
    Ok(Dockerfile {
        escape,
        global_args,
        stages,
    })
}

/// A `FROM ... AS NAME`'s name, lower-cased as BuildKit compares them,
/// which must be BuildKit's: a letter, then letters, digits, `-`, `_` and
/// `.`.
fn stage_name(written: &str) -> Result<String> {
    let name = written.to_lowercase();
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if !valid {
        bail!(
            "invalid name for build stage: {written:?}, name can't start with a number or \
             contain symbols"
        );
    }
    Ok(name)
}

/// Parses one `ONBUILD` trigger, as a base image keeps it.
pub fn parse_trigger(trigger: &str) -> Result<Instruction> {
    parse_instruction(trigger).with_context(|| format!("ONBUILD trigger {trigger:?}"))
}

/// Parses one instruction written alone (an `ONBUILD` trigger, a `hull
/// commit -c` change).
pub fn parse_instruction(text: &str) -> Result<Instruction> {
    // Written alone, it has no line of a file to name.
    let mut dockerfile = parse(&format!("FROM scratch\n{text}\n"))
        .map_err(|err| anyhow!("{}", without_location(&format!("{err:#}"))))?;
    let mut instructions = std::mem::take(&mut dockerfile.stages[0].instructions);
    match (instructions.pop(), instructions.is_empty()) {
        (Some(instruction), true) => Ok(instruction),
        _ => bail!("{text:?} is not one instruction"),
    }
}

/// `message` without the parser's ` at line N column M` at its end.
fn without_location(message: &str) -> &str {
    let Some((before, location)) = message.rsplit_once(" at line ") else {
        return message;
    };
    let numbers = location.split_once(" column ").filter(|(line, column)| {
        [line, column]
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    match numbers {
        Some(_) => before,
        None => message,
    }
}

/// The `# escape=` directive's character, else `\\`: read before the
/// parser crate reads the file, for [`crate::run_heredocs`].
fn escape_directive(text: &str) -> char {
    for line in text.lines() {
        let Some(directive) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = directive.split_once('=') else {
            break;
        };
        let key = key.trim();
        if key.eq_ignore_ascii_case("escape") {
            return match value.trim() {
                "`" => '`',
                _ => '\\',
            };
        }
        if !(key.eq_ignore_ascii_case("syntax") || key.eq_ignore_ascii_case("check")) {
            break;
        }
    }
    '\\'
}

fn check_syntax(syntax: &str) -> Result<()> {
    let image = syntax.split(['@', ':']).next().unwrap_or(syntax);
    if DOCKERFILE_SYNTAX.contains(&image) {
        return Ok(());
    }
    bail!(
        "Dockerfile: # syntax={syntax} asks for another frontend; hull builds Dockerfiles \
         itself: remove the line or use docker/dockerfile:1"
    )
}

fn keyword_start(instruction: &Parsed<'_>) -> usize {
    match instruction {
        Parsed::Add(i) => i.add.span.start,
        Parsed::Arg(i) => i.arg.span.start,
        Parsed::Cmd(i) => i.cmd.span.start,
        Parsed::Copy(i) => i.copy.span.start,
        Parsed::Entrypoint(i) => i.entrypoint.span.start,
        Parsed::Env(i) => i.env.span.start,
        Parsed::Expose(i) => i.expose.span.start,
        Parsed::From(i) => i.from.span.start,
        Parsed::Healthcheck(i) => i.healthcheck.span.start,
        Parsed::Label(i) => i.label.span.start,
        Parsed::Maintainer(i) => i.maintainer.span.start,
        Parsed::Onbuild(i) => i.onbuild.span.start,
        Parsed::Run(i) => i.run.span.start,
        Parsed::Shell(i) => i.shell.span.start,
        Parsed::Stopsignal(i) => i.stopsignal.span.start,
        Parsed::User(i) => i.user.span.start,
        Parsed::Volume(i) => i.volume.span.start,
        Parsed::Workdir(i) => i.workdir.span.start,
        _ => 0,
    }
}

fn convert(instruction: &Parsed<'_>, source: &str, escape: char) -> Result<Kind> {
    // The here-documents' delimiters, in order, as the first line names them.
    let names = crate::run_heredocs::delimiters(&first_line(source, escape), escape);
    let mut names_left = names.iter();
    let mut source_of = |source: &ParsedSource<'_>| match source {
        ParsedSource::Path(path) => Source::Path(path.value.to_string()),
        ParsedSource::HereDoc(doc) => Source::HereDoc(HereDoc {
            name: names_left.next().cloned().unwrap_or_default(),
            text: doc.value.to_string(),
            expand: doc.expand,
        }),
        _ => Source::Path(String::new()),
    };
    Ok(match instruction {
        Parsed::Run(run) => {
            let command = command(&run.arguments, escape);
            let heredoc = run.here_docs.first().map(|doc| HereDoc {
                name: names.first().cloned().unwrap_or_default(),
                text: doc.value.to_string(),
                expand: doc.expand,
            });
            Kind::Run {
                flags: flags(&run.options),
                command,
                heredoc,
            }
        }
        Parsed::Copy(copy) => Kind::Copy {
            add: false,
            flags: flags(&copy.options),
            sources: copy.src.iter().map(&mut source_of).collect(),
            dest: copy.dest.value.to_string(),
        },
        Parsed::Add(add) => Kind::Copy {
            add: true,
            flags: flags(&add.options),
            sources: add.src.iter().map(&mut source_of).collect(),
            dest: add.dest.value.to_string(),
        },
        Parsed::Workdir(i) => Kind::Workdir(i.arguments.value.to_string()),
        Parsed::Env(i) => Kind::Env(i.arguments.value.to_string()),
        Parsed::Arg(i) => Kind::Arg(i.arguments.value.to_string()),
        Parsed::Label(i) => {
            check_label(&i.arguments.value, escape)?;
            Kind::Label(i.arguments.value.to_string())
        }
        Parsed::Expose(i) => {
            Kind::Expose(i.arguments.iter().map(|a| a.value.to_string()).collect())
        }
        Parsed::User(i) => Kind::User(i.arguments.value.to_string()),
        Parsed::Volume(i) => Kind::Volume(match &i.arguments {
            JsonOrStringArray::Json(array) => {
                array.value.iter().map(|a| a.value.to_string()).collect()
            }
            JsonOrStringArray::String(words) => words.iter().map(|a| a.value.to_string()).collect(),
        }),
        Parsed::Stopsignal(i) => Kind::Stopsignal(i.arguments.value.to_string()),
        Parsed::Healthcheck(i) => Kind::Healthcheck {
            flags: flags(&i.options),
            command: match &i.arguments {
                HealthcheckArguments::Cmd { arguments, .. } => {
                    Some(health_command(command(arguments, escape))?)
                }
                _ => None,
            },
        },
        Parsed::Shell(i) => Kind::Shell(i.arguments.iter().map(|a| a.value.to_string()).collect()),
        Parsed::Onbuild(i) => {
            let start = keyword_start(&i.instruction) - i.onbuild.span.start;
            let trigger = one_line(&source[start.min(source.len())..], escape);
            let keyword = trigger
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            if matches!(keyword.as_str(), "FROM" | "MAINTAINER") {
                bail!("{keyword} isn't allowed as an ONBUILD trigger");
            }
            Kind::Onbuild(trigger)
        }
        Parsed::Cmd(i) => Kind::Cmd(command(&i.arguments, escape)),
        Parsed::Entrypoint(i) => Kind::Entrypoint(command(&i.arguments, escape)),
        Parsed::Maintainer(i) => Kind::Maintainer(i.name.value.to_string()),
        _ => bail!("this instruction is not supported"),
    })
}

/// Refuses a `LABEL` that BuildKit refuses: a key alone, or a word
/// without `=` among `KEY=VALUE` pairs (`LABEL KEY VALUE` is the old form).
fn check_label(text: &str, escape: char) -> Result<()> {
    let pairs = crate::words::assignments(text, escape, true)?;
    match pairs.iter().find(|(_, value)| value.is_none()) {
        None => Ok(()),
        Some(_) if pairs.len() == 1 => bail!("LABEL must have two arguments"),
        Some((word, _)) => {
            bail!("Syntax error - can't find = in {word:?}. Must be of the form: name=value")
        }
    }
}

/// A `HEALTHCHECK CMD`'s command, refused when there is none (the crate
/// reads a bare `HEALTHCHECK CMD` as an empty shell form).
fn health_command(command: Command) -> Result<Command> {
    match &command {
        Command::Shell(line) if line.trim().is_empty() => {
            bail!("Missing command after HEALTHCHECK CMD")
        }
        _ => Ok(command),
    }
}

fn command(command: &ParsedCommand<'_>, escape: char) -> Command {
    match command {
        ParsedCommand::Exec(args) => {
            Command::Exec(args.value.iter().map(|a| a.value.to_string()).collect())
        }
        ParsedCommand::Shell(text) => Command::Shell(join_continuations(text.value, escape)),
        _ => Command::Shell(String::new()),
    }
}

/// An instruction's first line, its continuations joined (comment lines
/// in them left out).
fn first_line(source: &str, escape: char) -> String {
    let mut line = String::new();
    for part in source.lines() {
        if !line.is_empty() && part.trim_start().starts_with('#') {
            continue;
        }
        match part.trim_end().strip_suffix(escape) {
            Some(joined) => line.push_str(joined),
            None => {
                line.push_str(part);
                break;
            }
        }
    }
    line
}

fn flags(flags: &[Flag<'_>]) -> Vec<(String, Option<String>)> {
    flags
        .iter()
        .map(|flag| {
            (
                flag.name.value.to_string(),
                flag.value.as_ref().map(|value| value.value.to_string()),
            )
        })
        .collect()
}

/// A shell form's text as the shell gets it: each escape character that
/// ends a line removed with its newline, comment lines inside dropped.
pub fn join_continuations(text: &str, escape: char) -> String {
    let mut joined = String::new();
    let mut lines = text.lines().peekable();
    let mut first = true;
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if !first && (trimmed.starts_with('#') || trimmed.is_empty()) {
            continue;
        }
        first = false;
        let stripped = line.trim_end();
        match stripped.strip_suffix(escape) {
            Some(body) if lines.peek().is_some() => joined.push_str(body),
            _ => {
                joined.push_str(line);
                if lines.peek().is_some() {
                    joined.push('\n');
                }
            }
        }
    }
    joined.trim().to_owned()
}

/// An instruction's source on one line for display.
fn one_line(source: &str, escape: char) -> String {
    let first_heredoc_line = source
        .find("<<")
        .map(|_| source.lines().next().unwrap_or(source));
    let text = first_heredoc_line.unwrap_or(source);
    join_continuations(text, escape)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names_and_nul_bytes_are_refused_as_buildkit_does() {
        for bad in ["UPPER!", "1st", "a/b", "-x"] {
            let err = parse(&format!("FROM scratch AS {bad}\n")).unwrap_err();
            assert!(
                err.to_string().contains("invalid name for build stage"),
                "{bad}: {err:#}"
            );
        }
        let stage = parse("FROM scratch AS Build-1.x_y\n").unwrap();
        assert_eq!(stage.stages[0].name.as_deref(), Some("build-1.x_y"));
        let err = parse("FROM scratch\nCOPY a /\0\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Dockerfile line 2 holds a NUL byte: a Dockerfile is text"
        );
    }

    #[test]
    fn stages_instructions_and_forms_are_read() {
        let text = "# syntax=docker/dockerfile:1.7\nARG BASE=bb:1\nFROM --platform=linux/amd64 ${BASE} AS Builder\n\
                    RUN --mount=type=cache,target=/root/.cache apk add \\\n    # note\n    python3 \\\n    git\n\
                    COPY --from=builder --chmod=755 a b /dst/\n\
                    RUN <<EOF\necho hi\nEOF\n\
                    CMD [\"python\", \"app.py\"]\nONBUILD RUN echo built\n\
                    FROM scratch\nCOPY --from=builder /dst /\n";
        let dockerfile = parse(text).unwrap();
        assert_eq!(
            dockerfile.global_args,
            [("BASE".into(), Some("bb:1".into()))]
        );
        assert_eq!(dockerfile.stages.len(), 2);
        let builder = &dockerfile.stages[0];
        assert_eq!(builder.name.as_deref(), Some("builder"));
        assert_eq!(builder.base, "${BASE}");
        assert_eq!(builder.platform.as_deref(), Some("linux/amd64"));
        let Kind::Run {
            flags,
            command,
            heredoc,
        } = &builder.instructions[0].kind
        else {
            panic!("{:?}", builder.instructions[0]);
        };
        assert_eq!(
            flags,
            &[(
                "mount".to_owned(),
                Some("type=cache,target=/root/.cache".to_owned())
            )]
        );
        assert_eq!(
            command,
            &Command::Shell("apk add     python3     git".into())
        );
        assert!(heredoc.is_none());
        assert_eq!(
            builder.instructions[0].text,
            "RUN --mount=type=cache,target=/root/.cache apk add python3 git"
        );
        let Kind::Copy { sources, dest, .. } = &builder.instructions[1].kind else {
            panic!()
        };
        assert_eq!(
            sources,
            &[Source::Path("a".into()), Source::Path("b".into())]
        );
        assert_eq!(dest, "/dst/");
        let Kind::Run {
            heredoc: Some(doc), ..
        } = &builder.instructions[2].kind
        else {
            panic!()
        };
        assert_eq!((doc.name.as_str(), doc.text.as_str()), ("EOF", "echo hi\n"));
        assert_eq!(builder.instructions[2].text, "RUN <<EOF");
        let Kind::Cmd(Command::Exec(args)) = &builder.instructions[3].kind else {
            panic!()
        };
        assert_eq!(args, &["python", "app.py"]);
        let Kind::Onbuild(trigger) = &builder.instructions[4].kind else {
            panic!()
        };
        assert_eq!(trigger, "RUN echo built");
        assert!(matches!(
            parse_trigger(trigger).unwrap().kind,
            Kind::Run { .. }
        ));
    }

    #[test]
    fn an_instruction_written_alone_names_no_line() {
        let err = parse_instruction("ENV").unwrap_err().to_string();
        assert_eq!(err, "ENV instruction requires at least one argument");
        assert_eq!(without_location("x at line 2"), "x at line 2");
        assert_eq!(without_location("x at line 2 column 1"), "x");
    }

    #[test]
    fn from_and_maintainer_are_no_onbuild_triggers() {
        for trigger in ["FROM x", "maintainer me"] {
            let err = parse(&format!("FROM a\nONBUILD {trigger}\n")).unwrap_err();
            assert!(
                format!("{err:#}").contains("isn't allowed as an ONBUILD trigger"),
                "{err:#}"
            );
        }
    }

    #[test]
    fn an_empty_entrypoint_is_read_as_buildkit_reads_it() {
        let dockerfile = parse("FROM a\nENTRYPOINT [ ]\nCMD [\"x\"]\nENTRYPOINT [\"\"]\n").unwrap();
        let instructions = &dockerfile.stages[0].instructions;
        assert_eq!(instructions[0].text, "ENTRYPOINT [ ]");
        assert!(
            matches!(&instructions[0].kind, Kind::Entrypoint(Command::Exec(args)) if args.is_empty())
        );
        assert!(matches!(&instructions[1].kind, Kind::Cmd(Command::Exec(args)) if args == &["x"]));
        assert!(
            matches!(&instructions[2].kind, Kind::Entrypoint(Command::Exec(args)) if args == &[""])
        );
        assert!(matches!(
            parse_instruction("ENTRYPOINT []").unwrap().kind,
            Kind::Entrypoint(Command::Exec(args)) if args.is_empty()
        ));
    }

    #[test]
    fn malformed_instructions_are_refused_naming_their_line() {
        for (line, expected) in [
            (
                "CMD [\"a\", 1]",
                "Dockerfile line 2: CMD [\"a\", 1]: when using JSON array syntax, arrays must be \
                 comprised of strings only",
            ),
            (
                "COPY --chown=1 [\"a\", 2]",
                "Dockerfile line 2: COPY --chown=1 [\"a\", 2]: when using JSON array syntax",
            ),
            (
                "SHELL [\"sh\", 1]",
                "Dockerfile line 2: SHELL [\"sh\", 1]: when using JSON array syntax",
            ),
            (
                "LABEL a",
                "Dockerfile: LABEL a: LABEL must have two arguments",
            ),
            (
                "LABEL a=1 b",
                "Dockerfile: LABEL a=1 b: Syntax error - can't find = in \"b\". Must be of the \
                 form: name=value",
            ),
            (
                "HEALTHCHECK --interval=5s CMD",
                "Dockerfile: HEALTHCHECK --interval=5s CMD: Missing command after HEALTHCHECK CMD",
            ),
        ] {
            let err = parse(&format!("FROM a\n{line}\n")).unwrap_err();
            assert!(format!("{err:#}").starts_with(expected), "{line}: {err:#}");
        }
        for fine in [
            "CMD [\"a\", 1",
            "RUN [ -e x ]",
            "LABEL a b c",
            "LABEL a=1 b=2",
        ] {
            assert!(parse(&format!("FROM a\n{fine}\n")).is_ok(), "{fine}");
        }
    }

    #[test]
    fn other_frontends_and_fromless_files_are_refused() {
        assert!(parse("# syntax=docker/dockerfile-upstream:master\nFROM a\n").is_ok());
        let err = parse("# syntax=tonistiigi/dockerfile:x\nFROM a\n").unwrap_err();
        assert!(err.to_string().contains("another frontend"), "{err}");
        assert!(parse("RUN true\n").is_err());
        assert_eq!(
            parse("# escape=`\nFROM a\nRUN a `\n  b\n").unwrap().escape,
            '`'
        );
    }
}
