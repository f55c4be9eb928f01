//! `hull manifest inspect IMAGE`: an image's manifest or index in its
//! registry, without pulling it (scripts use it to ask whether an image
//! exists there, and for which platforms).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hull_image::ImageRef;

use super::registry_options;

#[derive(Subcommand)]
pub enum ManifestCommand {
    /// Show an image's manifest or image index in its registry.
    Inspect(InspectArgs),
}

#[derive(Args)]
pub struct InspectArgs {
    /// Allow a registry that speaks plain HTTP.
    #[arg(long)]
    insecure: bool,
    /// The image, e.g. alpine:3.20 or registry:5000/app@sha256:...
    image: String,
}

pub fn manifest(command: ManifestCommand, root: &Path) -> Result<u8> {
    let ManifestCommand::Inspect(args) = command;
    let reference = ImageRef::parse(&args.image)?;
    let insecure = match args.insecure {
        true => vec![reference.registry().to_owned()],
        false => Vec::new(),
    };
    let options = registry_options(root, &insecure)?;
    let document = hull_image::fetch_manifest_document(root, &reference, &options)?;
    // A registry is not trusted to send JSON: nothing else reaches the
    // terminal.
    serde_json::from_slice::<serde_json::Value>(&document)
        .with_context(|| format!("the registry's manifest for {reference} is not JSON"))?;
    print_document(&document, &mut std::io::stdout()).context("cannot write the manifest")?;
    Ok(0)
}

/// Writes the registry's bytes as they are (their digest is the
/// manifest's), ending the last line.
fn print_document(document: &[u8], out: &mut impl Write) -> std::io::Result<()> {
    out.write_all(document)?;
    if !document.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_printed_as_served_with_their_last_line_ended() {
        let mut out = Vec::new();
        print_document(br#"{"schemaVersion":2}"#, &mut out).unwrap();
        assert_eq!(out, b"{\"schemaVersion\":2}\n");
        let mut out = Vec::new();
        print_document(b"{\n   \"schemaVersion\": 2\n}\n", &mut out).unwrap();
        assert_eq!(out, b"{\n   \"schemaVersion\": 2\n}\n");
    }
}
