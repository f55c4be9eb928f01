//! `RUN`: the command line (exec form, shell form through `SHELL`, a
//! here-document), its environment (the image's, the stage's `ARG`s, the
//! proxy variables) and its `--mount`s (persistent cache directories under
//! the hull root, read-only binds of the build context less what
//! `.dockerignore` leaves out, tmpfs, the build's secrets as read-only
//! files or variables), as one build step for a
//! [`StepRunner`](crate::StepRunner).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hull_runtime::{Mount, MountSource, StepOptions};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

use crate::cache_mount::{self, CacheOwner, ExclusiveCache, Sharing};
use crate::context_view;
use crate::copy::{self, CopyOptions, Source};
use crate::dockerfile::{Command, HereDoc};
use crate::secret_mount::{self, FileOwner, SecretDir, SecretFile, SecretMount};
use crate::secrets::Secrets;
use crate::state::ImageState;
use crate::tree::{self, ContextTree, LayerTree};
use crate::words::{self, Lookup};

/// What a `RUN` runs, and what it is cached under.
pub struct RunPlan {
    pub step: StepOptions,
    /// Everything the step's result depends on besides its parent.
    pub key: String,
    /// What the history says it ran.
    pub created_by: String,
    /// Cache mounts it holds for itself while it runs, by mount index.
    exclusive: Vec<(usize, ExclusiveCache)>,
    /// Bind mounts of directories shared as views made when the step runs.
    views: Vec<ViewBind>,
    /// A here-document run as a program: its mount, and its text.
    script: Option<(usize, String)>,
    /// Secrets it mounts as files, written when the step runs.
    secret_files: Vec<SecretFile>,
    /// Secrets it is given as variables: `NAME=VALUE`, added to its
    /// environment when it runs (and so in no key).
    secret_env: Vec<(String, String)>,
}

/// What a step holds while it runs: its exclusive cache mounts, the views
/// its bind mounts share and the files of its script and secrets (removed
/// when dropped).
pub struct Held {
    _caches: Vec<cache_mount::Held>,
    _views: Vec<TempDir>,
    _script: Option<TempDir>,
    _secrets: Option<SecretDir>,
}

/// Step mount `mount` shares directory `dir` (a real path in the context,
/// or in `from`) as a view of it made when the step runs: the context less
/// what `.dockerignore` leaves out, or another stage's or image's layers.
struct ViewBind {
    mount: usize,
    dir: PathBuf,
    from: Option<LayerTree>,
}

/// A stage or image a `RUN --mount=from=` names: its files, and its cache
/// key, which names them.
pub struct MountFrom {
    pub tree: LayerTree,
    pub key: String,
}

impl RunPlan {
    /// The step to run, holding its exclusive cache mounts (waiting for
    /// them, or with fresh directories under `tmp` in their place) and with
    /// the views its bind mounts share and its secrets' files made under
    /// `tmp`, until the returned [`Held`] drops.
    pub fn prepare(&self, context: &ContextTree, tmp: &Path) -> Result<(StepOptions, Held)> {
        let mut step = self.step.clone();
        let mut caches = Vec::new();
        for (mount, cache) in &self.exclusive {
            let held = cache.hold(tmp)?;
            step.mounts[*mount].source = MountSource::Bind {
                path: held.path(&cache.dir).to_owned(),
                create: false,
            };
            caches.push(held);
        }
        let mut views = Vec::new();
        for bind in &self.views {
            // A stage's or image's files keep their owners, as its
            // snapshot mounted has them; the context's are as sent.
            let (tree, keep_owner): (&dyn tree::Tree, bool) = match &bind.from {
                Some(from) => (from, true),
                None => (context, false),
            };
            let view = context_view::make(tree, &bind.dir, tmp, keep_owner)?;
            step.mounts[bind.mount].source = MountSource::Bind {
                path: view.path().to_owned(),
                create: false,
            };
            views.push(view);
        }
        let script = match &self.script {
            Some((mount, text)) => {
                let dir = write_script(text, tmp)?;
                step.mounts[*mount].source = MountSource::Bind {
                    path: dir.path().join(SCRIPT_NAME),
                    create: false,
                };
                Some(dir)
            }
            None => None,
        };
        let secrets = match self.secret_files.is_empty() {
            true => None,
            false => {
                let (dir, paths) = secret_mount::write_files(&self.secret_files, tmp)?;
                for (file, path) in self.secret_files.iter().zip(paths) {
                    step.mounts[file.mount].source = MountSource::Bind {
                        path,
                        create: false,
                    };
                }
                Some(dir)
            }
        };
        for (name, value) in &self.secret_env {
            let prefix = format!("{name}=");
            step.env.retain(|entry| !entry.starts_with(&prefix));
            step.env.push(format!("{prefix}{value}"));
        }
        Ok((
            step,
            Held {
                _caches: caches,
                _views: views,
                _script: script,
                _secrets: secrets,
            },
        ))
    }
}

