//! Running `nft`: a ruleset applied as one transaction, and a table
//! listed.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};

/// Applies `ruleset` (nft's script syntax) in one atomic transaction; `what`
/// says what it sets up, for the error.
pub fn apply(ruleset: &str, what: &str) -> Result<()> {
    let mut nft = command(&["-f", "-"])?;
    nft.stdin
        .take()
        .context("nft has no stdin")?
        .write_all(ruleset.as_bytes())
        .context("cannot send the ruleset to nft")?;
    let output = nft.wait_with_output().context("cannot run nft")?;
    if !output.status.success() {
        bail!("cannot set up {what}: nft: {}", first_error_line(&output));
    }
    Ok(())
}

/// `nft list table FAMILY NAME`'s output; `None` if there is no such
/// table.
pub fn list_table(family: &str, name: &str) -> Result<Option<String>> {
    let output = command(&["list", "table", family, name])?
        .wait_with_output()
        .context("cannot run nft")?;
    if output.status.success() {
        return Ok(Some(String::from_utf8_lossy(&output.stdout).into_owned()));
    }
    let error = first_error_line(&output);
    match error.contains("No such file or directory") {
        true => Ok(None),
        false => bail!("cannot list nftables table {family} {name}: nft: {error}"),
    }
}

fn command(args: &[&str]) -> Result<std::process::Child> {
    Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!(
                "nft is not installed: container networking needs nftables \
                 (scripts/setup installs it)"
            ),
            _ => anyhow::Error::new(e).context("cannot run nft"),
        })
}

fn first_error_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr.lines().next().unwrap_or("failed").trim().to_owned()
}
