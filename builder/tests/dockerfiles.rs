//! Dockerfiles as people write them, built without VMs: base images are
//! empty images made in a temporary store, `RUN` steps are recorded (their
//! argv, environment and mounts) instead of run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use hull_builder::{BuildOptions, Event, Progress, Secrets, StepOutput, StepRunner};
use hull_image::{ImageRef, Store};
use hull_runtime::{MountSource, StepOptions};

/// Records the steps it is given, and what their bind mounts hold while
/// they run; each makes an empty layer.
#[derive(Default)]
struct Recorder {
    steps: Mutex<Vec<StepOptions>>,
    binds: Mutex<Vec<BTreeMap<String, Vec<String>>>>,
}

impl StepRunner for Recorder {
    fn run(&self, step: StepOptions, _output: StepOutput, layer: &Path) -> Result<u8> {
        let mut binds = BTreeMap::new();
        for mount in &step.mounts {
            if let MountSource::Bind { path, .. } = &mount.source {
                binds.insert(mount.target.clone(), files_under(path, path));
            }
        }
        self.binds.lock().unwrap().push(binds);
        self.steps.lock().unwrap().push(step);
        std::fs::write(layer, [0u8; 1024])?;
        Ok(0)
    }
}

/// The paths under `dir` relative to `root`, sorted; a file's own name.
fn files_under(root: &Path, dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![dir.file_name().unwrap().to_string_lossy().into_owned()];
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        found.push(path.strip_prefix(root).unwrap().display().to_string());
        if path.is_dir() {
            found.extend(files_under(root, &path));
        }
    }
    found.sort();
    found
}

struct Quiet;

impl Progress for Quiet {
    fn event(&mut self, _event: Event<'_>) {}
}

/// What a build made: its steps, what their bind mounts held, and the
/// image's config.
struct Outcome {
    steps: Vec<StepOptions>,
    binds: Vec<BTreeMap<String, Vec<String>>>,
    config: serde_json::Value,
}

/// A base image's only layer: a few users for `--chown` and `USER`.
fn base_layer() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let files = [
        ("etc/passwd", "root:x:0:0::/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"),
        ("etc/group", "root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n"),
    ];
    for (path, text) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, path, text.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap()
}

/// Builds `dockerfile` in a context of `files` with `build_args`, every
/// base image it names made empty (but for users) as the build asks.
fn build(dockerfile: &str, files: &[(&str, &str)], build_args: &[(&str, &str)]) -> Result<Outcome> {
    build_on(dockerfile, files, build_args, serde_json::json!({}))
}

/// [`build`] with base images whose config's `config` object is
/// `base_config`.
fn build_on(
    dockerfile: &str,
    files: &[(&str, &str)],
    build_args: &[(&str, &str)],
    base_config: serde_json::Value,
) -> Result<Outcome> {
    let temp = tempfile::tempdir()?;
    let root = temp.path().join("root");
    let context = temp.path().join("context");
    std::fs::create_dir_all(&context)?;
    for (path, text) in files {
        let path = context.join(path);
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(path, text)?;
    }
    let store = Store::open(&root)?;
    let layer = store.add_layer(base_layer().as_slice())?;
    let options = BuildOptions {
        build_args: build_args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..build_options(&root, &context, dockerfile, "built:latest")
    };
    loop {
        let recorder = Recorder::default();
        let progress = Arc::new(Mutex::new(Quiet));
        match hull_builder::build(&options, &recorder, progress) {
            Ok(built) => {
                let image = store.resolve(built.id.as_str())?;
                return Ok(Outcome {
                    steps: recorder.steps.into_inner().unwrap(),
                    binds: recorder.binds.into_inner().unwrap(),
                    config: store.image_config(&image)?,
                });
            }
            Err(err) => {
                let text = format!("{err:#}");
                let Some(name) = missing_image(&text) else {
                    return Err(err);
                };
                let config = serde_json::json!({
                    "architecture": "amd64", "os": "linux", "config": base_config,
                    "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.as_str()]},
                    "history": [],
                });
                store.add_built_image(
                    &serde_json::to_vec(&config)?,
                    std::slice::from_ref(&layer),
                    &[ImageRef::parse(&name)?],
                )?;
            }
        }
    }
}

/// The image a build found missing, from its error.
fn missing_image(error: &str) -> Option<String> {
    let rest = error
        .split("image ")
        .find(|s| s.contains(" is not in the store"))?;
    Some(rest.split(' ').next()?.to_owned())
}

