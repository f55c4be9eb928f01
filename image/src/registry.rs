//! Pulling images from and pushing them to OCI registries (oci-client on a
//! tokio runtime private to each call).
//!
//! HTTPS with bearer-token or basic auth; plain HTTP only for registries on
//! loopback (`localhost`, `127.0.0.1`, `[::1]`) or named as insecure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    OciDescriptor, OciImageManifest, IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;

use crate::auth::AuthFile;
use crate::blob_upload::BlobUploader;
use crate::digest::Digest;
use crate::image_index::{Manifest, MAX_INDEX_DEPTH};
use crate::limits::{LimitExceeded, Limits};
use crate::progress::{Progress, ProgressStyle};
use crate::quote::quoted;
use crate::reference::ImageRef;
use crate::store::Store;

const MANIFEST_TYPES: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// How many tags `list_tags` asks for at once.
const TAGS_PER_PAGE: usize = 1000;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest silence in the middle of a response.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) to talk to over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// The Docker-format credentials file (`hull login` writes it).
    pub auth_file: PathBuf,
    /// How to show transfer progress.
    pub progress: ProgressStyle,
}

/// What a pull stored.
#[derive(Debug)]
pub struct Pulled {
    /// The image ID (config digest).
    pub id: Digest,
    /// The digest of what the reference named: a multi-platform image's
    /// index, else its manifest (Docker prints it and records it in
    /// `RepoDigests`, so `NAME@DIGEST` finds the image).
    pub digest: Digest,
    /// False when the store had every layer already.
    pub downloaded: bool,
}

/// What a push sent.
#[derive(Debug)]
pub struct Pushed {
    /// The digest of the manifest pushed.
    pub digest: Digest,
    /// The manifest's length in bytes.
    pub size: usize,
}

/// Pulls `reference` into `store`: manifest (linux/amd64 from an index),
/// config and layers, each verified and each layer unpacked.
pub fn pull(store: &Store, reference: &ImageRef, options: &RegistryOptions) -> Result<Pulled> {
    let result = runtime()?.block_on(pull_async(store, reference, options));
    if result.is_err() {
        store.discard_unreferenced()?;
    }
    result.map_err(|err| one_line(err, reference))
}

/// The manifest or image index `reference` names, as its registry serves
/// it, checked against its digest and bounded as a pull's is (the limits
/// of the hull root `root`): what `docker manifest inspect` shows.
pub fn fetch_manifest_document(
    root: &Path,
    reference: &ImageRef,
    options: &RegistryOptions,
) -> Result<Vec<u8>> {
    let limits = Limits::load(root)?;
    let fetch = async {
        let client = client(reference, options);
        let auth = credentials(reference, options)?;
        fetch_manifest(&client, &limits, reference.as_oci(), &auth).await
    };
    runtime()?
        .block_on(fetch)
        .map_err(|err| one_line(err, reference))
}

/// The tags of `reference`'s repository in its registry, as it lists
/// them (`pull --all-tags`), page after page; each a valid tag.
pub fn list_tags(reference: &ImageRef, options: &RegistryOptions) -> Result<Vec<String>> {
    let list = async {
        let client = client(reference, options);
        let auth = credentials(reference, options)?;
        let mut tags: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let last = tags.last().map(String::as_str);
            let page = match client
                .list_tags(reference.as_oci(), &auth, Some(TAGS_PER_PAGE), last)
                .await
            {
                Ok(page) => page.tags,
                // Distribution answers `"tags": null` for a repository
                // whose every tag was deleted.
                Err(OciDistributionError::JsonError(err)) if is_null_list(&err) => Vec::new(),
                Err(err) => return Err(err.into()),
            };
            let full = page.len() >= TAGS_PER_PAGE;
            let before = tags.len();
            for tag in page {
                check_tag(&tag)?;
                if seen.insert(tag.clone()) {
                    tags.push(tag);
                }
            }
            // A registry that pages no further, or ignores `last`.
            if !full || tags.len() == before {
                break;
            }
        }
        if tags.is_empty() {
            bail!("repository {} has no tags", reference.name());
        }
        anyhow::Ok(tags)
    };
    runtime()?
        .block_on(list)
        .map_err(|err| match is_not_found(&err) {
            true => anyhow!("repository {} not found: name unknown", reference.name()),
            false => one_line(err, reference),
        })
}

