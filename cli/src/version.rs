//! `hull version` and `hull info`.

use std::path::Path;

use anyhow::Result;
use clap::Args;
use hull_runtime::assets;
use hull_runtime::host::Kvm;
use serde_json::{json, Value};

use crate::machine;
use hull_format::render_one;

#[derive(Args)]
pub struct VersionArgs {
    /// A Go template over the version, e.g. `{{.Client.Version}}`, or
    /// `json`.
    #[arg(short, long)]
    format: Option<String>,
}

pub fn version(args: VersionArgs, root: &Path) -> Result<u8> {
    let facts = facts(root);
    match args.format.as_deref() {
        Some(format) => print_formatted(format, &facts)?,
        None => print(&facts),
    }
    Ok(0)
}

/// `hull info`: what `hull version` says, plus the root and the machine.
pub fn info(args: VersionArgs, root: &Path) -> Result<u8> {
    let mut facts = facts(root);
    facts["Root"] = json!(root);
    if let Some(format) = args.format.as_deref() {
        print_formatted(format, &facts)?;
        return Ok(0);
    }
    print(&facts);
    println!("root:    {}", root.display());
    machine::print_status(root)?;
    Ok(0)
}

/// What hull is and runs VMs with here.
fn facts(root: &Path) -> Value {
    let kernel = match assets::guest_kernel(None) {
        Ok(kernel) => {
            let release = kernel
                .parent()
                .and_then(|dir| std::fs::read_to_string(dir.join("release")).ok())
                .map(|r| r.trim().to_owned())
                .unwrap_or_else(|| "release unknown".into());
            json!({ "Path": kernel, "Release": release })
        }
        Err(err) => json!({ "Error": format!("{err:#}") }),
    };
    json!({
        "Client": { "Version": env!("CARGO_PKG_VERSION") },
        "Kernel": kernel,
        "KVM": Kvm::detect().describe(),
        "VMs": machine::describe_path(root),
    })
}

fn print(facts: &Value) {
    println!(
        "hull {}",
        facts["Client"]["Version"].as_str().unwrap_or_default()
    );
    let kernel = &facts["Kernel"];
    match (kernel["Path"].as_str(), kernel["Error"].as_str()) {
        (Some(path), _) => println!(
            "kernel:  {path} ({})",
            kernel["Release"].as_str().unwrap_or_default()
        ),
        (None, error) => println!("kernel:  missing ({})", error.unwrap_or_default()),
    }
    println!("kvm:     {}", facts["KVM"].as_str().unwrap_or_default());
    println!("vms:     {}", facts["VMs"].as_str().unwrap_or_default());
}

fn print_formatted(format: &str, facts: &Value) -> Result<()> {
    match format.trim() {
        "json" => println!("{facts}"),
        template => println!("{}", render_one(template, facts, &[])?),
    }
    Ok(())
}