/// The environment variable `name` of `step`, if set.
fn env<'a>(step: &'a StepOptions, name: &str) -> Option<&'a str> {
    step.env
        .iter()
        .find_map(|entry| entry.strip_prefix(name)?.strip_prefix('='))
}

#[test]
fn run_here_documents_after_the_command_or_several_reach_the_shell_as_buildkit_gives_them() {
    // As in Docker's here-document examples.
    let dockerfile = "# syntax=docker/dockerfile:1.3-labs\nFROM debian\n\
                      RUN --network=none python3 <<EOF\nprint(\"Hello\")\nEOF\n\
                      RUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nFILE1\nsecond\nFILE2\n\
                      RUN <<EOT\n  mkdir -p foo/bar\nEOT\n";
    let outcome = build(dockerfile, &[], &[]).unwrap();
    let scripts: Vec<&str> = outcome.steps.iter().map(|s| s.argv[2].as_str()).collect();
    assert_eq!(
        scripts,
        [
            "python3 <<EOF\nprint(\"Hello\")\nEOF\n",
            "<<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nFILE1\nsecond\nFILE2\n",
            "  mkdir -p foo/bar\n",
        ]
    );
    assert!(!outcome.steps[0].network);
}

#[test]
fn secrets_not_given_and_ssh_agents_are_left_out_unless_required() {
    let dockerfile = "FROM node:20-alpine\n\
                      RUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci\n\
                      RUN --mount=type=ssh git clone git@github.com:o/r.git\n";
    let outcome = build(dockerfile, &[], &[]).unwrap();
    assert_eq!(outcome.steps.len(), 2);
    assert!(outcome.steps.iter().all(|step| step.mounts.is_empty()));
    let required = "FROM node:20-alpine\nRUN --mount=type=secret,id=npmrc,required npm ci\n";
    let err = format!("{:#}", build(required, &[], &[]).err().unwrap());
    assert!(
        err.ends_with("secret npmrc was not given: pass it with --secret id=npmrc"),
        "{err}"
    );
}

#[test]
fn a_wildcard_that_matches_nothing_copies_nothing_but_its_directory_must_be_there() {
    // The official Node images' guide copies lock files that may be missing.
    let dockerfile = "FROM node:20-alpine\nWORKDIR /app\n\
                      COPY [\"package.json\", \"package-lock.json*\", \"./\"]\nRUN npm ci\n";
    let outcome = build(dockerfile, &[("package.json", "{}")], &[]).unwrap();
    assert_eq!(outcome.steps.len(), 1);
    let missing_dir = "FROM alpine\nCOPY folder/b/* /dst/\n";
    let err = format!("{:#}", build(missing_dir, &[], &[]).err().unwrap());
    assert!(
        err.ends_with("folder/b/*: no such file or directory in the build context"),
        "{err}"
    );
}

#[test]
fn args_in_from_and_in_stages_are_scoped_as_buildkit_scopes_them() {
    let dockerfile = "ARG BASE_IMAGE=alpine\nARG BASE_TAG=3.20\nARG VERSION\n\
                      FROM ${BASE_IMAGE}:${BASE_TAG} AS base\nARG VERSION=1.0\nARG BASE_TAG\n\
                      RUN echo \"$VERSION $BASE_TAG\"\nENV APP_VERSION=${VERSION:-unknown}\n\
                      FROM base\nARG VERSION\nRUN echo \"$VERSION $BASE_IMAGE\"\n";
    let outcome = build(dockerfile, &[], &[]).unwrap();
    let first = &outcome.steps[0];
    assert_eq!(
        (env(first, "VERSION"), env(first, "BASE_TAG")),
        (Some("1.0"), Some("3.20"))
    );
    // A stage's ARG ends with it; a global one without a value gives none.
    let second = &outcome.steps[1];
    assert_eq!(
        (env(second, "VERSION"), env(second, "BASE_IMAGE")),
        (None, None)
    );
    assert_eq!(env(second, "APP_VERSION"), Some("1.0"));
    let tagged = build(dockerfile, &[], &[("VERSION", "2.0"), ("BASE_TAG", "3.19")]).unwrap();
    assert_eq!(env(&tagged.steps[1], "VERSION"), Some("2.0"));
    assert_eq!(env(&tagged.steps[0], "BASE_TAG"), Some("3.19"));
}