/// Whether `err` is a tag list's `null` where a list of tags belongs.
fn is_null_list(err: &serde_json::Error) -> bool {
    err.is_data() && err.to_string().starts_with("invalid type: null")
}

/// Refuses a tag that Docker's grammar does not allow, as a registry's
/// list could name one (`x@sha256:...` would pin another manifest).
fn check_tag(tag: &str) -> Result<()> {
    let mut chars = tag.chars();
    let valid = tag.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid {
        bail!("the registry listed an invalid tag {}", quoted(tag));
    }
    Ok(())
}

/// Whether the registry said it has no such repository or manifest.
fn is_not_found(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| match cause.downcast_ref::<OciDistributionError>() {
            Some(OciDistributionError::RegistryError { envelope, .. }) => {
                envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                })
            }
            Some(OciDistributionError::ServerError { code: 404, .. }) => true,
            _ => false,
        })
}

/// Pushes the local image named `reference` to its registry.
pub fn push(store: &Store, reference: &ImageRef, options: &RegistryOptions) -> Result<Pushed> {
    let image = store.resolve(&reference.to_string())?;
    let pushed = runtime()?
        .block_on(push_async(
            store,
            reference,
            &image.manifest_digest,
            options,
        ))
        .map_err(|err| one_line(err, reference))?;
    let digest = &pushed.digest;
    store.add_image(digest, &[], &[format!("{}@{digest}", reference.name())])?;
    Ok(pushed)
}

/// The error of [`check_login`] when the registry refuses the credentials
/// (rather than cannot be asked).
#[derive(Debug, thiserror::Error)]
#[error("login to {registry} failed: unauthorized: incorrect username or password")]
pub struct LoginRefused {
    registry: String,
}

/// Checks `user`/`password` against `registry` as `docker login` does:
/// `GET /v2/` with basic auth, or the token service it points to.
pub fn check_login(
    registry: &str,
    user: &str,
    password: &str,
    options: &RegistryOptions,
) -> Result<()> {
    runtime()?.block_on(check_login_async(registry, user, password, options))
}

async fn check_login_async(
    registry: &str,
    user: &str,
    password: &str,
    options: &RegistryOptions,
) -> Result<()> {
    let scheme = scheme(registry, options);
    let host = if registry == "docker.io" {
        "index.docker.io"
    } else {
        registry
    };
    let http = http_client()?;
    let unreachable =
        |err: reqwest::Error| anyhow!("cannot reach registry {registry}: {}", root_cause(&err));
    let response = http
        .get(format!("{scheme}://{host}/v2/"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .map_err(unreachable)?;
    if response.status().is_success() {
        return Ok(());
    }
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if response.status() == reqwest::StatusCode::UNAUTHORIZED {
        if let Some(params) = challenge.strip_prefix("Bearer ") {
            let param = |name: &str| {
                params.split(',').find_map(|p| {
                    let (key, value) = p.trim().split_once('=')?;
                    (key == name).then(|| value.trim_matches('"').to_owned())
                })
            };
            let realm = param("realm")
                .ok_or_else(|| anyhow!("{registry} sent a bearer challenge without a realm"))?;
            let mut token_request = http.get(&realm).basic_auth(user, Some(password));
            if let Some(service) = param("service") {
                token_request = token_request.query(&[("service", service)]);
            }
            let token = token_request.send().await.map_err(unreachable)?;
            if token.status().is_success() {
                return Ok(());
            }
        }
        return Err(LoginRefused {
            registry: registry.to_owned(),
        }
        .into());
    }
    bail!(
        "login to {registry} failed: the registry answered {}",
        response.status()
    )
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the network runtime")
}

fn client(reference: &ImageRef, options: &RegistryOptions) -> Client {
    let protocol = match scheme(reference.registry(), options) {
        "http" => ClientProtocol::Http,
        _ => ClientProtocol::Https,
    };
    Client::new(ClientConfig {
        protocol,
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        ..ClientConfig::default()
    })
}

/// An HTTP client for what oci-client does not do, with its timeouts.
fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .context("cannot create an HTTP client")
}

/// An HTTP client for uploads, whose answer comes only once the whole
/// body is sent: no read timeout (reqwest's would count from the start).
fn upload_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .context("cannot create an HTTP client")
}

