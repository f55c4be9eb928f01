//! Transfer progress: one bar per layer and a total on a terminal, plain
//! lines otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};
use oci_client::manifest::OciDescriptor;

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStyle {
    /// Bars on a terminal.
    Bars(Stream),
    /// One line per layer event (not a terminal).
    Lines(Stream),
    /// Nothing.
    Quiet,
}

/// Where progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    /// For commands whose stdout is someone else's, like `hull run`'s.
    Stderr,
}

impl ProgressStyle {
    /// Bars when `stream` is a terminal, lines otherwise.
    pub fn on(stream: Stream) -> ProgressStyle {
        use std::io::IsTerminal;
        let terminal = match stream {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        };
        if terminal {
            ProgressStyle::Bars(stream)
        } else {
            ProgressStyle::Lines(stream)
        }
    }

    /// Writes `line` where this style shows progress; nothing when quiet.
    /// For the lines around a transfer, such as Docker's `Digest: ...`.
    pub fn message(self, line: &str) {
        match self {
            ProgressStyle::Bars(Stream::Stdout) | ProgressStyle::Lines(Stream::Stdout) => {
                println!("{line}")
            }
            ProgressStyle::Bars(Stream::Stderr) | ProgressStyle::Lines(Stream::Stderr) => {
                eprintln!("{line}")
            }
            ProgressStyle::Quiet => {}
        }
    }
}

/// Progress of one transfer of `layers` (a clone shows on the same bars).
#[derive(Clone)]
pub struct Progress {
    style: ProgressStyle,
    /// What a layer's bar says while it moves: Docker's `Downloading`,
    /// `Pushing`.
    moving: &'static str,
    names: Vec<String>,
    bars: Vec<ProgressBar>,
    total: Option<ProgressBar>,
}

impl Progress {
    pub fn new(style: ProgressStyle, layers: &[OciDescriptor], moving: &'static str) -> Progress {
        let names: Vec<String> = layers
            .iter()
            .map(|l| {
                l.digest
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect()
            })
            .collect();
        let ProgressStyle::Bars(stream) = style else {
            return Progress {
                style,
                moving,
                names,
                bars: Vec::new(),
                total: None,
            };
        };
        let multi = MultiProgress::with_draw_target(match stream {
            Stream::Stdout => ProgressDrawTarget::stdout(),
            Stream::Stderr => ProgressDrawTarget::stderr(),
        });
        let bar_style = indicatif::ProgressStyle::with_template(
            "{prefix}: {msg:18} [{bar:30}] {bytes}/{total_bytes}",
        )
        .expect("valid template")
        .progress_chars("=> ");
        let bars: Vec<ProgressBar> = layers
            .iter()
            .zip(&names)
            .map(|(layer, name)| {
                let bar = multi.add(ProgressBar::new(u64::try_from(layer.size).unwrap_or(0)));
                bar.set_style(bar_style.clone());
                bar.set_prefix(name.clone());
                bar.set_message("Waiting");
                bar
            })
            .collect();
        let total_size = layers
            .iter()
            .map(|l| u64::try_from(l.size).unwrap_or(0))
            .sum();
        let total = multi.add(ProgressBar::new(total_size));
        total.set_style(bar_style);
        total.set_prefix("total       ");
        Progress {
            style,
            moving,
            names,
            bars,
            total: Some(total),
        }
    }

    /// `bytes` more of layer `index` transferred.
    pub fn advance(&self, index: usize, bytes: u64) {
        if let Some(bar) = self.bars.get(index) {
            bar.set_message(self.moving);
            bar.inc(bytes);
        }
        if let Some(total) = &self.total {
            total.inc(bytes);
        }
    }

    /// Layer `index` reached the state `status`.
    pub fn done(&self, index: usize, status: &str) {
        match self.style {
            ProgressStyle::Bars(_) => {
                if let Some(bar) = self.bars.get(index) {
                    bar.set_message(status.to_owned());
                    bar.tick();
                }
            }
            ProgressStyle::Lines(_) => self
                .style
                .message(&format!("{}: {status}", self.names[index])),
            ProgressStyle::Quiet => {}
        }
    }

    pub fn finish(&self) {
        for bar in &self.bars {
            bar.finish();
        }
        if let Some(total) = &self.total {
            total.finish();
        }
    }
}