#[test]
fn continuations_with_comments_crlf_and_a_backtick_escape_join_as_buildkit_joins_them() {
    let comments =
        "FROM debian\nRUN apt-get install -y \\\n    # build tools\n    make \\\n\n    curl\n";
    let outcome = build(comments, &[], &[]).unwrap();
    assert_eq!(
        outcome.steps[0].argv[2],
        "apt-get install -y     make     curl"
    );
    let crlf = "FROM alpine\r\nARG NAME=world\r\nRUN echo \"$NAME\" \\\r\n    && echo done\r\n";
    let outcome = build(crlf, &[], &[]).unwrap();
    assert_eq!(outcome.steps[0].argv[2], "echo \"$NAME\"     && echo done");
    let backtick = "# escape=`\nFROM alpine\nENV DIR C:\\app\nRUN echo a `\n    b\nWORKDIR $DIR\n";
    let outcome = build(backtick, &[], &[]).unwrap();
    assert_eq!(outcome.steps[0].argv[2], "echo a     b");
    assert_eq!(outcome.config["config"]["WorkingDir"], "/C:\\app");
}

#[test]
fn what_hull_cannot_honour_is_refused_in_one_line_naming_it() {
    for (dockerfile, error) in [
        (
            "FROM alpine\nRUN --network=host true\n",
            "RUN --network=host: a step runs in a VM of its own: use default or none",
        ),
        (
            "FROM alpine\nRUN --security=insecure true\n",
            "RUN --security=insecure: hull runs no step with extra privileges (BuildKit's security.insecure)",
        ),
        (
            "FROM alpine\nADD git@github.com:o/r.git /src\n",
            "git@github.com:o/r.git: ADD of a git repository is not supported; clone it in a RUN step, or into the context",
        ),
    ] {
        let err = format!("{:#}", build(dockerfile, &[], &[]).err().unwrap());
        assert!(err.ends_with(error), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

#[test]
fn a_bind_mount_from_another_stage_shares_its_files_and_builds_it_first() {
    let dockerfile = "FROM alpine AS tools\nCOPY tool.sh /opt/tool.sh\nCOPY lib /opt/lib/\n\
                      FROM alpine\n\
                      RUN --mount=type=bind,from=tools,source=/opt/tool.sh,target=/mnt/tool sh /mnt/tool\n\
                      RUN --mount=from=tools,source=/opt,target=/tools ls /tools\n";
    let files = [("tool.sh", "echo hi"), ("lib/a.sh", "a")];
    let outcome = build(dockerfile, &files, &[]).unwrap();
    assert_eq!(outcome.binds[0]["/mnt/tool"], ["tool.sh"]);
    assert_eq!(outcome.binds[1]["/tools"], ["lib", "lib/a.sh", "tool.sh"]);
    assert!(outcome.steps.iter().all(|step| step.mounts[0].read_only));
    let cache_from =
        "FROM alpine AS a\nFROM alpine\nRUN --mount=type=cache,from=a,target=/c true\n";
    let err = format!("{:#}", build(cache_from, &[], &[]).err().unwrap());
    assert!(
        err.ends_with("from=a is supported on bind mounts only"),
        "{err}"
    );
}

#[test]
fn what_a_base_image_sets_beyond_the_oci_config_is_inherited_and_its_triggers_run() {
    let base = serde_json::json!({
        "Healthcheck": {"Test": ["CMD-SHELL", "curl -f localhost"], "Retries": 2},
        "OnBuild": ["RUN echo triggered"],
        "Shell": ["/bin/bash", "-c"],
    });
    let outcome = build_on("FROM app:base\nRUN echo mine\n", &[], &[], base).unwrap();
    let argvs: Vec<&[String]> = outcome.steps.iter().map(|s| s.argv.as_slice()).collect();
    assert_eq!(
        argvs,
        [
            ["/bin/bash", "-c", "echo triggered"],
            ["/bin/bash", "-c", "echo mine"]
        ]
    );
    let config = &outcome.config["config"];
    assert_eq!(config["Healthcheck"]["Retries"], 2);
    assert_eq!(config["Shell"][0], "/bin/bash");
    // Triggers run once: the image built does not keep them.
    assert!(
        config.get("OnBuild").is_none_or(|v| v.is_null()),
        "{config}"
    );
}

#[test]
fn copy_parents_keeps_each_matchs_path_from_its_pivot() {
    // A monorepo's manifests, as Docker's --parents example copies them.
    let dockerfile = "FROM node:20\nWORKDIR /app\n\
                      COPY --parents packages/*/package.json ./\n\
                      COPY --parents ./tools/./lint/** /opt/\nRUN npm ci\n";
    let files = [
        ("packages/a/package.json", "{}"),
        ("packages/b/package.json", "{}"),
        ("packages/b/index.js", "x"),
        ("tools/lint/cfg/rules.json", "{}"),
    ];
    let outcome = build(dockerfile, &files, &[]).unwrap();
    assert_eq!(outcome.steps.len(), 1);
}

#[test]
fn a_copied_here_document_is_named_after_itself_in_a_directory() {
    let dockerfile = "FROM alpine AS files\n\
                      COPY <<a <<b /app/\nx\na\ny\nb\n\
                      COPY <<EOF /conf\nc\nEOF\n\
                      COPY <<../up /dir/\nz\n../up\n\
                      FROM alpine\nRUN --mount=from=files,source=/,target=/m true\n";
    let outcome = build(dockerfile, &[], &[]).unwrap();
    let seen = &outcome.binds[0]["/m"];
    for path in ["app/a", "app/b", "conf", "dir/up"] {
        assert!(seen.contains(&path.to_owned()), "{path} not in {seen:?}");
    }
    assert!(!seen.contains(&"up".to_owned()), "{seen:?}");
}

#[test]
fn a_long_run_of_metadata_steps_is_one_cache_entry_and_found_again() {
    let temp = tempfile::tempdir().unwrap();
    let context = temp.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    let labels: String = (0..500).map(|n| format!("LABEL n{n}={n}\n")).collect();
    let dockerfile = format!("FROM scratch\n{labels}ENV DONE=1\n");
    let options = build_options(
        &temp.path().join("root"),
        &context,
        &dockerfile,
        "labels:latest",
    );
    let build = || {
        let progress = Arc::new(Mutex::new(Quiet));
        hull_builder::build(&options, &Recorder::default(), progress).unwrap()
    };
    let first = build();
    let store = Store::open(&options.root).unwrap();
    assert_eq!(store.build_cache_usage().unwrap().entries, 1);
    // Built again, the image is the same, its history's times and all.
    assert_eq!(build().id, first.id);
}

/// A build of `dockerfile` in `context` into the store at `root`, tagged
/// `tag`, with no arguments, cache used.
fn build_options(root: &Path, context: &Path, dockerfile: &str, tag: &str) -> BuildOptions {
    BuildOptions {
        root: root.to_owned(),
        context: context.to_owned(),
        dockerfile: dockerfile.to_owned(),
        ignore_file: None,
        tags: vec![ImageRef::parse(tag).unwrap()],
        build_args: BTreeMap::new(),
        target: None,
        no_cache: false,
        pull: false,
        labels: BTreeMap::new(),
        network: true,
        platform: None,
        registry: None,
        secrets: Secrets::default(),
    }
}

/// The names of the steps a build shows.
#[derive(Default)]
struct StepNames(Vec<String>);

impl Progress for StepNames {
    fn event(&mut self, event: Event<'_>) {
        if let Event::Started { name, .. } = event {
            self.0.push(name.to_owned());
        }
    }
}

#[test]
fn a_base_images_triggers_name_this_dockerfiles_stages_which_are_built_first() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    let context = temp.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    for file in ["app.txt", "tool.sh", "mine.txt", "never.txt"] {
        std::fs::write(context.join(file), file).unwrap();
    }
    let options = |dockerfile: &str, tag: &str| build_options(&root, &context, dockerfile, tag);
    let base = "FROM scratch\n\
                ONBUILD COPY --from=builder /out/app /app\n\
                ONBUILD RUN --mount=from=tools,source=/opt,target=/t ls /t\n";
    let progress = Arc::new(Mutex::new(Quiet));
    hull_builder::build(
        &options(base, "app:onbuild"),
        &Recorder::default(),
        progress,
    )
    .unwrap();

    // Only the triggers name `builder` and `tools`; `unused` is named by
    // nothing and skipped.
    let child = "FROM scratch AS builder\nCOPY app.txt /out/app\n\
                 FROM scratch AS tools\nCOPY tool.sh /opt/tool.sh\n\
                 FROM scratch AS unused\nCOPY never.txt /never\n\
                 FROM app:onbuild AS app\nCOPY mine.txt /mine\n\
                 FROM scratch\nRUN --mount=from=app,source=/,target=/m true\n";
    let recorder = Recorder::default();
    let names = Arc::new(Mutex::new(StepNames::default()));
    hull_builder::build(&options(child, "child:latest"), &recorder, names.clone()).unwrap();
    let binds = recorder.binds.into_inner().unwrap();
    assert_eq!(binds[0]["/t"], ["tool.sh"]);
    assert_eq!(binds[1]["/m"], ["app", "mine"]);
    let names = std::mem::take(&mut names.lock().unwrap().0);
    // The base's config is read first (then the stages its triggers name
    // are built), so its triggers count from FROM on.
    let app: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| name.starts_with("[app ") || name.contains(" for "))
        .collect();
    assert_eq!(
        app,
        [
            "[internal] load metadata for docker.io/library/app:onbuild",
            "[app 1/4] FROM app:onbuild AS app",
            "[app 2/4] ONBUILD COPY --from=builder /out/app /app",
            "[app 3/4] ONBUILD RUN --mount=from=tools,source=/opt,target=/t ls /t",
            "[app 4/4] COPY mine.txt /mine",
        ],
        "{names:?}"
    );
    assert!(
        names.iter().any(|name| name.starts_with("[builder ")),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|name| name.starts_with("[unused ")),
        "{names:?}"
    );
    // The image built keeps none of the triggers.
    let store = Store::open(&root).unwrap();
    let image = store.find("child:latest").unwrap().unwrap();
    let config = store.image_config(&image).unwrap();
    assert!(config["config"].get("OnBuild").is_none_or(|v| v.is_null()));
}