/// `http` or `https`, as [`is_insecure`] says for `registry`.
fn scheme(registry: &str, options: &RegistryOptions) -> &'static str {
    match is_insecure(registry, &options.insecure_registries) {
        true => "http",
        false => "https",
    }
}

/// Loopback registries, and the ones the user named, speak plain HTTP.
fn is_insecure(registry: &str, insecure: &[String]) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1") || insecure.iter().any(|r| r == registry)
}

fn credentials(reference: &ImageRef, options: &RegistryOptions) -> Result<RegistryAuth> {
    let auth = AuthFile::load(&options.auth_file)?;
    Ok(match auth.get(reference.registry())? {
        Some((user, password)) => RegistryAuth::Basic(user, password),
        None => RegistryAuth::Anonymous,
    })
}

async fn pull_async(
    store: &Store,
    reference: &ImageRef,
    options: &RegistryOptions,
) -> Result<Pulled> {
    let client = client(reference, options);
    let auth = credentials(reference, options)?;
    let oci_ref = reference.as_oci();
    let mut bytes = fetch_manifest(&client, store.limits(), oci_ref, &auth).await?;
    let named = Digest::of(&bytes);
    let mut depth = 0;
    loop {
        match Manifest::parse(&bytes).with_context(|| format!("cannot pull {reference}"))? {
            Manifest::Image => break,
            Manifest::NotAnImage(what) => {
                bail!("{reference} is not a container image: it is {what}")
            }
            Manifest::Index(index) => {
                depth += 1;
                if depth > MAX_INDEX_DEPTH {
                    bail!("the image indexes of {reference} nest more than {MAX_INDEX_DEPTH} deep");
                }
                let entry = index
                    .pick()
                    .ok_or_else(|| anyhow!("{reference} has no linux/amd64 image"))?;
                let pinned = oci_ref.clone_with_digest(entry.digest.clone());
                bytes = fetch_manifest(&client, store.limits(), &pinned, &auth).await?;
            }
        }
    }
    let manifest: OciImageManifest =
        serde_json::from_slice(&bytes).context("the registry sent an invalid image manifest")?;
    let version = reference.tag().or(reference.digest()).unwrap_or("latest");
    options.progress.message(&format!(
        "{version}: Pulling from {}",
        reference.repository()
    ));

    let _adding = store.adding_after_sweep()?;
    let config_digest = Digest::parse(&manifest.config.digest)?;
    if !store.has_blob(&config_digest) {
        fetch_config(&client, store, oci_ref, &manifest.config, &config_digest).await?;
    }
    let config = store.read_config(&config_digest, manifest.layers.len())?;
    let diff_ids = config.rootfs().diff_ids();

    let progress = Arc::new(Progress::new(
        options.progress,
        &manifest.layers,
        "Downloading",
    ));
    let mut tasks = Vec::new();
    for (index, (layer, diff_id)) in manifest.layers.iter().zip(diff_ids).enumerate() {
        let diff_id = Digest::parse(diff_id)?;
        tasks.push(fetch_layer(
            &client,
            store,
            oci_ref,
            layer.clone(),
            diff_id,
            index,
            progress.clone(),
        ));
    }
    let downloaded = futures_util::future::try_join_all(tasks)
        .await?
        .into_iter()
        .any(|d| d);
    progress.finish();

    let manifest_digest = store.write_blob(&bytes)?;
    let tags: Vec<String> = reference.tagged().into_iter().collect();
    let repo_digest = format!("{}@{named}", reference.name());
    let id = store.add_image(&manifest_digest, &tags, &[repo_digest])?;
    Ok(Pulled {
        id,
        digest: named,
        downloaded,
    })
}

/// Fetches a manifest and checks it against its digest ourselves: the
/// pinned one, or the one the registry announced. oci-client reads it
/// whole; it is refused past `max_document_bytes` all the same.
async fn fetch_manifest(
    client: &Client,
    limits: &Limits,
    reference: &oci_client::Reference,
    auth: &RegistryAuth,
) -> Result<Vec<u8>> {
    let (bytes, announced) = client
        .pull_manifest_raw(reference, auth, MANIFEST_TYPES)
        .await?;
    let len = bytes.len() as u64;
    if len > limits.max_document_bytes {
        return Err(LimitExceeded::document("the manifest", Some(len), limits).into());
    }
    let actual = Digest::of(&bytes);
    let expected = reference.digest().unwrap_or(&announced);
    if actual.as_str() != expected {
        bail!("digest mismatch: manifest is {actual}, expected {expected}");
    }
    Ok(bytes)
}