/// One `--mount` as planned.
struct PlannedMount {
    mount: Mount,
    /// Its part of the step's key.
    key: String,
    /// The cache directory, if one step at a time may use it.
    exclusive: Option<ExclusiveCache>,
    /// A directory to share as a view, and the stage or image it is in
    /// (else the context).
    view: Option<(PathBuf, Option<LayerTree>)>,
}

/// What a `RUN` gets from the build.
pub struct RunContext<'a> {
    pub state: &'a ImageState,
    /// The stage's `ARG`s with values, visible to the command.
    pub args: &'a BTreeMap<String, String>,
    /// Proxy variables from `--build-arg`: passed on, never cached.
    pub proxy: &'a BTreeMap<String, String>,
    /// `--network`: the default for every `RUN`.
    pub network: bool,
    pub context: &'a ContextTree,
    /// Where cache mounts live.
    pub cache_dir: &'a Path,
    pub escape: char,
    pub lookup: Lookup<'a>,
    /// The stages and images `--mount=from=` names, by name as expanded.
    pub sources: &'a BTreeMap<String, MountFrom>,
    /// The secrets the build was given.
    pub secrets: &'a Secrets,
}

/// Plans a `RUN` with `flags` and `command` (and `heredoc`).
pub fn plan(
    run: &RunContext,
    flags: &[(String, Option<String>)],
    command: &Command,
    heredoc: Option<&HereDoc>,
) -> Result<RunPlan> {
    let state = run.state;
    let mut mounts = Vec::new();
    let mut mount_keys = Vec::new();
    let mut script = None;
    let argv = match (command, heredoc) {
        (Command::Exec(args), _) => args.clone(),
        (Command::Shell(line), None) => shell_line(state, line),
        // As BuildKit: a lone document with a #! line is a program of its
        // own, run from /dev/pipes/ under its delimiter's name.
        (Command::Shell(line), Some(doc))
            if line.trim().is_empty() && doc.text.starts_with("#!") =>
        {
            let target = format!("/dev/pipes/{}", doc.name);
            script = Some((mounts.len(), doc.text.clone()));
            mount_keys.push(format!("script:{target}:{}", doc.text));
            mounts.push(Mount {
                target: target.clone(),
                source: MountSource::Bind {
                    path: PathBuf::new(),
                    create: false,
                },
                read_only: true,
            });
            vec![target]
        }
        (Command::Shell(line), Some(doc)) => shell_line(state, &with_heredoc(line, doc)),
    };
    let mut network = run.network;
    let mut exclusive = Vec::new();
    let mut views = Vec::new();
    let mut secret_files = Vec::new();
    let mut secret_env = Vec::new();
    for (name, value) in flags {
        let value = value.as_deref().unwrap_or_default();
        match name.as_str() {
            "mount" => {
                let options = mount_options(run, value)?;
                if options.get("type").is_some_and(|kind| kind == "secret") {
                    let secret = secret(run, value, &options)?;
                    mount_keys.push(secret.key);
                    if let Some((target, bytes, owner)) = secret.file {
                        secret_files.push(SecretFile {
                            mount: mounts.len(),
                            value: bytes,
                            owner,
                        });
                        mounts.push(Mount {
                            target,
                            source: MountSource::Bind {
                                path: PathBuf::new(),
                                create: false,
                            },
                            read_only: true,
                        });
                    }
                    secret_env.extend(secret.env);
                    continue;
                }
                let Some(planned) = mount(run, value, &options)? else {
                    continue;
                };
                if let Some((dir, from)) = planned.view {
                    views.push(ViewBind {
                        mount: mounts.len(),
                        dir,
                        from,
                    });
                }
                if let Some(cache) = planned.exclusive {
                    exclusive.push((mounts.len(), cache));
                }
                mounts.push(planned.mount);
                mount_keys.push(planned.key);
            }
            "network" => {
                network = match value {
                    "default" => run.network,
                    "none" => false,
                    other => bail!(
                    "RUN --network={other}: a step runs in a VM of its own: use default or none"
                ),
                }
            }
            "security" if value == "sandbox" => {}
            "security" => bail!(
                "RUN --security={value}: hull runs no step with extra privileges (BuildKit's security.insecure)"
            ),
            other => bail!("RUN --{other} is not supported"),
        }
    }
    // The stage's state has a PATH: the base's, or BuildKit's default.
    let mut env = state.env();
    // ENV wins over ARG of the same name, as in Docker.
    let args: Vec<(String, String)> = run
        .args
        .iter()
        .filter(|(key, _)| !env.iter().any(|(k, _)| k == *key))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&(&argv, &args, &mount_keys, network))?);
    let key = hex::encode(hasher.finalize());
    let shell_words = argv.join(" ");
    let created_by = format!("RUN {shell_words} # buildkit");
    env.extend(args);
    // A proxy variable the Dockerfile declares is an ARG like any other.
    let proxy: Vec<(String, String)> = run
        .proxy
        .iter()
        .filter(|(key, _)| !env.iter().any(|(k, _)| k == *key))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.extend(proxy);
    Ok(RunPlan {
        step: StepOptions {
            layers: state.layers.iter().map(|l| l.diff_id.to_string()).collect(),
            argv,
            env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
            workdir: state.workdir(),
            user: state.user(),
            network,
            mounts,
            cpus: 1,
            memory_mib: 1024,
        },
        key,
        created_by,
        exclusive,
        views,
        script,
        secret_files,
        secret_env,
    })
}

