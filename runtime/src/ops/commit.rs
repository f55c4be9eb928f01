//! `commit`: a new image of a container: its image with the container's
//! config over the image's, the caller's changes over that, and one more
//! layer, what the container changed (see [`Runtime::write_layer`]).

use std::io::{BufReader, Read, Seek};

use anyhow::Context;
use hull_image::{ConfigChange, Digest, Image, ImageRef, Layer, Store};
use serde_json::{json, Map, Value};

use crate::container::{self, ContainerConfig, RootfsSource};
use crate::error::{Error, Result};
use crate::events;
use crate::timestamp::now;
use crate::Runtime;

/// How to commit a container.
pub struct CommitOptions<'a> {
    /// A name for the image (none: untagged).
    pub reference: Option<ImageRef>,
    /// The image's comment, in its config and history entry (`-m`).
    pub comment: String,
    /// The image's author (`-a`).
    pub author: String,
    /// Freeze the container's processes while its layer is read.
    pub pause: bool,
    /// Applied to the config last (`-c`), once the container's config is
    /// in it; its error stops the commit before anything is stored.
    pub change: ConfigChange<'a>,
}

impl Runtime {
    /// Commits the container `name` (running, or its files in a VM of
    /// their own) as a new image; returns its ID.
    pub fn commit(&self, name: &str, options: &CommitOptions<'_>) -> Result<Digest> {
        // Refused before its VM is asked for anything.
        base_image(&self.root, name)?;
        let mut layer = tempfile::tempfile_in(self.root.path())
            .context("cannot make a file for the container's changes")?;
        self.write_layer(name, options.pause, &mut layer)?;
        layer
            .rewind()
            .context("cannot read the container's changes")?;
        self.commit_layer(name, options, &mut BufReader::new(layer))
    }

    /// Commits the container `name` as a new image whose top layer is
    /// `layer`, a tar [`Runtime::write_layer`] wrote (where the container's
    /// VM runs); returns its ID. The image is stored here.
    pub fn commit_layer(
        &self,
        name: &str,
        options: &CommitOptions<'_>,
        layer: &mut dyn Read,
    ) -> Result<Digest> {
        let (config, image) = base_image(&self.root, name)?;
        let store = Store::open(self.root.path())?;
        let mut image_config = store.image_config(&image)?;
        let mut settings = image_config
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        apply_container(&mut settings, &config);
        (options.change)(&mut settings).map_err(|err| Error::invalid(format!("{err:#}")))?;
        // Nothing added is collected before the image names it.
        let _adding = store.hold_additions()?;
        let mut layers = image_layers(&image)?;
        layers.push(store.add_layer(layer)?);
        let created = now();
        let mut history = image_config
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut entry = json!({
            "created": created,
            "created_by": config.boot.argv.join(" "),
        });
        if !options.comment.is_empty() {
            entry["comment"] = json!(options.comment);
        }
        if !options.author.is_empty() {
            entry["author"] = json!(options.author);
        }
        history.push(entry);
        image_config["config"] = Value::Object(settings);
        image_config["history"] = Value::Array(history);
        image_config["created"] = json!(created);
        image_config["rootfs"] = json!({
            "type": "layers",
            "diff_ids": layers.iter().map(|layer| layer.diff_id.as_str()).collect::<Vec<_>>(),
        });
        if let Some(object) = image_config.as_object_mut() {
            // The base's author, comment and container are not this image's.
            object.remove("author");
            object.remove("comment");
            object.remove("container_config");
            object.insert("container".into(), json!(config.id));
            if !options.author.is_empty() {
                object.insert("author".into(), json!(options.author));
            }
            if !options.comment.is_empty() {
                object.insert("comment".into(), json!(options.comment));
            }
        }
        let bytes = serde_json::to_vec(&image_config).context("cannot write the image config")?;
        let tags: Vec<ImageRef> = options.reference.iter().cloned().collect();
        let id = store.add_built_image(&bytes, &layers, &tags)?;
        let reference = options.reference.as_ref().map(|reference| {
            let tag = reference.tag().unwrap_or("latest");
            format!("{}:{tag}", reference.familiar_name())
        });
        let attributes = [
            ("comment", options.comment.clone()),
            ("imageID", id.to_string()),
            ("imageRef", reference.unwrap_or_default()),
        ];
        events::container_event(self.root.path(), &config, "commit", &attributes);
        Ok(id)
    }
}