/// Downloads the image config `descriptor` (digest `digest`) into the
/// store, up to `max_document_bytes` and the size the manifest gives it.
async fn fetch_config(
    client: &Client,
    store: &Store,
    reference: &oci_client::Reference,
    descriptor: &OciDescriptor,
    digest: &Digest,
) -> Result<()> {
    let limits = store.limits();
    let size = descriptor_size(descriptor, "the image config")?;
    if size > limits.max_document_bytes {
        return Err(LimitExceeded::document("the image config", Some(size), limits).into());
    }
    let mut stream = client.pull_blob_stream(reference, descriptor).await?;
    let mut writer = store.blob_writer()?;
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| match received < size {
            true => anyhow!("the image config is truncated: got {received} of {size} bytes"),
            false => anyhow!("digest mismatch for the image config: {err}"),
        })?;
        received += chunk.len() as u64;
        if received > size {
            bail!("the image config is oversized: more than the {size} bytes its descriptor gives");
        }
        writer
            .write_all(&chunk)
            .context("cannot write the image config")?;
    }
    store.commit_blob(writer, digest, Some(size))
}

/// The size a descriptor gives, which must not be negative.
fn descriptor_size(descriptor: &OciDescriptor, what: &str) -> Result<u64> {
    u64::try_from(descriptor.size).map_err(|_| anyhow!("the manifest gives {what} a negative size"))
}

/// Downloads (unless stored) and unpacks (unless unpacked from the same
/// blob) one layer; returns whether it was downloaded. A blob may not be
/// larger than its descriptor says, nor than `max_layer_bytes`.
async fn fetch_layer(
    client: &Client,
    store: &Store,
    reference: &oci_client::Reference,
    layer: OciDescriptor,
    diff_id: Digest,
    index: usize,
    progress: Arc<Progress>,
) -> Result<bool> {
    let blob = Digest::parse(&layer.digest)?;
    // The blob too: `save` and `push` send it, and the store keeps a layer
    // longer than a blob no image names any more.
    if store.has_layer_from(&blob, &diff_id) && store.has_blob(&blob) {
        progress.done(index, "Already exists");
        return Ok(false);
    }
    let downloaded = !store.has_blob(&blob);
    if downloaded {
        let what = format!("layer {}", blob.short());
        let size = descriptor_size(&layer, &what)?;
        if size > store.limits().max_layer_bytes {
            return Err(LimitExceeded::layer_bytes(what, Some(size), store.limits()).into());
        }
        let mut stream = client.pull_blob_stream(reference, &layer).await?;
        let mut writer = store.blob_writer()?;
        let mut received = 0u64;
        while let Some(chunk) = stream.next().await {
            // oci-client checks the digest when the stream ends, so a short
            // blob shows up as a digest error: say which it was.
            let chunk = chunk.map_err(|err| match received < size {
                true => anyhow!("{what} is truncated: got {received} of {size} bytes"),
                false => anyhow!("digest mismatch for {what}: {err}"),
            })?;
            received += chunk.len() as u64;
            if received > size {
                bail!("{what} is oversized: more than the {size} bytes its descriptor gives");
            }
            writer
                .write_all(&chunk)
                .context("cannot write layer blob")?;
            progress.advance(index, chunk.len() as u64);
        }
        store.commit_blob(writer, &blob, Some(size))?;
        progress.done(index, "Download complete");
    }
    let store_clone = store.clone();
    let layer_blob = blob.clone();
    tokio::task::spawn_blocking(move || store_clone.unpack_layer(&layer_blob, &diff_id))
        .await
        .context("unpacking panicked")??;
    progress.done(index, "Pull complete");
    Ok(downloaded)
}

