//! The build: the stages the target needs, in order, each instruction
//! from the cache or run, the target's image stored.
//!
//! Every instruction's result is cached under a key chained from its
//! parent's: the base image's ID, then each instruction's expanded text
//! and what it depends on beyond it (the files a `COPY` copies, the
//! variables and mounts of a `RUN`). A changed instruction misses, and so
//! does everything after it. History times come from the cache with the
//! rest, so an unchanged build gives the same image ID.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hull_image::{CacheEntry, Digest, ImageRef, Store};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use crate::chmod::Chmod;
use crate::copy::{self, CopyOptions, Source as CopySource};
use crate::dockerfile::{self, Dockerfile, Instruction, Kind, Source};
use crate::metadata::metadata;
use crate::pattern::IgnoreRules;
use crate::progress::{report, Event, OutputWriter, SharedProgress};
use crate::run::{self, MountFrom, RunContext};
use crate::state::{ImageState, DEFAULT_PATH};
use crate::tree::{ContextTree, LayerTree, Tree};
use crate::{remote, users, words};
use crate::{BuildError, BuildOptions, Built, StepOutput, StepRunner};

/// Variables every build defines, as BuildKit does for one platform.
const PLATFORM_ARGS: [(&str, &str); 8] = [
    ("TARGETPLATFORM", "linux/amd64"),
    ("TARGETOS", "linux"),
    ("TARGETARCH", "amd64"),
    ("TARGETVARIANT", ""),
    ("BUILDPLATFORM", "linux/amd64"),
    ("BUILDOS", "linux"),
    ("BUILDARCH", "amd64"),
    ("BUILDVARIANT", ""),
];
/// Build arguments usable without an `ARG`, passed to `RUN`s but never
/// part of a key or the history, as in Docker.
const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A finished stage.
#[derive(Clone)]
struct Finished {
    state: ImageState,
    key: Digest,
}

pub(crate) struct Build<'a> {
    options: &'a BuildOptions,
    runner: &'a dyn StepRunner,
    progress: SharedProgress,
    store: Store,
    context: ContextTree,
    dockerfile: Dockerfile,
    /// Global `ARG`s with values (and the platform's).
    global: BTreeMap<String, String>,
    proxy: BTreeMap<String, String>,
    stages: Vec<Option<Finished>>,
    /// The last step number shown.
    steps: usize,
}

impl<'a> Build<'a> {
    pub(crate) fn new(
        options: &'a BuildOptions,
        runner: &'a dyn StepRunner,
        progress: SharedProgress,
    ) -> Result<Build<'a>> {
        if let Some(platform) = options.platform.as_deref() {
            check_platform(platform)?;
        }
        let store = Store::open(&options.root)?;
        let dockerfile = dockerfile::parse(&options.dockerfile)?;
        let context = ContextTree::open_with(&options.context, options.ignore_file.as_deref())?;
        let mut global: BTreeMap<String, String> = PLATFORM_ARGS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (name, default) in &dockerfile.global_args {
            let value = match options.build_args.get(name) {
                Some(value) => Some(value.clone()),
                None => default
                    .as_deref()
                    .map(|default| {
                        let lookup = |key: &str| global.get(key).cloned();
                        words::expand(default, dockerfile.escape, &lookup)
                    })
                    .transpose()?,
            };
            if let Some(value) = value {
                global.insert(name.clone(), value);
            }
        }
        let proxy = options
            .build_args
            .iter()
            .filter(|(k, _)| PROXY_ARGS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let stages = vec![None; dockerfile.stages.len()];
        Ok(Build {
            options,
            runner,
            progress,
            store,
            context,
            dockerfile,
            global,
            proxy,
            stages,
            steps: 0,
        })
    }

    pub(crate) fn run(mut self) -> Result<Built> {
        let _adding = self.store.hold_additions()?;
        let target = self.target()?;
        self.build_with_needs(target, target)?;
        let mut state = self.stages[target].clone().expect("built above").state;
        for (key, value) in &self.options.labels {
            state.add_label(key, value);
        }
        let id = self.next_step();
        let started = Instant::now();
        report(
            &self.progress,
            Event::Started {
                id,
                name: "exporting to image",
            },
        );
        let config = state.config_json();
        let image = self
            .store
            .add_built_image(&config, &state.layers, &self.options.tags)?;
        let text = format!("writing image {image}");
        report(&self.progress, Event::Note { id, text: &text });
        for tag in &self.options.tags {
            let text = format!("naming to {tag}");
            report(&self.progress, Event::Note { id, text: &text });
        }
        report(
            &self.progress,
            Event::Done {
                id,
                elapsed: started.elapsed(),
            },
        );
        Ok(Built { id: image })
    }

