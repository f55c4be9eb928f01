//! Several containers' logs as one stream on stdout, each line prefixed
//! with its container's name within the project (`web-1 | ...`), as
//! Compose prints `logs` and an attached `up`.

use std::io::Write;

use hull_compose::LogLine;
use hull_runtime::Runtime;

/// How the lines of a project's containers are printed.
pub struct LogPrinter {
    /// `<project>-`, left off the containers' names.
    project_prefix: String,
    /// The longest name, to line the bars up.
    width: usize,
    /// Print the `name |` prefix.
    prefix: bool,
    /// Print each line's time.
    timestamps: bool,
    /// Say when a container's process ended (attached `up`).
    announce_exits: bool,
}

impl LogPrinter {
    /// A printer for `containers` (names) of `project`.
    pub fn new(project: &str, containers: &[String]) -> LogPrinter {
        let mut printer = LogPrinter {
            project_prefix: format!("{project}-"),
            width: 0,
            prefix: true,
            timestamps: false,
            announce_exits: false,
        };
        printer.width = containers
            .iter()
            .map(|name| printer.label(name).len())
            .max()
            .unwrap_or(0);
        printer
    }

    /// Without the `name |` prefixes.
    pub fn without_prefix(mut self, off: bool) -> LogPrinter {
        self.prefix = !off;
        self
    }

    /// With each line's time.
    pub fn with_timestamps(mut self, on: bool) -> LogPrinter {
        self.timestamps = on;
        self
    }

    /// Saying `web-1 exited with code 0` when a log ends.
    pub fn announcing_exits(mut self) -> LogPrinter {
        self.announce_exits = true;
        self
    }

    /// A container's name as the prefix shows it: `web-1` for
    /// `<project>-web-1`, a `container_name` whole.
    pub fn label<'n>(&self, name: &'n str) -> &'n str {
        name.strip_prefix(&self.project_prefix).unwrap_or(name)
    }

    /// Prints `line`; `runtime` tells an ended container's exit code.
    pub fn print(&self, line: LogLine, runtime: &Runtime) {
        let mut stdout = std::io::stdout().lock();
        let width = self.width;
        match line {
            LogLine::Entry { container, entry } => {
                let text = entry.log.strip_suffix('\n').unwrap_or(&entry.log);
                if self.prefix {
                    let _ = write!(stdout, "{:<width$} | ", self.label(&container));
                }
                if self.timestamps {
                    let _ = write!(stdout, "{} ", entry.time);
                }
                let _ = writeln!(stdout, "{text}");
            }
            LogLine::End {
                container,
                error: Some(error),
            } => eprintln!("{:<width$} | hull: {error}", self.label(&container)),
            LogLine::End {
                container,
                error: None,
            } if self.announce_exits => {
                let code = runtime
                    .inspect(&container)
                    .ok()
                    .and_then(|c| c.state.exit_code);
                let _ = writeln!(
                    stdout,
                    "{} exited with code {}",
                    self.label(&container),
                    code.unwrap_or(-1)
                );
            }
            LogLine::End { .. } => {}
        }
        let _ = stdout.flush();
    }
}
