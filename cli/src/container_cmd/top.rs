//! `hull top NAME [ps OPTIONS]`: the processes of a running container, as
//! its agent reads them in the guest (pids as the container sees them),
//! laid out as `ps` would for the options (`ps_format`).

use std::time::SystemTime;

use anyhow::Result;
use clap::Args;
use hull_runtime::{ProcessInfo, Runtime};

use super::ps_format::PsFormat;

/// `docker top`'s column width.
const MIN_COLUMN_WIDTH: usize = 20;

#[derive(Args)]
pub struct TopArgs {
    /// Container name or ID.
    container: String,
    /// `ps` options: -ef (the default), -e, aux, ax, -o FIELD[=TITLE],...
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ps OPTIONS"
    )]
    ps_options: Vec<String>,
}

pub fn top(args: TopArgs, runtime: &Runtime) -> Result<u8> {
    let format = PsFormat::parse(&args.ps_options)?;
    print_processes(&format, &runtime.top(&args.container)?)?;
    Ok(0)
}

/// Prints `processes` as `ps` does with `format`'s options, in `docker
/// top`'s columns. Control characters a process put in its name or
/// arguments are shown as `?`, as `ps` shows them.
pub fn print_processes(format: &PsFormat, processes: &[ProcessInfo]) -> Result<()> {
    let now = SystemTime::now();
    let lines: Vec<Vec<String>> = std::iter::once(format.titles())
        .chain(processes.iter().map(|process| format.cells(process, now)))
        .map(|cells| cells.iter().map(|cell| printable(cell)).collect())
        .collect();
    hull_format::render_columns(&lines, MIN_COLUMN_WIDTH, &mut std::io::stdout())
}

fn printable(cell: &str) -> String {
    cell.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_show_as_question_marks() {
        assert_eq!(printable("sh -c \u{1b}[2J\tx\n"), "sh -c ?[2J?x?");
        assert_eq!(printable("日本語 ✓"), "日本語 ✓");
    }
}