    fn next_step(&mut self) -> usize {
        self.steps += 1;
        self.steps
    }

    /// The index of the stage to build: `--target`, else the last.
    fn target(&self) -> Result<usize> {
        match &self.options.target {
            None => Ok(self.dockerfile.stages.len() - 1),
            Some(target) => self.stage_named(&target.to_lowercase()).ok_or_else(|| {
                anyhow!("target stage {target:?} could not be found in the Dockerfile")
            }),
        }
    }

    /// The stage `name` or index names among all stages.
    fn stage_named(&self, name: &str) -> Option<usize> {
        self.dockerfile
            .stages
            .iter()
            .position(|stage| stage.name.as_deref() == Some(name))
            .or_else(|| {
                name.parse::<usize>()
                    .ok()
                    .filter(|i| *i < self.dockerfile.stages.len())
            })
    }

    /// Builds stage `index` and the earlier stages it names, those not
    /// built yet, in order (`target` is the build's target).
    fn build_with_needs(&mut self, index: usize, target: usize) -> Result<()> {
        for needed in self.needed(index)? {
            if self.stages[needed].is_none() {
                let finished = self.stage(needed, target)?;
                self.stages[needed] = Some(finished);
            }
        }
        Ok(())
    }

    /// The stages `target` needs as its Dockerfile names them, in order;
    /// the others are skipped. (Those only a base image's `ONBUILD`
    /// triggers name are known once the base is, and built then.)
    fn needed(&self, target: usize) -> Result<Vec<usize>> {
        let mut needed = BTreeSet::new();
        let mut pending = vec![target];
        while let Some(index) = pending.pop() {
            if !needed.insert(index) {
                continue;
            }
            let stage = &self.dockerfile.stages[index];
            let mut names = vec![self.expand_global(&stage.base)?.to_lowercase()];
            names.extend(self.references(&stage.instructions)?);
            pending.extend(self.earlier_stages(&names, index));
        }
        Ok(needed.into_iter().collect())
    }

    /// The stages before stage `index` that `names` name.
    fn earlier_stages(&self, names: &[String], index: usize) -> Vec<usize> {
        names
            .iter()
            .filter_map(|name| self.stage_named(name).filter(|other| *other < index))
            .collect()
    }