/// The container `name`'s config and the image it runs; one on a
/// `--rootfs` directory has none to commit onto.
fn base_image(root: &crate::root::StateRoot, name: &str) -> Result<(ContainerConfig, Image)> {
    let container = container::find(root, name)?;
    let RootfsSource::Image(id) = &container.config.boot.rootfs else {
        return Err(Error::invalid(format!(
            "container {name} runs on a --rootfs directory, not an image: only a container of an image can be committed"
        )));
    };
    let image = Store::open(root.path())?.resolve(id)?;
    Ok((container.config, image))
}

/// The layers of `image` as its manifest and config name them.
fn image_layers(image: &Image) -> anyhow::Result<Vec<Layer>> {
    image
        .manifest
        .layers
        .iter()
        .zip(image.config.rootfs().diff_ids())
        .map(|(blob, diff_id)| {
            Ok(Layer {
                diff_id: Digest::parse(diff_id)?,
                blob: Digest::parse(&blob.digest)?,
                blob_size: u64::try_from(blob.size).context("a negative layer size")?,
            })
        })
        .collect()
}

/// Puts the container's process settings over the image's, as Docker's
/// commit keeps them: its Env (without what hull adds for a run: HOSTNAME,
/// a terminal's TERM), Cmd, Entrypoint, WorkingDir, User, Labels and
/// ExposedPorts.
fn apply_container(settings: &mut Map<String, Value>, config: &ContainerConfig) {
    let boot = &config.boot;
    let hostname = format!("HOSTNAME={}", boot.hostname);
    let env: Vec<&String> = boot
        .env
        .iter()
        .filter(|entry| **entry != hostname)
        .filter(|entry| !(boot.tty.is_some() && *entry == "TERM=xterm"))
        .collect();
    settings.insert("Env".into(), json!(env));
    let (entrypoint, cmd) = boot.argv.split_at(boot.entrypoint_len.min(boot.argv.len()));
    let list = |words: &[String]| match words.is_empty() {
        true => Value::Null,
        false => json!(words),
    };
    settings.insert("Entrypoint".into(), list(entrypoint));
    settings.insert("Cmd".into(), list(cmd));
    settings.insert("WorkingDir".into(), json!(boot.cwd));
    settings.insert("User".into(), json!(boot.user));
    if !config.labels.is_empty() {
        let labels = settings.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        if let Some(labels) = labels.as_object_mut() {
            for (key, value) in &config.labels {
                labels.insert(key.clone(), json!(value));
            }
        }
    }
    if !config.exposed_ports.is_empty() {
        let ports: Map<String, Value> = config
            .exposed_ports
            .iter()
            .map(|port| (port.clone(), json!({})))
            .collect();
        settings.insert("ExposedPorts".into(), Value::Object(ports));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_containers_process_goes_over_the_images() {
        let config: ContainerConfig = serde_json::from_value(json!({
            "id": "c0ffee",
            "name": "box",
            "image": "busybox",
            "created": "2026-01-01T00:00:00Z",
            "labels": { "team": "b" },
            "exposed_ports": ["80/tcp"],
            "boot": {
                "kernel": "/vmlinux",
                "cpus": 1,
                "memory_mib": 512,
                "rootfs": { "Image": "sha256:00" },
                "argv": ["/entry", "serve", "--port", "80"],
                "entrypoint_len": 1,
                "env": ["PATH=/bin", "HOSTNAME=h1", "MODE=dev", "TERM=xterm"],
                "cwd": "/srv",
                "user": "app",
                "hostname": "h1",
                "tty": { "rows": 24, "cols": 80 }
            }
        }))
        .unwrap();
        let mut settings = serde_json::from_value(json!({
            "Env": ["PATH=/bin"],
            "Cmd": ["sh"],
            "Labels": { "team": "a", "kept": "yes" },
            "StopSignal": "SIGQUIT"
        }))
        .unwrap();
        apply_container(&mut settings, &config);
        assert_eq!(
            Value::Object(settings),
            json!({
                "Env": ["PATH=/bin", "MODE=dev"],
                "Entrypoint": ["/entry"],
                "Cmd": ["serve", "--port", "80"],
                "WorkingDir": "/srv",
                "User": "app",
                "Labels": { "team": "b", "kept": "yes" },
                "ExposedPorts": { "80/tcp": {} },
                "StopSignal": "SIGQUIT"
            })
        );
    }
}