/// The name of a here-document's program in the directory it is written to.
const SCRIPT_NAME: &str = "script";

/// A new directory under `tmp` holding `text` as an executable file
/// ([`SCRIPT_NAME`]), gone when the returned guard drops.
fn write_script(text: &str, tmp: &Path) -> Result<TempDir> {
    std::fs::create_dir_all(tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("script-")
        .tempdir_in(tmp)
        .with_context(|| format!("cannot create a directory in {}", tmp.display()))?;
    let path = dir.path().join(SCRIPT_NAME);
    std::fs::write(&path, text)
        .and_then(|()| {
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        })
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(dir)
}

/// The shell and `line`.
fn shell_line(state: &ImageState, line: &str) -> Vec<String> {
    let mut argv = state.shell();
    argv.push(line.to_owned());
    argv
}

/// The shell text of a `RUN` with a here-document. The parser takes the
/// document's `<<EOF` marker off the line it starts: with nothing else on
/// it (`RUN <<EOF`) the document is the script; otherwise the command gets
/// it on its stdin, as a shell script would give it (`RUN <<EOF python3`).
fn with_heredoc(line: &str, doc: &HereDoc) -> String {
    const DELIMITER: &str = "HULL_HEREDOC_END";
    if line.trim().is_empty() {
        return doc.text.clone();
    }
    // A quoted delimiter keeps the shell from expanding the document.
    let marker = match doc.expand {
        true => DELIMITER.to_owned(),
        false => format!("'{DELIMITER}'"),
    };
    format!("{} <<{marker}\n{}{DELIMITER}", line.trim(), doc.text)
}

/// A secret mount as planned: its part of the step's key and, if the build
/// was given the secret, the file it mounts (target, value, owner and
/// mode) and the variable it sets.
struct PlannedSecret {
    key: String,
    file: Option<(String, Vec<u8>, FileOwner)>,
    env: Option<(String, String)>,
}

/// `--mount={spec}` of a secret, with `options`. One the build was not
/// given is left out, as BuildKit leaves it out, unless it is `required`.
fn secret(
    run: &RunContext,
    spec: &str,
    options: &BTreeMap<String, String>,
) -> Result<PlannedSecret> {
    let workdir = run.state.workdir();
    let secret = SecretMount::parse(options, |target| clean_target(&absolute(&workdir, target)))
        .with_context(|| format!("RUN --mount={spec}"))?;
    let key = secret.key();
    let id = &secret.id;
    let Some(value) = run.secrets.get(id) else {
        if secret.required {
            bail!("RUN --mount={spec}: secret {id} was not given: pass it with --secret id={id}");
        }
        return Ok(PlannedSecret {
            key,
            file: None,
            env: None,
        });
    };
    let env = match secret.env {
        Some(var) => {
            let text = String::from_utf8(value.to_vec()).with_context(|| {
                format!("RUN --mount={spec}: secret {id} is not UTF-8 text, which the variable {var} must be")
            })?;
            Some((var, text))
        }
        None => None,
    };
    Ok(PlannedSecret {
        key,
        file: secret
            .target
            .map(|target| (target, value.to_vec(), secret.owner)),
        env,
    })
}

/// The options of `--mount={spec}`, their values expanded, checked against
/// the ones BuildKit takes.
fn mount_options(run: &RunContext, spec: &str) -> Result<BTreeMap<String, String>> {
    let mut options = BTreeMap::new();
    for field in spec.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (
                key.trim(),
                words::expand(value.trim(), run.escape, run.lookup)?,
            ),
            None => (field.trim(), "true".to_owned()),
        };
        options.insert(key.to_owned(), value);
    }
    if let Some(unknown) = options
        .keys()
        .find(|key| !MOUNT_OPTIONS.contains(&key.as_str()))
    {
        bail!("RUN --mount={spec}: unknown option {unknown}");
    }
    Ok(options)
}