async fn push_async(
    store: &Store,
    reference: &ImageRef,
    manifest_digest: &Digest,
    options: &RegistryOptions,
) -> Result<Pushed> {
    let client = client(reference, options);
    let auth = credentials(reference, options)?;
    let oci_ref = reference.as_oci();
    let scheme = scheme(reference.registry(), options);
    let clients = (http_client()?, upload_client()?);
    let uploader = BlobUploader::new(&client, clients, scheme, oci_ref, &auth).await?;
    let manifest_bytes = store.read_blob(manifest_digest)?;
    let manifest: OciImageManifest = serde_json::from_slice(&manifest_bytes)?;
    let progress = Progress::new(options.progress, &manifest.layers, "Pushing");
    for (index, layer) in manifest.layers.iter().enumerate() {
        let digest = Digest::parse(&layer.digest)?;
        if uploader.exists(&digest).await? {
            progress.done(index, "Layer already exists");
            continue;
        }
        let size = store.blob_size(&digest)?;
        let bar = progress.clone();
        uploader
            .upload(&digest, &store.blob_path(&digest), size, move |bytes| {
                bar.advance(index, bytes)
            })
            .await?;
        progress.done(index, "Pushed");
    }
    let config_digest = Digest::parse(&manifest.config.digest)?;
    if !uploader.exists(&config_digest).await? {
        let size = store.blob_size(&config_digest)?;
        uploader
            .upload(
                &config_digest,
                &store.blob_path(&config_digest),
                size,
                |_| {},
            )
            .await?;
    }
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| OCI_IMAGE_MEDIA_TYPE.to_owned());
    let content_type = media_type.parse().context("invalid manifest media type")?;
    let size = manifest_bytes.len();
    client
        .push_manifest_raw(oci_ref, manifest_bytes, content_type)
        .await?;
    progress.finish();
    Ok(Pushed {
        digest: manifest_digest.clone(),
        size,
    })
}

/// One line saying what went wrong, in the user's terms.
fn one_line(err: anyhow::Error, reference: &ImageRef) -> anyhow::Error {
    let registry = reference.registry();
    for cause in err.chain() {
        if let Some(request) = cause.downcast_ref::<reqwest::Error>() {
            if request.is_connect() || request.is_timeout() {
                return anyhow!("cannot reach registry {registry}: {}", root_cause(request));
            }
        }
        let Some(oci) = cause.downcast_ref::<OciDistributionError>() else {
            continue;
        };
        let message = match oci {
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::ServerError {
                code: 401 | 403, ..
            } => {
                format!("unauthorized: authentication required for {registry} (try hull login {registry})")
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                match envelope.errors.first().map(|e| &e.code) {
                    Some(OciErrorCode::Unauthorized | OciErrorCode::Denied) => {
                        format!("unauthorized: authentication required for {registry} (try hull login {registry})")
                    }
                    Some(
                        OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound,
                    ) => {
                        format!("manifest for {reference} not found: manifest unknown")
                    }
                    _ => envelope
                        .errors
                        .iter()
                        .map(|e| format!("{:?}: {}", e.code, e.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                }
            }
            OciDistributionError::ServerError { code: 404, .. } => {
                format!("manifest for {reference} not found: manifest unknown")
            }
            OciDistributionError::RequestError(request)
                if request.is_connect() || request.is_timeout() =>
            {
                format!("cannot reach registry {registry}: {}", root_cause(request))
            }
            OciDistributionError::DigestError(digest) => format!("digest mismatch: {digest}"),
            other => other.to_string(),
        };
        return anyhow!("{}", flatten(&message));
    }
    anyhow!("{}", flatten(&format!("{err:#}")))
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

fn flatten(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_tags_follow_dockers_grammar() {
        for tag in ["latest", "v1.2.3-rc_1", "_x", &"a".repeat(128)] {
            assert!(check_tag(tag).is_ok(), "{tag}");
        }
        for tag in ["", ".x", "-x", "x@sha256:00", "a b", &"a".repeat(129)] {
            let err = check_tag(tag).unwrap_err().to_string();
            assert!(
                err.starts_with("the registry listed an invalid tag \""),
                "{err}"
            );
        }
    }

    #[test]
    fn only_loopback_and_named_registries_are_plain_http() {
        let named = vec!["registry.lan:5000".to_owned()];
        for registry in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:41234",
            "[::1]:5000",
            "registry.lan:5000",
        ] {
            assert!(is_insecure(registry, &named), "{registry}");
        }
        for registry in [
            "docker.io",
            "registry.lan",
            "localhost.evil.example",
            "127.0.0.2:5000",
        ] {
            assert!(!is_insecure(registry, &named), "{registry}");
        }
    }
}
