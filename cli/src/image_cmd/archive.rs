//! `hull save`, `hull load`.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use hull_image::Store;

use super::familiar;

#[derive(Args)]
pub struct SaveArgs {
    /// Images to save: NAME:TAG (that tag), a repository NAME (all its
    /// tags) or an ID (untagged), as `docker save` takes them.
    #[arg(required = true)]
    images: Vec<String>,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

impl SaveArgs {
    /// The file it writes, if not stdout.
    pub fn output(&self) -> Option<&Path> {
        self.output.as_deref()
    }

    /// Refuses a terminal or a device for the archive, here, before the
    /// command runs (in the hull machine, stdout is no terminal).
    pub fn check_output(&self) -> Result<()> {
        crate::output_file::check(self.output())
    }
}

/// Writes a tar that is both a docker-archive and an OCI image layout.
pub fn save(args: SaveArgs, root: &Path) -> Result<u8> {
    let store = Store::open(root)?;
    match &args.output {
        Some(path) => {
            crate::output_file::write_whole(path, |out| {
                hull_image::save(&store, &args.images, out)
            })?;
        }
        None => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            hull_image::save(&store, &args.images, &mut out)?;
            out.flush()?;
        }
    }
    for name in &args.images {
        super::image_event(&store, "save", name, name);
    }
    Ok(0)
}

#[derive(Args)]
pub struct LoadArgs {
    /// Read from this file instead of stdin.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Accepted: Docker's hides its progress, which hull's load has none
    /// of (the `Loaded image:` lines show either way, as Docker's do).
    #[arg(short = 'q', long = "quiet")]
    _quiet: bool,
}

/// Loads a docker-archive or OCI image layout tar.
pub fn load(args: LoadArgs, root: &Path) -> Result<u8> {
    let input: Box<dyn Read> = match &args.input {
        Some(path) => Box::new(BufReader::new(super::open_archive(path)?)),
        None => Box::new(super::archive_stdin("load", "hull load < image.tar")?),
    };
    let store = Store::open(root)?;
    for name in hull_image::load(&store, input)? {
        let shown = super::shown_name(&name);
        super::image_event(&store, "load", &shown, &shown);
        match name.strip_prefix("sha256:") {
            Some(_) => println!("Loaded image ID: {name}"),
            None => {
                let (repository, tag) = familiar(&name);
                println!("Loaded image: {repository}:{tag}");
            }
        }
    }
    Ok(0)
}
