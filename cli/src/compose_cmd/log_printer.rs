//! Several containers' logs as one stream on stdout, each line prefixed
//! with its container's name within the project (`web-1 | ...`), as
//! Compose prints `logs` and an attached `up`.

use std::io::Write;

use hull_compose::LogLine;

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
}

impl LogPrinter {
    /// A printer for `containers` (names) of `project`.
    pub fn new(project: &str, containers: &[String]) -> LogPrinter {
        let mut printer = LogPrinter {
            project_prefix: format!("{project}-"),
            width: 0,
            prefix: true,
            timestamps: false,
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

    /// A container's name as the prefix shows it: `web-1` for
    /// `<project>-web-1`, a `container_name` whole.
    pub fn label<'n>(&self, name: &'n str) -> &'n str {
        name.strip_prefix(&self.project_prefix).unwrap_or(name)
    }

    /// Prints `line`: an entry, or why a log could not be read.
    pub fn print(&self, line: LogLine) {
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
            LogLine::End { error: None, .. } => {}
        }
        let _ = stdout.flush();
    }

    /// Says that `container`'s process ended with `code`, as an attached
    /// `up` says it: `web-1 exited with code 0`.
    pub fn exited(&self, container: &str, code: i32) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{} exited with code {code}", self.label(container));
        let _ = stdout.flush();
    }
}