/// What one step's secrets were while it ran: each bind mount's text and
/// mode by target, and the step's environment.
type SecretsSeen = (BTreeMap<String, (String, u32)>, Vec<String>);

/// Records what each step's bind mounts hold while it runs; each makes an
/// empty layer.
#[derive(Default)]
struct SecretReader {
    seen: Mutex<Vec<SecretsSeen>>,
}

impl StepRunner for SecretReader {
    fn run(&self, step: StepOptions, _output: StepOutput, layer: &Path) -> Result<u8> {
        let mut files = BTreeMap::new();
        for mount in &step.mounts {
            if let MountSource::Bind { path, .. } = &mount.source {
                let mode = std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(path)?);
                files.insert(
                    mount.target.clone(),
                    (std::fs::read_to_string(path)?, mode & 0o7777),
                );
            }
        }
        self.seen.lock().unwrap().push((files, step.env));
        std::fs::write(layer, [0u8; 1024])?;
        Ok(0)
    }
}

/// The files under `dir` that hold `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            found.extend(files_holding(&entry.path(), needle));
        } else if kind.is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            if bytes.windows(needle.len()).any(|window| window == needle) {
                found.push(entry.path());
            }
        }
    }
    found
}

#[test]
fn secrets_reach_their_steps_only_and_another_value_still_hits_the_cache() {
    let temp = tempfile::tempdir().unwrap();
    let (root, context) = (temp.path().join("root"), temp.path().join("context"));
    std::fs::create_dir_all(&context).unwrap();
    let dockerfile = "FROM scratch\n\
                      RUN --mount=type=secret,id=tok cat /run/secrets/tok\n\
                      RUN --mount=type=secret,id=tok,env=TOK,required true\n";
    let build = |value: &str| {
        let given = [(
            "tok".to_owned(),
            hull_builder::SecretSource::Env("TOK_VALUE".into()),
        )];
        let options = BuildOptions {
            secrets: Secrets::read(&given, |_| Some(value.into())).unwrap(),
            ..build_options(&root, &context, dockerfile, "secret:latest")
        };
        let reader = SecretReader::default();
        let progress = Arc::new(Mutex::new(Quiet));
        let built = hull_builder::build(&options, &reader, progress).unwrap();
        (built, reader.seen.into_inner().unwrap())
    };
    let (first, seen) = build("s3cret");
    assert_eq!(seen.len(), 2);
    let file = BTreeMap::from([("/run/secrets/tok".to_owned(), ("s3cret".to_owned(), 0o400))]);
    assert_eq!(seen[0].0, file);
    assert!(!seen[0].1.iter().any(|e| e.contains("s3cret")));
    assert!(seen[1].0.is_empty());
    assert!(seen[1].1.contains(&"TOK=s3cret".to_owned()));
    // Nothing under the hull root holds it: no layer, cache entry, image
    // config or history, no file left behind.
    assert_eq!(
        files_holding(&root, b"s3cret"),
        Vec::<std::path::PathBuf>::new()
    );
    // Another value: every step from the cache, the same image.
    let (second, seen) = build("changed");
    assert!(seen.is_empty(), "{seen:?}");
    assert_eq!(second.id, first.id);
}