/// One `--mount` other than a secret, with `options`; `None` for an SSH
/// agent, which hull is never given and BuildKit leaves out unless it is
/// `required`.
fn mount(
    run: &RunContext,
    spec: &str,
    options: &BTreeMap<String, String>,
) -> Result<Option<PlannedMount>> {
    let kind = options
        .get("type")
        .map_or("bind", String::as_str)
        .to_owned();
    if kind == "ssh" {
        let required = match options.get("required") {
            None => false,
            Some(value) => secret_mount::go_bool(value).with_context(|| {
                format!("RUN --mount={spec}: required={value}: use true or false")
            })?,
        };
        if required {
            let id = options.get("id").map_or("default", String::as_str);
            bail!("RUN --mount={spec}: ssh {id}: not found (hull build is given no SSH agents)");
        }
        return Ok(None);
    }
    let target = options
        .get("target")
        .or_else(|| options.get("dst"))
        .or_else(|| options.get("destination"))
        .with_context(|| format!("RUN --mount={spec}: give its target="))?;
    let target = clean_target(&absolute(&run.state.workdir(), target));
    let read_only = ["ro", "readonly"]
        .iter()
        .any(|k| options.get(*k).is_some_and(|v| v != "false"));
    let from = match options.get("from") {
        Some(name) if kind == "bind" => Some(
            run.sources
                .get(name)
                .with_context(|| format!("RUN --mount={spec}: from={name} was not found"))?,
        ),
        Some(name) => bail!("RUN --mount={spec}: from={name} is supported on bind mounts only"),
        None => None,
    };
    match kind.as_str() {
        "cache" => {
            let id = options.get("id").cloned().unwrap_or_else(|| target.clone());
            let number = |key: &str, radix: u32, default: u32| {
                options.get(key).map_or(Ok(default), |value| {
                    u32::from_str_radix(value, radix)
                        .with_context(|| format!("RUN --mount={spec}: {key}={value} is no number"))
                })
            };
            let owner = CacheOwner {
                uid: number("uid", 10, 0)?,
                gid: number("gid", 10, 0)?,
                mode: number("mode", 8, 0o755)?,
            };
            let dir = cache_mount::directory(run.cache_dir, &id, owner)?;
            let sharing = options
                .get("sharing")
                .map_or(Ok(Sharing::Shared), |value| Sharing::parse(value))
                .with_context(|| format!("RUN --mount={spec}"))?;
            let exclusive = (sharing != Sharing::Shared).then(|| ExclusiveCache {
                dir: dir.clone(),
                sharing,
                owner,
            });
            let mount = Mount {
                target: target.clone(),
                source: MountSource::Bind {
                    path: dir,
                    create: false,
                },
                read_only,
            };
            Ok(Some(PlannedMount {
                mount,
                key: format!("cache:{id}:{target}:{read_only}"),
                exclusive,
                view: None,
            }))
        }
        "bind" => {
            if options.keys().any(|k| k == "rw" || k == "readwrite") {
                bail!("RUN --mount={spec}: hull shares bind mounts read-only; COPY what the step must change");
            }
            let source = options
                .get("source")
                .or_else(|| options.get("src"))
                .map_or("", String::as_str);
            let tree: &dyn tree::Tree = match from {
                Some(from) => &from.tree,
                None => run.context,
            };
            let cleaned = tree::clean(tree, source)?;
            let (real, found) = tree::resolve(tree, &cleaned, true)?.with_context(|| {
                format!("RUN --mount={spec}: {source} is not in {}", tree.describe())
            })?;
            let is_dir = found.metadata.is_dir();
            let (key, view) = match from {
                // A stage's or image's key names its files.
                Some(from) => (
                    format!("bind:{target}:{}:{}", from.key, real.display()),
                    is_dir.then(|| (real.clone(), Some(from.tree.clone()))),
                ),
                None => {
                    // Its contents are part of the step's key, as a copy's are.
                    let empty = LayerTree::new(&[], "the image");
                    let content = copy::plan(
                        run.context,
                        &[Source::Path(real.display().to_string())],
                        "/mnt/",
                        &empty,
                        CopyOptions::default(),
                    )?
                    .key()?;
                    // A directory .dockerignore trims is shared as a view
                    // of what it lets in, made when the step runs.
                    let trimmed = is_dir && run.context.ignores_anything();
                    (
                        format!("bind:{target}:{content}"),
                        trimmed.then(|| (real.clone(), None)),
                    )
                }
            };
            let path = match from {
                Some(_) => found.host.clone(),
                None => run.context.root().join(&real),
            };
            let mount = Mount {
                target: target.clone(),
                source: MountSource::Bind {
                    path,
                    create: false,
                },
                read_only: true,
            };
            Ok(Some(PlannedMount {
                mount,
                key,
                exclusive: None,
                view,
            }))
        }
        "tmpfs" => {
            let size_bytes = options
                .get("size")
                .map(|size| size.parse::<u64>())
                .transpose()
                .with_context(|| format!("RUN --mount={spec}: size= takes bytes"))?;
            let mount = Mount {
                target: target.clone(),
                source: MountSource::Tmpfs {
                    size_bytes,
                    mode: None,
                },
                read_only: false,
            };
            Ok(Some(PlannedMount {
                mount,
                key: format!("tmpfs:{target}"),
                exclusive: None,
                view: None,
            }))
        }
        other => bail!(
            "RUN --mount=type={other} is not supported: use cache, bind, tmpfs, secret or ssh"
        ),
    }
}

