//! An attached `compose up`: the output of the containers attached, each
//! one's exit said once its output is all printed, until every one has
//! ended, or Ctrl-C (or, with --abort-on-container-exit, the first exit)
//! stops them all.
//!
//! Exits are learnt by waiting on every container, not from the end of its
//! log: a container whose output is not printed (`--no-attach`) or not
//! logged (the none log driver) still ends the run and gives its code.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::Result;
use hull_compose::{follow, service_of, Compose, LogLine};
use hull_runtime::signals::Signals;
use hull_runtime::{LogsOptions, Runtime};

use super::log_printer::LogPrinter;
use super::print_event;

/// How an attached `up` follows its containers.
pub struct AttachOptions {
    /// The services whose output is printed (none named: all).
    pub attach: Vec<String>,
    /// The services whose output is not printed.
    pub no_attach: Vec<String>,
    /// Stop every container once one exits (--abort-on-container-exit).
    pub cascade: bool,
    /// The service whose container's exit code is `up`'s.
    pub exit_code_from: Option<String>,
    /// How long each container's stop waits.
    pub grace: Option<Duration>,
    /// Print the output without `service |` prefixes.
    pub no_log_prefix: bool,
    /// Print each line's time.
    pub timestamps: bool,
}

impl AttachOptions {
    fn attaches(&self, service: &str) -> bool {
        (self.attach.is_empty() || self.attach.iter().any(|s| s == service))
            && !self.no_attach.iter().any(|s| s == service)
    }
}

/// What the followed containers do.
enum Happening {
    Line(LogLine),
    /// A container's process ended (`None`: it could not be waited on).
    Exited {
        container: String,
        code: Option<i32>,
    },
}

/// How far a container waited for has got.
#[derive(Default)]
struct Progress {
    exit: Option<Option<i32>>,
    output_done: bool,
}

/// Follows `containers` as `options` say; returns `up`'s exit code.
pub fn attach(
    compose: &Compose,
    containers: &[String],
    options: &AttachOptions,
    signals: &Signals,
) -> Result<u8> {
    let runtime = compose.runtime();
    let services: BTreeMap<String, String> = containers
        .iter()
        .filter_map(|container| {
            let info = runtime.inspect(container).ok()?;
            Some((container.clone(), service_of(&info)?.to_owned()))
        })
        .collect();
    let service_of = |container: &str| services.get(container).map(String::as_str);
    let attached: Vec<String> = containers
        .iter()
        .filter(|c| options.attaches(service_of(c).unwrap_or_default()))
        .cloned()
        .collect();
    let printer = LogPrinter::new(&compose.project().name, &attached)
        .without_prefix(options.no_log_prefix)
        .with_timestamps(options.timestamps);
    let happenings = watch(runtime, containers, &attached);
    // The run ends with the attached containers (all, if none is).
    let waited = match attached.is_empty() {
        true => containers,
        false => &attached[..],
    };
    let mut progress: BTreeMap<&str, Progress> = waited
        .iter()
        .map(|c| {
            let output_done = !attached.contains(c);
            (
                c.as_str(),
                Progress {
                    output_done,
                    ..Progress::default()
                },
            )
        })
        .collect();
    let mut aborting = false;
    let mut exit_code = 0;
    loop {
        if signals.interruption().is_some() {
            eprintln!("Gracefully stopping...");
            compose.stop(&[], options.grace, &mut print_event)?;
            return Ok(130);
        }
        let ended = |p: &Progress| p.exit.is_some() && p.output_done;
        if progress.values().all(ended) {
            return Ok(exit_code);
        }
        let container = match happenings.recv_timeout(Duration::from_millis(200)) {
            Ok(Happening::Line(LogLine::End { container, error })) => {
                if let Some(error) = error {
                    printer.print(LogLine::End {
                        container: container.clone(),
                        error: Some(error),
                    });
                }
                if let Some(progress) = progress.get_mut(container.as_str()) {
                    progress.output_done = true;
                }
                container
            }
            Ok(Happening::Line(line)) => {
                printer.print(line);
                continue;
            }
            Ok(Happening::Exited { container, code }) => {
                let service = service_of(&container);
                let exit_counts = match &options.exit_code_from {
                    Some(from) => service == Some(from),
                    None => !aborting && attached.contains(&container),
                };
                if options.cascade && exit_counts {
                    exit_code = code.map_or(1, |code| u8::try_from(code).unwrap_or(1));
                }
                if options.cascade && !aborting && (exit_counts || attached.contains(&container)) {
                    aborting = true;
                    eprintln!("Aborting on container exit...");
                    compose.stop(&[], options.grace, &mut print_event)?;
                }
                if let Some(progress) = progress.get_mut(container.as_str()) {
                    progress.exit = Some(code);
                }
                container
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Ok(exit_code),
        };
        // Said once its output is all printed and its process has ended.
        if let Some(Progress {
            exit: Some(code),
            output_done: true,
        }) = progress.get(container.as_str())
        {
            if attached.contains(&container) {
                printer.exited(&container, code.unwrap_or(-1));
            }
        }
    }
}

/// The output of `attached` and the exits of all `containers`, as they
/// happen.
fn watch(runtime: &Runtime, containers: &[String], attached: &[String]) -> Receiver<Happening> {
    let (sender, receiver) = mpsc::channel();
    let options = LogsOptions {
        follow: true,
        ..LogsOptions::default()
    };
    let lines = follow(runtime, attached, options);
    let to_lines = sender.clone();
    std::thread::spawn(move || {
        for line in lines {
            // A receiver gone means the run is over.
            let _ = to_lines.send(Happening::Line(line));
        }
    });
    for container in containers {
        let (runtime, container, sender) = (runtime.clone(), container.clone(), sender.clone());
        std::thread::spawn(move || {
            let code = runtime.wait(&container).ok();
            let _ = sender.send(Happening::Exited { container, code });
        });
    }
    receiver
}
