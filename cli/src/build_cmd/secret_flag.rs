//! `--secret id=ID[,src=PATH|source=PATH][,env=VAR][,type=file|env]`, as
//! `docker buildx build` reads it: one CSV record of `KEY=VALUE` fields,
//! keys in any case. `type=env` takes `src` as the variable's name; `env=`
//! wins over `src=`; `id=ID` alone is the variable `ID` if it is set, else
//! the file `ID` (BuildKit's secret store's rule).

use anyhow::{bail, Context, Result};
use hull_builder::SecretSource;

/// The secret `spec` gives, `(id, source)`; `is_set` tells whether an
/// environment variable is set.
pub fn parse(spec: &str, is_set: impl Fn(&str) -> bool) -> Result<(String, SecretSource)> {
    let fields = csv_fields(spec).with_context(|| format!("--secret {spec}"))?;
    let (mut id, mut file, mut env, mut env_type) = (String::new(), String::new(), None, false);
    for field in fields {
        let Some((key, value)) = field.split_once('=') else {
            bail!("--secret {spec}: {field:?} is no KEY=VALUE field");
        };
        match key.to_lowercase().as_str() {
            "type" => {
                env_type = match value {
                    "file" => false,
                    "env" => true,
                    other => bail!("--secret {spec}: type={other}: use file or env"),
                }
            }
            "id" => id = value.to_owned(),
            "source" | "src" => file = value.to_owned(),
            "env" => env = Some(value.to_owned()).filter(|var| !var.is_empty()),
            other => bail!("--secret {spec}: unknown key {other}: use id, src, env or type"),
        }
    }
    if id.is_empty() {
        bail!("--secret {spec}: give the secret's id=");
    }
    let source = match (env, file.is_empty()) {
        (Some(var), _) => SecretSource::Env(var),
        (None, false) if env_type => SecretSource::Env(file),
        (None, false) => SecretSource::File(file.into()),
        (None, true) if is_set(&id) => SecretSource::Env(id.clone()),
        (None, true) => SecretSource::File(id.clone().into()),
    };
    Ok((id, source))
}

/// The fields of one CSV record, as Go's `encoding/csv` reads them: a
/// field in double quotes may hold commas, and `""` is a quote in it.
fn csv_fields(record: &str) -> Result<Vec<String>> {
    let mut fields = Vec::new();
    let mut chars = record.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => bail!("a quoted field has no closing quote"),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => bail!("{c:?} after a quoted field"),
            }
        } else {
            loop {
                match chars.next() {
                    Some(',') => break,
                    Some(c) => field.push(c),
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                }
            }
            fields.push(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `spec` read where only `$GITHUB_TOKEN` and `$npmrc` are set.
    fn parsed(spec: &str) -> Result<(String, SecretSource)> {
        parse(spec, |var| var == "GITHUB_TOKEN" || var == "npmrc")
    }

    fn file(id: &str, path: &str) -> (String, SecretSource) {
        (id.to_owned(), SecretSource::File(path.into()))
    }

    fn env(id: &str, var: &str) -> (String, SecretSource) {
        (id.to_owned(), SecretSource::Env(var.to_owned()))
    }

    #[test]
    fn secrets_are_read_as_buildx_reads_them() {
        for (spec, expected) in [
            (
                "id=npmrc,src=/home/u/.npmrc",
                file("npmrc", "/home/u/.npmrc"),
            ),
            ("ID=npmrc,Source=.npmrc", file("npmrc", ".npmrc")),
            ("id=tok,env=GITHUB_TOKEN", env("tok", "GITHUB_TOKEN")),
            (
                "id=tok,type=env,src=GITHUB_TOKEN",
                env("tok", "GITHUB_TOKEN"),
            ),
            ("type=file,id=k,src=key.pem", file("k", "key.pem")),
            // env= wins over src=, as BuildKit reads the variable then.
            ("id=tok,src=f,env=GITHUB_TOKEN", env("tok", "GITHUB_TOKEN")),
            // An id alone: its variable if set, else its file.
            ("id=npmrc", env("npmrc", "npmrc")),
            ("id=aws", file("aws", "aws")),
            (r#""id=a,b",src=x"#, file("a,b", "x")),
            (r#"id=q,"src=say ""hi""""#, file("q", r#"say "hi""#)),
        ] {
            assert_eq!(parsed(spec).unwrap(), expected, "{spec}");
        }
    }

    #[test]
    fn a_bad_secret_is_one_line_naming_it() {
        for (spec, error) in [
            ("src=f", "--secret src=f: give the secret's id="),
            (
                "id=a,src",
                r#"--secret id=a,src: "src" is no KEY=VALUE field"#,
            ),
            (
                "id=a,type=ssh",
                "--secret id=a,type=ssh: type=ssh: use file or env",
            ),
            (
                "id=a,path=f",
                "--secret id=a,path=f: unknown key path: use id, src, env or type",
            ),
            (
                r#"id=a,"src=f"x"#,
                r#"--secret id=a,"src=f"x: 'x' after a quoted field"#,
            ),
            (
                r#"id=a,"src=f"#,
                r#"--secret id=a,"src=f: a quoted field has no closing quote"#,
            ),
        ] {
            assert_eq!(format!("{:#}", parsed(spec).unwrap_err()), error, "{spec}");
        }
    }
}