/// The stages and images the `--mount`s of a `RUN` with `flags` name with
/// `from=`, expanded with `lookup`.
pub fn mount_sources(
    flags: &[(String, Option<String>)],
    escape: char,
    lookup: Lookup,
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for (name, value) in flags {
        if name != "mount" {
            continue;
        }
        for field in value.as_deref().unwrap_or_default().split(',') {
            if let Some(("from", from)) = field.split_once('=').map(|(k, v)| (k.trim(), v)) {
                names.push(words::expand(from.trim(), escape, lookup)?);
            }
        }
    }
    Ok(names)
}

/// `path` made absolute against `workdir`.
pub fn absolute(workdir: &str, path: &str) -> String {
    match path.starts_with('/') {
        true => path.to_owned(),
        false => format!("{}/{path}", workdir.trim_end_matches('/')),
    }
}

/// A mount's absolute target with `.` and `..` resolved, as BuildKit
/// joins it to the working directory (`target=.` is the directory).
fn clean_target(target: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The options `RUN --mount` takes (BuildKit's).
const MOUNT_OPTIONS: [&str; 19] = [
    "type",
    "target",
    "dst",
    "destination",
    "source",
    "src",
    "from",
    "ro",
    "readonly",
    "rw",
    "readwrite",
    "id",
    "sharing",
    "uid",
    "gid",
    "mode",
    "size",
    "required",
    "env",
];

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::secrets::SecretSource;

    #[test]
    fn heredocs_are_the_script_or_the_commands_input() {
        let doc = HereDoc {
            name: "EOF".into(),
            text: "print($X)\n".into(),
            expand: false,
        };
        assert_eq!(with_heredoc("", &doc), "print($X)\n");
        assert_eq!(
            with_heredoc(" python3", &doc),
            "python3 <<'HULL_HEREDOC_END'\nprint($X)\nHULL_HEREDOC_END"
        );
        // What the parser makes of the Dockerfile line.
        let text = "FROM a\nRUN <<EOF\necho hi\nEOF\n";
        let dockerfile = crate::dockerfile::parse(text).unwrap();
        let crate::dockerfile::Kind::Run {
            command: Command::Shell(line),
            heredoc: Some(doc),
            ..
        } = &dockerfile.stages[0].instructions[0].kind
        else {
            panic!("{:?}", dockerfile.stages[0].instructions[0]);
        };
        assert_eq!(with_heredoc(line, doc), "echo hi\n");
    }

    /// What these tests plan a `RUN` with: the network on, Docker's escape
    /// character, no users in the image.
    fn run_context<'a>(
        state: &'a ImageState,
        args: &'a BTreeMap<String, String>,
        proxy: &'a BTreeMap<String, String>,
        context: &'a ContextTree,
        cache_dir: &'a Path,
        secrets: &'a Secrets,
    ) -> RunContext<'a> {
        static NO_SOURCES: BTreeMap<String, MountFrom> = BTreeMap::new();
        RunContext {
            state,
            args,
            proxy,
            network: true,
            context,
            cache_dir,
            escape: '\\',
            lookup: &|_| None,
            sources: &NO_SOURCES,
            secrets,
        }
    }

    /// A build context (`ctx` in a temporary directory, holding `files`),
    /// an empty image state, no build args, proxies or secrets (unless a
    /// test gives some), and a cache directory beside the context.
    struct Fixture {
        temp: tempfile::TempDir,
        context: ContextTree,
        state: ImageState,
        none: BTreeMap<String, String>,
        cache_dir: PathBuf,
        secrets: Secrets,
    }

    impl Fixture {
        fn new(files: &[(&str, &str)]) -> Fixture {
            let temp = tempfile::tempdir().unwrap();
            let ctx = temp.path().join("ctx");
            for (name, text) in files {
                let path = ctx.join(name);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            }
            fs::create_dir_all(&ctx).unwrap();
            Fixture {
                context: ContextTree::open(&ctx).unwrap(),
                cache_dir: temp.path().join("cache"),
                temp,
                state: ImageState::default(),
                none: BTreeMap::new(),
                secrets: Secrets::default(),
            }
        }

        fn run(&self) -> RunContext<'_> {
            run_context(
                &self.state,
                &self.none,
                &self.none,
                &self.context,
                &self.cache_dir,
                &self.secrets,
            )
        }

        /// A directory beside the context, for what a step holds.
        fn tmp(&self) -> PathBuf {
            self.temp.path().join("tmp")
        }
    }

    #[test]
    fn the_key_names_what_the_command_sees_but_not_proxies() {
        let temp = tempfile::tempdir().unwrap();
        let context = ContextTree::open(temp.path()).unwrap();
        let mut state = ImageState::default();
        state.set_env("PATH", "/bin");
        state.set("WorkingDir", serde_json::json!("/app"));
        let no_secrets = Secrets::default();
        let key =
            |args: &[(&str, &str)], proxy: &[(&str, &str)], flags: &[(String, Option<String>)]| {
                let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
                    pairs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                };
                let (args, proxy) = (map(args), map(proxy));
                let cache_dir = temp.path().join("cache");
                let run = run_context(&state, &args, &proxy, &context, &cache_dir, &no_secrets);
                plan(&run, flags, &Command::Shell("make".into()), None).unwrap()
            };
        let plain = key(&[], &[], &[]);
        assert_eq!(plain.step.argv, ["/bin/sh", "-c", "make"]);
        assert_eq!(plain.step.workdir, "/app");
        let with_arg = key(&[("V", "1")], &[], &[]);
        assert_ne!(with_arg.key, plain.key);
        assert!(with_arg.step.env.contains(&"V=1".to_owned()));
        // A proxy reaches the command but not the key.
        let proxied = key(&[], &[("http_proxy", "http://p:3128")], &[]);
        assert_eq!(proxied.key, plain.key);
        assert!(proxied
            .step
            .env
            .contains(&"http_proxy=http://p:3128".to_owned()));
        // Declared with ARG, it is in the environment once.
        let declared = key(
            &[("http_proxy", "http://p:3128")],
            &[("http_proxy", "http://p:3128")],
            &[],
        );
        let count = |step: &StepOptions| {
            step.env
                .iter()
                .filter(|e| e.starts_with("http_proxy="))
                .count()
        };
        assert_eq!(count(&declared.step), 1);
        // A cache mount is part of the key, in a directory of its own.
        let cached = key(
            &[],
            &[],
            &[("mount".into(), Some("type=cache,target=.cache".into()))],
        );
        assert_ne!(cached.key, plain.key);
        assert_eq!(cached.step.mounts[0].target, "/app/.cache");
        let none = key(&[], &[], &[("network".into(), Some("none".into()))]);
        assert!(!none.step.network);
        assert_ne!(none.key, plain.key);
    }

    /// `--mount={spec}` planned, as a `RUN` plans it.
    fn mount_spec(run: &RunContext, spec: &str) -> Result<Option<PlannedMount>> {
        mount(run, spec, &mount_options(run, spec)?)
    }

    #[test]
    fn a_cache_mount_is_made_with_its_owner_and_mode_and_unknown_options_are_refused() {
        let fixture = Fixture::new(&[]);
        let run = fixture.run();
        let made = mount_spec(&run, "type=cache,target=/pip,uid=1000,gid=100,mode=0750")
            .unwrap()
            .unwrap()
            .mount;
        let MountSource::Bind { path, .. } = &made.source else {
            panic!("{made:?}");
        };
        let dir = fs::metadata(path).unwrap();
        assert_eq!(
            (dir.uid(), dir.gid(), dir.mode() & 0o7777),
            (1000, 100, 0o750)
        );
        // Made once: a later mount with other options keeps it as it is.
        mount_spec(&run, "type=cache,target=/pip,uid=0").unwrap();
        assert_eq!(fs::metadata(path).unwrap().uid(), 1000);
        let Err(err) = mount_spec(&run, "type=cache,target=/pip,colour=red") else {
            panic!("an unknown option was taken");
        };
        assert_eq!(
            err.to_string(),
            "RUN --mount=type=cache,target=/pip,colour=red: unknown option colour"
        );
        assert!(mount_spec(&run, "type=cache,target=/pip,uid=x").is_err());
    }

    #[test]
    fn a_bind_of_a_directory_dockerignore_trims_shares_a_view_made_when_the_step_runs() {
        let fixture = Fixture::new(&[
            ("src/app.py", "app"),
            ("src/debug.log", "log"),
            ("notes.txt", "n"),
            (".dockerignore", "src/*.log\n"),
        ]);
        let run = fixture.run();
        let flags = [
            (
                "mount".to_owned(),
                Some("type=bind,source=src,target=/src".to_owned()),
            ),
            (
                "mount".to_owned(),
                Some("type=bind,source=notes.txt,target=/notes".to_owned()),
            ),
        ];
        let plan = plan(&run, &flags, &Command::Shell("ls /src".into()), None).unwrap();
        let tmp = fixture.tmp();
        let (step, held) = plan.prepare(&fixture.context, &tmp).unwrap();
        let MountSource::Bind { path, .. } = &step.mounts[0].source else {
            panic!("{:?}", step.mounts[0]);
        };
        assert!(path.starts_with(&tmp), "{}", path.display());
        let mut names: Vec<_> = fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["app.py"]);
        // A file is shared as it is.
        let MountSource::Bind { path: file, .. } = &step.mounts[1].source else {
            panic!("{:?}", step.mounts[1]);
        };
        let ctx = fixture.temp.path().join("ctx");
        assert_eq!(file, &ctx.canonicalize().unwrap().join("notes.txt"));
        drop(held);
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
    }

    /// A `RUN`'s flags: `--mount=` each of `specs`.
    fn mounts(specs: &[&str]) -> Vec<(String, Option<String>)> {
        specs
            .iter()
            .map(|spec| ("mount".to_owned(), Some(spec.to_string())))
            .collect()
    }

    #[test]
    fn secrets_not_given_and_ssh_agents_are_left_out_unless_required_as_buildkit_does() {
        let fixture = Fixture::new(&[]);
        let run = fixture.run();
        let npm = Command::Shell("npm ci".into());
        let flags = mounts(&[
            "type=secret,id=npmrc,target=/root/.npmrc",
            "type=secret,id=gh,env=GH_TOKEN",
            "type=ssh",
            "type=tmpfs,target=/tmp",
        ]);
        let planned = plan(&run, &flags, &npm, None).unwrap();
        assert_eq!(planned.step.mounts.len(), 1);
        assert_eq!(planned.step.mounts[0].target, "/tmp");
        assert!(!planned.step.env.iter().any(|e| e.starts_with("GH_TOKEN=")));
        let spec = "type=secret,id=token,required=true";
        let Err(err) = plan(&run, &mounts(&[spec]), &npm, None) else {
            panic!("a required secret was left out");
        };
        assert_eq!(
            format!("{err:#}"),
            "RUN --mount=type=secret,id=token,required=true: secret token was not given: \
             pass it with --secret id=token"
        );
        for not_required in ["required=0", "required=False", "required=f"] {
            let spec = format!("type=secret,id=token,{not_required}");
            let planned = plan(&run, &mounts(&[&spec]), &npm, None).unwrap();
            assert!(planned.step.mounts.is_empty(), "{spec}");
        }
        assert!(mount_spec(&run, "type=ssh,required=T").is_err());
        assert!(mount_spec(&run, "type=ssh,required=maybe").is_err());
    }

    #[test]
    fn a_given_secret_is_a_read_only_file_and_a_variable_of_the_step_in_no_key() {
        let secrets = |token: &str| {
            let env = |var: &str| (var == "T").then(|| token.into());
            let given = [
                ("tok".to_owned(), SecretSource::Env("T".into())),
                ("gh".to_owned(), SecretSource::Env("T".into())),
            ];
            Secrets::read(&given, env).unwrap()
        };
        let mut fixture = Fixture::new(&[]);
        fixture.state.set_env("GH_TOKEN", "from-env");
        fixture.secrets = secrets("s3cret");
        let command = Command::Shell("make".into());
        let flags = mounts(&[
            "type=secret,id=tok",
            "type=secret,id=gh,env=GH_TOKEN",
            "type=secret,id=gh,target=/home/u/gh,uid=1000,mode=0440",
        ]);
        let planned = plan(&fixture.run(), &flags, &command, None).unwrap();
        // Two files, read-only; the variable only once the step runs.
        let targets: Vec<_> = planned
            .step
            .mounts
            .iter()
            .map(|m| (m.target.as_str(), m.read_only))
            .collect();
        assert_eq!(targets, [("/run/secrets/tok", true), ("/home/u/gh", true)]);
        assert!(!planned.step.env.iter().any(|e| e.contains("s3cret")));
        let tmp = fixture.tmp();
        let (step, held) = planned.prepare(&fixture.context, &tmp).unwrap();
        let files: Vec<_> = step
            .mounts
            .iter()
            .map(|mount| {
                let MountSource::Bind { path, .. } = &mount.source else {
                    panic!("{mount:?}");
                };
                assert!(path.starts_with(&tmp), "{}", path.display());
                let meta = fs::metadata(path).unwrap();
                let text = fs::read_to_string(path).unwrap();
                (text, meta.uid(), meta.mode() & 0o7777)
            })
            .collect();
        assert_eq!(
            files,
            [
                ("s3cret".to_owned(), 0, 0o400),
                ("s3cret".to_owned(), 1000, 0o440)
            ]
        );
        // The secret's variable wins over the image's.
        let gh: Vec<_> = step
            .env
            .iter()
            .filter(|e| e.starts_with("GH_TOKEN="))
            .collect();
        assert_eq!(gh, ["GH_TOKEN=s3cret"]);
        drop(held);
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
        // Another value, or none given, keys the same step; another
        // mount does not.
        fixture.secrets = secrets("other");
        let other = plan(&fixture.run(), &flags, &command, None).unwrap();
        assert_eq!(other.key, planned.key);
        fixture.secrets = Secrets::default();
        let absent = plan(&fixture.run(), &flags, &command, None).unwrap();
        assert_eq!(absent.key, planned.key);
        let moved = mounts(&["type=secret,id=tok,target=/elsewhere"]);
        let moved = plan(&fixture.run(), &moved, &command, None).unwrap();
        assert_ne!(moved.key, planned.key);
    }

    #[test]
    fn a_lone_document_with_a_shebang_is_a_program_under_dev_pipes() {
        let fixture = Fixture::new(&[]);
        let run = fixture.run();
        let doc = HereDoc {
            name: "PY".into(),
            text: "#!/usr/bin/env python3\nprint(1)\n".into(),
            expand: true,
        };
        let planned = plan(&run, &[], &Command::Shell(String::new()), Some(&doc)).unwrap();
        assert_eq!(planned.step.argv, ["/dev/pipes/PY"]);
        let (step, held) = planned.prepare(&fixture.context, &fixture.tmp()).unwrap();
        let MountSource::Bind { path, .. } = &step.mounts[0].source else {
            panic!("{:?}", step.mounts[0]);
        };
        assert_eq!(
            (step.mounts[0].target.as_str(), step.mounts[0].read_only),
            ("/dev/pipes/PY", true)
        );
        assert_eq!(fs::read_to_string(path).unwrap(), doc.text);
        assert_eq!(fs::metadata(path).unwrap().mode() & 0o777, 0o755);
        drop(held);
        assert!(!path.exists());
        // Without the #! line, or with a command, the shell runs it.
        let plain = HereDoc {
            text: "echo hi\n".into(),
            ..doc.clone()
        };
        let planned = plan(&run, &[], &Command::Shell(String::new()), Some(&plain)).unwrap();
        assert_eq!(planned.step.argv, ["/bin/sh", "-c", "echo hi\n"]);
        let piped = plan(&run, &[], &Command::Shell(" python3".into()), Some(&doc)).unwrap();
        assert_eq!(piped.step.argv[0], "/bin/sh");
    }

    #[test]
    fn relative_targets_are_under_the_working_directory() {
        assert_eq!(clean_target("/app/."), "/app");
        assert_eq!(clean_target("/app/../cache/"), "/cache");
        assert_eq!(absolute("/app", "cache"), "/app/cache");
        assert_eq!(absolute("/", "cache"), "/cache");
        assert_eq!(absolute("/app", "/root/.cache"), "/root/.cache");
    }
}