    /// What instructions name that may be another stage (lower-cased):
    /// `--from`s, `RUN --mount=from=`s.
    fn references(&self, instructions: &[Instruction]) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for instruction in instructions {
            let flags = match &instruction.kind {
                Kind::Copy { flags, .. } => flags,
                Kind::Run { flags, .. } => {
                    let lookup = |key: &str| self.global.get(key).cloned();
                    let sources = run::mount_sources(flags, self.dockerfile.escape, &lookup)?;
                    names.extend(sources.into_iter().map(|name| name.to_lowercase()));
                    continue;
                }
                _ => continue,
            };
            for (name, value) in flags {
                if name == "from" {
                    names.push(
                        self.expand_global(value.as_deref().unwrap_or_default())?
                            .to_lowercase(),
                    );
                }
            }
        }
        Ok(names)
    }

    fn expand_global(&self, text: &str) -> Result<String> {
        let lookup = |key: &str| self.global.get(key).cloned();
        words::expand(text, self.dockerfile.escape, &lookup)
    }

    /// Builds stage `index`.
    fn stage(&mut self, index: usize, target: usize) -> Result<Finished> {
        let stage_count = self.dockerfile.stages.len();
        let stage = &self.dockerfile.stages[index];
        let prefix = match (&stage.name, index == target && stage_count == 1) {
            (Some(name), _) => format!("{name} "),
            (None, true) => String::new(),
            (None, false) => format!("stage-{index} "),
        };
        let own_steps = stage
            .instructions
            .iter()
            .filter(|i| i.kind.is_file_step())
            .count();
        let base = self.expand_global(&stage.base)?;
        if let Some(platform) = &stage.platform {
            check_platform(&self.expand_global(platform)?)?;
        }
        // As BuildKit does, an image's config (pulled if need be) is read
        // in a step of its own first: its ONBUILD triggers count among the
        // stage's steps from its FROM on.
        let id = self.next_step();
        let from_image = !base.eq_ignore_ascii_case("scratch")
            && self
                .stage_named(&base.to_lowercase())
                .is_none_or(|other| other >= index);
        let name = match from_image {
            true => {
                let full = ImageRef::parse(&base).map_or_else(|_| base.clone(), |r| r.to_string());
                format!("[internal] load metadata for {full}")
            }
            false => self.stage_from_label(index, &prefix, &base, 1 + own_steps),
        };
        report(&self.progress, Event::Started { id, name: &name });
        let started = Instant::now();
        let mut current = self.base(&base, index).inspect_err(|err| {
            report(
                &self.progress,
                Event::Failed {
                    id,
                    error: &format!("{err:#}"),
                },
            );
        })?;
        report(
            &self.progress,
            Event::Done {
                id,
                elapsed: started.elapsed(),
            },
        );

        // A base image's ONBUILD triggers run first, as Docker runs them;
        // the stages they name are this Dockerfile's, built now if no
        // instruction of its own named them (as BuildKit's Dockerfile 1.11
        // resolves them).
        let triggers = current
            .state
            .strings("OnBuild")
            .iter()
            .map(|trigger| dockerfile::parse_trigger(trigger))
            .collect::<Result<Vec<_>>>()?;
        if !triggers.is_empty() {
            current.state.set("OnBuild", Value::Null);
        }
        let named = self.references(&triggers)?;
        for other in self.earlier_stages(&named, index) {
            self.build_with_needs(other, target)?;
        }
        let total = 1 + own_steps + triggers.iter().filter(|i| i.kind.is_file_step()).count();
        if from_image {
            let id = self.next_step();
            let name = self.stage_from_label(index, &prefix, &base, total);
            report(&self.progress, Event::Started { id, name: &name });
            report(
                &self.progress,
                Event::Done {
                    id,
                    elapsed: Duration::ZERO,
                },
            );
        }
        let trigger_count = triggers.len();
        let instructions: Vec<Instruction> = triggers
            .into_iter()
            .chain(self.dockerfile.stages[index].instructions.iter().cloned())
            .collect();
        // As BuildKit does, an image without a PATH gets the default one.
        if current.state.env_var("PATH").is_none() {
            current.state.set_env("PATH", DEFAULT_PATH);
        }
        let mut args: BTreeMap<String, String> = BTreeMap::new();
        let mut number = 1;
        for (position, instruction) in instructions.iter().enumerate() {
            let file_step = instruction.kind.is_file_step();
            if file_step {
                number += 1;
            }
            let onbuild = match position < trigger_count {
                true => "ONBUILD ",
                false => "",
            };
            let label = format!("[{prefix}{number}/{total}] {onbuild}{}", instruction.text);
            current = self
                .instruction(
                    current,
                    instruction,
                    &mut args,
                    file_step.then_some(label.as_str()),
                )
                .with_context(|| in_error(&instruction.text))?;
        }
        // The stage's end is cached whatever its last step: a run of
        // metadata steps at the end is found again whole, with its times.
        if self.store.cached(&current.key)?.is_none() {
            self.store.cache(&current.key, &entry(&current.state)?)?;
        }
        Ok(current)
    }

    /// The state a stage starts from.
    fn base(&mut self, base: &str, index: usize) -> Result<Finished> {
        if base.eq_ignore_ascii_case("scratch") {
            return Ok(Finished {
                state: ImageState::default(),
                key: Digest::of(b"scratch"),
            });
        }
        if let Some(other) = self
            .stage_named(&base.to_lowercase())
            .filter(|other| *other < index)
        {
            return self.stages[other]
                .clone()
                .with_context(|| format!("stage {base} was not built"));
        }
        let image = self.image(base)?;
        Ok(Finished {
            state: ImageState::of_image(&image, &self.store.image_config(&image)?)?,
            key: Digest::of(format!("image {}", image.id).as_bytes()),
        })
    }

    /// `[PREFIX1/TOTAL] FROM BASE ...`, stage `index`'s first step, its base
    /// as `base` expands it.
    fn stage_from_label(&self, index: usize, prefix: &str, base: &str, total: usize) -> String {
        let stage = &self.dockerfile.stages[index];
        format!(
            "[{prefix}1/{total}] {}",
            stage.text.replacen(&stage.base, base, 1)
        )
    }

    /// The image `name`, pulled if it is missing or `--pull` says so.
    fn image(&self, name: &str) -> Result<hull_image::Image> {
        let reference = ImageRef::parse(name).map_err(|err| anyhow!("FROM {name}: {err}"))?;
        let found = self.store.find(name)?;
        if let (Some(image), false) = (&found, self.options.pull) {
            return Ok(image.clone());
        }
        let registry = self
            .options
            .registry
            .as_ref()
            .with_context(|| format!("image {name} is not in the store; pull it first"))?;
        let pulled = hull_image::pull(&self.store, &reference, registry);
        match (pulled, found) {
            (Ok(pulled), _) => self.store.resolve(pulled.id.as_str()),
            // An image here serves when the registry cannot be reached.
            (Err(_), Some(image)) if !self.options.pull => Ok(image),
            (Err(err), _) => Err(err.context(format!("cannot pull {name}"))),
        }
    }

    /// Applies one instruction to `current`, from the cache if it can.
    fn instruction(
        &mut self,
        current: Finished,
        instruction: &Instruction,
        args: &mut BTreeMap<String, String>,
        label: Option<&str>,
    ) -> Result<Finished> {
        let escape = self.dockerfile.escape;
        let chain = |parts: &str| Digest::of(format!("{}\n{parts}", current.key).as_bytes());
        match &instruction.kind {
            kind if kind.is_file_step() => self.file_instruction(current, instruction, args, label),
            Kind::Arg(text) => {
                let mut key_parts = Vec::new();
                for (name, default) in words::assignments(text, escape, false)? {
                    let value = match self.options.build_args.get(&name) {
                        Some(value) => Some(value.clone()),
                        None => match default {
                            Some(default) => {
                                let lookup = |key: &str| {
                                    current
                                        .state
                                        .env_var(key)
                                        .or_else(|| args.get(key).cloned())
                                };
                                Some(words::expand(&default, escape, &lookup)?)
                            }
                            None => self.global.get(&name).cloned(),
                        },
                    };
                    key_parts.push(format!("{name}={value:?}"));
                    if let Some(value) = value {
                        args.insert(name, value);
                    }
                }
                // No history entry: an ARG changes only what follows.
                Ok(Finished {
                    key: chain(&format!("ARG {}", key_parts.join(" "))),
                    state: current.state,
                })
            }
            // The state is borrowed, never copied: a run of thousands of
            // ENVs or LABELs takes time linear in its length.
            kind => {
                let lookup = |key: &str| {
                    current
                        .state
                        .env_var(key)
                        .or_else(|| args.get(key).cloned())
                };
                let expand = |text: &str| words::expand(text, escape, &lookup);
                let (text, change) = metadata(kind, &expand, &current.state, escape)?;
                let key = chain(&text);
                self.metadata_step(current, key, &text, change)
            }
        }
    }

    /// Applies a `RUN`, `COPY`, `ADD` or `WORKDIR` to `current`, from the
    /// cache if it can.
    fn file_instruction(
        &mut self,
        current: Finished,
        instruction: &Instruction,
        args: &BTreeMap<String, String>,
        label: Option<&str>,
    ) -> Result<Finished> {
        let escape = self.dockerfile.escape;
        // Variables are looked up in a copy of the environment, as
        // `current` goes to the step while they are still expanded.
        let env = current.state.env();
        let lookup = |key: &str| {
            env.iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
                .or_else(|| args.get(key).cloned())
        };
        let expand = |text: &str| words::expand(text, escape, &lookup);
        let chain = |parts: &str| Digest::of(format!("{}\n{parts}", current.key).as_bytes());
        match &instruction.kind {
            Kind::Run {
                flags,
                command,
                heredoc,
            } => {
                let mut sources = BTreeMap::new();
                for name in run::mount_sources(flags, escape, &lookup)? {
                    let source = self.copy_source(&name)?;
                    let tree = self.layer_tree(&source.state, &name)?;
                    let key = source.key.to_string();
                    sources.insert(name, MountFrom { tree, key });
                }
                let run = RunContext {
                    state: &current.state,
                    args,
                    proxy: &self.proxy,
                    network: self.options.network,
                    context: &self.context,
                    cache_dir: &crate::cache_mounts_dir(&self.options.root),
                    escape,
                    lookup: &lookup,
                    sources: &sources,
                    secrets: &self.options.secrets,
                };
                let plan = run::plan(&run, flags, command, heredoc.as_ref())?;
                let key = chain(&format!("RUN {}", plan.key));
                self.file_step(current, key, label, |build, state, id| {
                    let (step, _held) = plan.prepare(&build.context, &build.tmp_dir())?;
                    let layer = build.run_step(id, step, &instruction.text)?;
                    state.layers.push(layer);
                    Ok(plan.created_by.clone())
                })
            }
            Kind::Copy {
                add,
                flags,
                sources,
                dest,
            } => self.copy(
                current,
                *add,
                flags,
                sources,
                dest,
                label,
                &lookup,
                instruction,
            ),
            Kind::Workdir(dir) => {
                let dir = run::absolute(&current.state.workdir(), &expand(dir)?);
                let key = chain(&format!("WORKDIR {dir}"));
                self.file_step(current, key, label, |build, state, _| {
                    state.set("WorkingDir", json!(dir));
                    let image = build.layer_tree(state, "the image")?;
                    // As BuildKit's mkdir: every directory it makes (the
                    // missing parents too) is the USER's.
                    let owner = match state.user() {
                        user if user.is_empty() => (0, 0),
                        user => users::workdir_owner(&image, &user)?,
                    };
                    let path = std::path::Path::new(dir.trim_start_matches('/'));
                    if let Some(plan) = copy::make_dir(&image, path, owner, now_secs())? {
                        let layer = build.add_layer(|out| plan.write(&image, owner, out))?;
                        state.layers.push(layer);
                    }
                    Ok(format!("WORKDIR {dir}"))
                })
            }
            other => bail!("{other:?} makes no layer"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &mut self,
        current: Finished,
        add: bool,
        flags: &[(String, Option<String>)],
        sources: &[Source],
        dest: &str,
        label: Option<&str>,
        lookup: words::Lookup,
        instruction: &Instruction,
    ) -> Result<Finished> {
        let escape = self.dockerfile.escape;
        let expand = |text: &str| words::expand(text, escape, lookup);
        let mut options = CopyOptions {
            unpack_archives: add,
            ..CopyOptions::default()
        };
        let mut from = None;
        let mut chown = None;
        let mut checksum = None;
        let mut excludes = Vec::new();
        for (name, value) in flags {
            let value = expand(value.as_deref().unwrap_or_default())?;
            match name.as_str() {
                "from" if !add => from = Some(value),
                "chown" => chown = Some(value),
                "checksum" if add => checksum = Some(value),
                "checksum" => bail!("checksum can't be specified for COPY"),
                "chmod" => options.mode = Some(Chmod::parse(&value)?),
                // Every copy's layer stands on its own here already.
                "link" if value.is_empty() || value == "true" || value == "false" => {}
                "exclude" => excludes.push(value),
                "parents" if !add => options.parents = value != "false",
                other => bail!("--{other} is not supported here"),
            }
        }
        options.exclude = IgnoreRules::parse(&excludes.join("\n"))
            .map_err(|err| anyhow!("--exclude: {err:#}"))?;
        if checksum.is_some() && sources.len() != 1 {
            bail!("checksum can't be specified for multiple sources");
        }
        let mut copy_sources = Vec::new();
        // The downloads, kept until their layer is written.
        let mut remotes = Vec::new();
        for source in sources {
            copy_sources.push(match source {
                Source::Path(path) if from.is_none() => {
                    let path = expand(path)?;
                    if remote::is_git(&path) {
                        bail!("{path}: ADD of a git repository is not supported; clone it in a RUN step, or into the context");
                    }
                    if !remote::is_url(&path) {
                        if checksum.is_some() {
                            bail!("checksum can't be specified for non-HTTP(S) sources");
                        }
                        CopySource::Path(path)
                    } else if !add {
                        bail!("{path}: source can't be a URL for COPY; use ADD");
                    } else {
                        let fetched = remote::fetch(
                            &path,
                            checksum.as_deref(),
                            &self.tmp_dir(),
                            self.store.limits(),
                        )?;
                        let source = CopySource::Remote {
                            name: fetched.name.clone(),
                            host: fetched.file.path().to_owned(),
                            size: fetched.size,
                            mtime: fetched.mtime,
                        };
                        remotes.push(fetched);
                        source
                    }
                }
                Source::Path(path) => CopySource::Path(expand(path)?),
                // Named as BuildKit names it: the file `EOF` of `<<EOF`,
                // which a destination directory holds (a name that is no
                // plain file name stands for none).
                Source::HereDoc(doc) => CopySource::Inline {
                    name: std::path::Path::new(&doc.name)
                        .file_name()
                        .and_then(|name| name.to_str())
                        .filter(|name| *name != "..")
                        .unwrap_or("heredoc")
                        .to_owned(),
                    data: match doc.expand {
                        true => words::expand_heredoc(&doc.text, lookup)?.into_bytes(),
                        false => doc.text.clone().into_bytes(),
                    },
                },
            });
        }
        let dest = expand(dest)?;
        let dest = run::absolute(&current.state.workdir(), &dest);
        let dest = match dest.ends_with('/') || !dest.ends_with("/.") {
            true => dest,
            false => format!("{}/", dest.trim_end_matches('.')),
        };
        let image = self.layer_tree(&current.state, "the image")?;
        if let Some(spec) = &chown {
            options.owner = Some(users::chown_owner(&image, spec)?);
        }
        let (tree, from_key): (Box<dyn Tree>, String) = match &from {
            None => (Box::new(self.context.clone()), String::new()),
            Some(name) => {
                options.keep_owner = true;
                let source = self.copy_source(name)?;
                let tree = self.layer_tree(&source.state, name)?;
                (Box::new(tree), source.key.to_string())
            }
        };
        let owner = options.owner.unwrap_or((0, 0));
        let plan = copy::plan(tree.as_ref(), &copy_sources, &dest, &image, options)?;
        let content = match from {
            // A stage's or image's key names its content.
            Some(_) => format!("{from_key} {:?}", sources),
            // A download's URL and time too (the plan's key has its bytes).
            None => remotes.iter().fold(plan.key()?, |key, remote| {
                format!("{key} {} {} {}", remote.url, remote.digest, remote.mtime)
            }),
        };
        let key = Digest::of(
            format!(
                "{}\n{} {flags:?} {dest} {content}",
                current.key,
                if add { "ADD" } else { "COPY" }
            )
            .as_bytes(),
        );
        let created_by = format!("{} # buildkit", instruction.text);
        self.file_step(current, key, label, |build, state, _| {
            let layer = build.add_layer(|out| plan.write(&image, owner, out))?;
            state.layers.push(layer);
            Ok(created_by.clone())
        })
    }

    /// What `COPY --from=name` copies from: a stage, else an image.
    fn copy_source(&mut self, name: &str) -> Result<Finished> {
        if let Some(index) = self.stage_named(&name.to_lowercase()) {
            return self.stages[index].clone().with_context(|| {
                format!("--from={name}: that stage comes later in the Dockerfile")
            });
        }
        let image = self.image(name)?;
        Ok(Finished {
            state: ImageState::of_image(&image, &self.store.image_config(&image)?)?,
            key: Digest::of(format!("image {}", image.id).as_bytes()),
        })
    }

    /// The merged view of `state`'s layers.
    fn layer_tree(&self, state: &ImageState, what: &str) -> Result<LayerTree> {
        let layers = state
            .layers
            .iter()
            .map(|layer| self.store.layer(&layer.diff_id))
            .collect::<Result<Vec<_>>>()?;
        Ok(LayerTree::new(&layers, what))
    }

    /// A step with a layer: from the cache under `key`, or made by `make`
    /// (which changes the state and returns the history's `created_by`).
    fn file_step(
        &mut self,
        current: Finished,
        key: Digest,
        label: Option<&str>,
        make: impl FnOnce(&mut Self, &mut ImageState, usize) -> Result<String>,
    ) -> Result<Finished> {
        let id = self.next_step();
        let label = label.unwrap_or("step");
        report(&self.progress, Event::Started { id, name: label });
        if let Some(state) = self.cached(&key)? {
            report(&self.progress, Event::Cached { id });
            return Ok(Finished { state, key });
        }
        let started = Instant::now();
        let mut state = current.state;
        let made = make(self, &mut state, id).and_then(|created_by| {
            state.record(&now(), &created_by, false);
            self.store.cache(&key, &entry(&state)?)
        });
        if let Err(err) = made {
            report(
                &self.progress,
                Event::Failed {
                    id,
                    error: &format!("{err:#}"),
                },
            );
            return Err(err);
        }
        report(
            &self.progress,
            Event::Done {
                id,
                elapsed: started.elapsed(),
            },
        );
        Ok(Finished { state, key })
    }

    /// A step that changes the config only. It is cached with the next
    /// step that makes a layer, or the stage's end, not alone: an entry
    /// holds the whole config and history, and one per step of a long run
    /// of `ENV`s or `LABEL`s would take space quadratic in their number.
    fn metadata_step(
        &mut self,
        current: Finished,
        key: Digest,
        text: &str,
        change: impl FnOnce(&mut ImageState),
    ) -> Result<Finished> {
        if let Some(state) = self.cached(&key)? {
            return Ok(Finished { state, key });
        }
        let mut state = current.state;
        change(&mut state);
        state.record(&now(), &format!("{text} # buildkit"), true);
        Ok(Finished { state, key })
    }

    /// The cached state under `key`, unless `--no-cache`.
    fn cached(&self, key: &Digest) -> Result<Option<ImageState>> {
        if self.options.no_cache {
            return Ok(None);
        }
        let Some(entry) = self.store.cached(key)? else {
            return Ok(None);
        };
        let Ok(mut state) = serde_json::from_value::<ImageState>(entry.state) else {
            return Ok(None);
        };
        state.layers = entry.layers;
        Ok(Some(state))
    }

    /// Runs a `RUN` step through the runner and stores its layer.
    fn run_step(
        &mut self,
        id: usize,
        step: hull_runtime::StepOptions,
        text: &str,
    ) -> Result<hull_image::Layer> {
        let tmp = self.tmp_dir();
        fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let layer_file = tempfile::Builder::new()
            .prefix("layer-")
            .suffix(".tar")
            .tempfile_in(&tmp)
            .context("cannot create a layer file")?;
        let output = StepOutput {
            stdout: Box::new(OutputWriter {
                progress: self.progress.clone(),
                id,
            }),
            stderr: Box::new(OutputWriter {
                progress: self.progress.clone(),
                id,
            }),
        };
        let command = step_command(&step);
        let code = self.runner.run(step, output, layer_file.path())?;
        if code != 0 {
            return Err(BuildError::StepFailed {
                step: text.to_owned(),
                command,
                code,
            }
            .into());
        }
        let file = fs::File::open(layer_file.path()).context("cannot read the step's layer")?;
        self.store.add_layer(std::io::BufReader::new(file))
    }

    /// Where a build keeps its temporary files: under the hull root, which
    /// the hull machine shares.
    fn tmp_dir(&self) -> PathBuf {
        self.options.root.join("builder/tmp")
    }

    /// Writes a layer with `write` and stores it.
    fn add_layer(
        &self,
        write: impl FnOnce(&mut fs::File) -> Result<()>,
    ) -> Result<hull_image::Layer> {
        let tmp = self.tmp_dir();
        fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut file = tempfile::tempfile_in(&tmp).context("cannot create a layer file")?;
        write(&mut file)?;
        std::io::Seek::rewind(&mut file)?;
        self.store.add_layer(std::io::BufReader::new(file))
    }
}

/// A `RUN`'s command as BuildKit quotes it in errors.
fn step_command(step: &hull_runtime::StepOptions) -> String {
    step.argv.join(" ")
}

fn entry(state: &ImageState) -> Result<CacheEntry> {
    Ok(CacheEntry {
        state: serde_json::to_value(state)?,
        layers: state.layers.clone(),
    })
}

fn check_platform(platform: &str) -> Result<()> {
    hull_image::check_platform(platform).map_err(anyhow::Error::msg)
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
/// The most characters of an instruction an error quotes.
const QUOTED_CHARS: usize = 200;

/// `instruction` as an error names it: cut short, so that the reason after
/// it still shows on one line however long the instruction is.
fn in_error(instruction: &str) -> String {
    match instruction.char_indices().nth(QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &instruction[..cut]),
        None => instruction.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_quote_a_long_instruction_cut_short() {
        assert_eq!(in_error("RUN make"), "RUN make");
        let long = format!("ENV A={}", "日".repeat(100_000));
        let quoted = in_error(&long);
        assert_eq!(quoted.chars().count(), QUOTED_CHARS + 1);
        assert!(quoted.starts_with("ENV A=日") && quoted.ends_with('…'));
    }
}
