//! `hull login`, `hull logout`.

use std::io::{self, IsTerminal, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Args;
use hull_image::{AuthFile, LoginRefused, RegistryOptions};

use super::{auth_file, registry_options};
use crate::prompt;

/// The registry of `hull login` and `hull logout` without one: Docker Hub.
const DEFAULT_REGISTRY: &str = "docker.io";

#[derive(Args)]
pub struct LoginArgs {
    /// Registry host[:port] (default: Docker Hub).
    registry: Option<String>,
    /// Username (asked for on a terminal when not given).
    #[arg(short, long)]
    username: Option<String>,
    /// Password (prefer --password-stdin; asked for on a terminal when not given).
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    password_stdin: bool,
    /// Talk plain HTTP to this registry (host[:port]).
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure: Vec<String>,
}

/// Logs in as `docker login` does: with the credentials given, else with
/// the ones stored for the registry if it still takes them, else with what
/// the terminal's user types.
pub fn login(args: LoginArgs, root: &Path) -> Result<u8> {
    if args.password.as_deref().is_some_and(|p| !p.is_empty()) {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let given = given_credentials(
        args.username,
        args.password,
        args.password_stdin,
        &mut io::stdin().lock(),
    )?;
    let registry = args.registry.as_deref().unwrap_or(DEFAULT_REGISTRY);
    let options = registry_options(root, &args.insecure)?;
    let mut file = AuthFile::load(&auth_file(root))?;
    let stored = match given {
        Given {
            user: None,
            password: None,
        } => file.get(registry)?,
        _ => None,
    };
    let (user, password) = match stored {
        Some(stored) if login_with_stored(registry, &stored, &options) => stored,
        stored => {
            let (user, password) = complete(given, stored.map(|(user, _)| user))?;
            hull_image::check_login(registry, &user, &password, &options)?;
            (user, password)
        }
    };
    file.set(registry, &user, &password);
    file.save()?;
    println!("Login Succeeded");
    Ok(0)
}

/// The credentials of the command line; a part missing is asked for.
#[derive(Debug, PartialEq, Eq)]
struct Given {
    user: Option<String>,
    password: Option<String>,
}

/// Checks `-u`, `-p` and `--password-stdin` as Docker does, and reads the
/// password from `stdin` when told to. Whitespace around either is
/// dropped, and an empty one is not given, as in Docker.
fn given_credentials(
    user: Option<String>,
    password: Option<String>,
    password_stdin: bool,
    stdin: &mut impl Read,
) -> Result<Given> {
    let given = |text: Option<String>| {
        text.map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    let user = given(user);
    let mut password = given(password);
    if password_stdin {
        if password.is_some() {
            bail!("--password and --password-stdin are mutually exclusive");
        }
        if user.is_none() {
            bail!("Must provide --username with --password-stdin");
        }
        let mut input = String::new();
        stdin
            .read_to_string(&mut input)
            .context("cannot read the password from stdin")?;
        password = given(Some(input));
    }
    Ok(Given { user, password })
}

/// Tries the credentials stored for `registry`, saying so as Docker does;
/// whether the registry took them. Why it did not goes to stderr.
fn login_with_stored(
    registry: &str,
    (user, password): &(String, String),
    options: &RegistryOptions,
) -> bool {
    println!("Authenticating with existing credentials... [Username: {user}]");
    println!("To login with a different account, run 'hull logout' followed by 'hull login'\n");
    match hull_image::check_login(registry, user, password, options) {
        Ok(()) => true,
        Err(err) if err.downcast_ref::<LoginRefused>().is_some() => {
            eprintln!("Stored credentials invalid or expired");
            false
        }
        Err(err) => {
            eprintln!("Login did not succeed, error: {err:#}");
            false
        }
    }
}

/// `given` with what it lacks typed on the terminal, as Docker asks for it:
/// `Username: ` (offering `default_user`, Enter to take it), then
/// `Password: ` without echo.
fn complete(given: Given, default_user: Option<String>) -> Result<(String, String)> {
    if let (Some(user), Some(password)) = (&given.user, &given.password) {
        return Ok((user.clone(), password.clone()));
    }
    if !io::stdin().is_terminal() {
        bail!(
            "Cannot perform an interactive login from a non TTY device \
             (use --username with --password-stdin)"
        );
    }
    let user = match given.user {
        Some(user) => user,
        None => ask_user(default_user)?,
    };
    let password = match given.password {
        Some(password) => password,
        None => prompt::ask_secret("Password: ")?,
    };
    if password.is_empty() {
        bail!("Password Required");
    }
    Ok((user, password))
}

/// Asks for the username, offering `default`.
fn ask_user(default: Option<String>) -> Result<String> {
    let question = match &default {
        Some(user) => format!("Username ({user}): "),
        None => "Username: ".to_owned(),
    };
    let typed = prompt::ask(&question)?;
    let user = if typed.is_empty() {
        default.unwrap_or_default()
    } else {
        typed
    };
    if user.is_empty() {
        bail!("Non-null Username Required");
    }
    Ok(user)
}

#[derive(Args)]
pub struct LogoutArgs {
    /// Registry host[:port] (default: Docker Hub).
    registry: Option<String>,
}

pub fn logout(args: LogoutArgs, root: &Path) -> Result<u8> {
    let registry = args.registry.as_deref().unwrap_or(DEFAULT_REGISTRY);
    let mut file = AuthFile::load(&auth_file(root))?;
    if file.remove(registry) {
        file.save()?;
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(
        user: Option<&str>,
        password: Option<&str>,
        password_stdin: bool,
        stdin: &str,
    ) -> Result<Given> {
        given_credentials(
            user.map(str::to_owned),
            password.map(str::to_owned),
            password_stdin,
            &mut stdin.as_bytes(),
        )
    }

    fn both(user: &str, password: &str) -> Given {
        Given {
            user: Some(user.to_owned()),
            password: Some(password.to_owned()),
        }
    }

    #[test]
    fn the_password_comes_from_stdin_only_with_a_username() {
        assert_eq!(
            given(Some("me"), None, true, "s3cret\r\n").unwrap(),
            both("me", "s3cret")
        );
        let error = given(None, None, true, "s3cret\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "Must provide --username with --password-stdin"
        );
        let error = given(Some("me"), Some("p"), true, "s3cret\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "--password and --password-stdin are mutually exclusive"
        );
    }

    #[test]
    fn what_is_empty_is_not_given_and_stdin_is_left_alone_otherwise() {
        assert_eq!(
            given(Some(" me "), Some(""), false, "unread").unwrap(),
            Given {
                user: Some("me".to_owned()),
                password: None,
            }
        );
        assert_eq!(
            given(Some("me"), None, true, " \n").unwrap(),
            Given {
                user: Some("me".to_owned()),
                password: None,
            }
        );
        assert_eq!(
            given(Some("me"), Some("p"), false, "").unwrap(),
            both("me", "p")
        );
    }

    #[test]
    fn complete_credentials_need_no_terminal() {
        assert_eq!(
            complete(both("me", "p"), None).unwrap(),
            ("me".to_owned(), "p".to_owned())
        );
    }
}
