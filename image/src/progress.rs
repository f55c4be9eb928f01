//! Transfer progress: one bar per layer and a total on a terminal, plain
//! lines otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};
use oci_client::manifest::OciDescriptor;

/// How to show progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgressStyle {
    /// Bars on stdout (a terminal).
    #[default]
    Bars,
    /// One line per layer event (stdout is not a terminal).
    Lines,
    /// Nothing.
    Quiet,
}

impl ProgressStyle {
    /// Bars when stdout is a terminal, lines otherwise.
    pub fn for_stdout() -> ProgressStyle {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() {
            ProgressStyle::Bars
        } else {
            ProgressStyle::Lines
        }
    }
}

/// Progress of one transfer of `layers`.
pub struct Progress {
    style: ProgressStyle,
    names: Vec<String>,
    bars: Vec<ProgressBar>,
    total: Option<ProgressBar>,
}

impl Progress {
    pub fn new(style: ProgressStyle, layers: &[OciDescriptor]) -> Progress {
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
        if style != ProgressStyle::Bars {
            return Progress {
                style,
                names,
                bars: Vec::new(),
                total: None,
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
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
            names,
            bars,
            total: Some(total),
        }
    }

    /// `bytes` more of layer `index` transferred.
    pub fn advance(&self, index: usize, bytes: u64) {
        if let Some(bar) = self.bars.get(index) {
            bar.set_message("Transferring");
            bar.inc(bytes);
        }
        if let Some(total) = &self.total {
            total.inc(bytes);
        }
    }

    /// Layer `index` reached the state `status`.
    pub fn done(&self, index: usize, status: &str) {
        match self.style {
            ProgressStyle::Bars => {
                if let Some(bar) = self.bars.get(index) {
                    bar.set_message(status.to_owned());
                    bar.tick();
                }
            }
            ProgressStyle::Lines => println!("{}: {status}", self.names[index]),
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
