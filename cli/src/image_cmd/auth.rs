//! `hull login`, `hull logout`.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Args;
use hull_image::AuthFile;

use super::{auth_file, registry_options};

#[derive(Args)]
pub struct LoginArgs {
    /// Registry host[:port].
    registry: String,
    #[arg(short, long)]
    username: String,
    /// Password (prefer --password-stdin).
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    password_stdin: bool,
    /// Talk plain HTTP to this registry (host[:port]).
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure: Vec<String>,
}

pub fn login(args: LoginArgs, root: &Path) -> Result<u8> {
    let password = match (args.password, args.password_stdin) {
        (Some(password), _) => password,
        (None, true) => {
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .context("cannot read the password from stdin")?;
            input.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => bail!("a password is required: use --password-stdin or -p"),
    };
    let options = registry_options(root, &args.insecure)?;
    hull_image::check_login(&args.registry, &args.username, &password, &options)?;
    let mut file = AuthFile::load(&auth_file(root))?;
    file.set(&args.registry, &args.username, &password);
    file.save()?;
    println!("Login Succeeded");
    Ok(0)
}

#[derive(Args)]
pub struct LogoutArgs {
    /// Registry host[:port].
    registry: String,
}

pub fn logout(args: LogoutArgs, root: &Path) -> Result<u8> {
    let mut file = AuthFile::load(&auth_file(root))?;
    if file.remove(&args.registry) {
        file.save()?;
        println!("Removing login credentials for {}", args.registry);
    } else {
        println!("Not logged in to {}", args.registry);
    }
    Ok(0)
}
