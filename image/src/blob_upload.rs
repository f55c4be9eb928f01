//! A push's blobs, as Docker sends them: a blob the repository has already
//! is not sent again (`HEAD`, Docker's "Layer already exists"), and the
//! others stream from the store's files in one monolithic upload (`POST`
//! then `PUT ?digest=`), never whole in memory. oci-client 0.15 pushes a
//! blob from a slice and cannot ask whether one is there; it negotiates the
//! push token, which these requests carry (to the registry alone), and
//! pushes the manifest.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use futures_util::stream::{self, Stream};
use futures_util::StreamExt;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use tokio::io::AsyncReadExt;

use crate::digest::Digest;

/// How much of a blob one read sends.
const CHUNK_BYTES: usize = 1 << 20;
/// How much of a refusal's body its error quotes.
const ANSWER_BYTES: usize = 200;
/// Hosts that are one registry: Docker Hub's API answers on both.
const DOCKER_HUB: [&str; 2] = ["index.docker.io", "registry-1.docker.io"];

/// Uploads to one repository of a registry.
pub(crate) struct BlobUploader {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    /// For requests that get an answer at once.
    http: reqwest::Client,
    /// For uploads, whose answer comes only once the blob is sent.
    upload_http: reqwest::Client,
    /// `{scheme}://{registry}/v2/{repository}/blobs/`.
    blobs: Url,
    /// The credentials for the registry, negotiated again when it says
    /// they expired.
    authorization: Mutex<Option<HeaderValue>>,
}

/// The registry refused the credentials, or wants some.
#[derive(Debug, thiserror::Error)]
#[error("unauthorized: authentication required for {registry} (try hull login {registry})")]
pub(crate) struct Unauthorized {
    registry: String,
}

/// The registry refused this user the repository.
#[derive(Debug, thiserror::Error)]
#[error("denied: requested access to the resource is denied")]
pub(crate) struct Denied;

impl BlobUploader {
    /// Authenticates `client` for pushing to `reference`'s repository as
    /// `auth` (the token it keeps serves its manifest push too), and an
    /// uploader carrying the same credentials; `http` for quick requests,
    /// `upload_http` (without a read timeout) for uploads.
    pub(crate) async fn new(
        client: &Client,
        (http, upload_http): (reqwest::Client, reqwest::Client),
        scheme: &str,
        reference: &Reference,
        auth: &RegistryAuth,
    ) -> Result<BlobUploader> {
        let blobs = format!(
            "{scheme}://{}/v2/{}/blobs/",
            reference.resolve_registry(),
            reference.repository()
        );
        let uploader = BlobUploader {
            client: client.clone(),
            reference: reference.clone(),
            auth: auth.clone(),
            http,
            upload_http,
            blobs: Url::parse(&blobs).with_context(|| format!("bad registry address {blobs}"))?,
            authorization: Mutex::new(None),
        };
        uploader.authenticate().await?;
        Ok(uploader)
    }

    /// Negotiates the credentials for pushing (again).
    async fn authenticate(&self) -> Result<()> {
        let token = self
            .client
            .auth(&self.reference, &self.auth, RegistryOperation::Push)
            .await?;
        let value = match (token, &self.auth) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            (None, RegistryAuth::Basic(user, password)) => {
                use base64::Engine;
                let pair =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {pair}"))
            }
            (None, _) => None,
        };
        let value = value
            .map(|value| HeaderValue::from_str(&value))
            .transpose()
            .context("the registry's token is not a valid header")?;
        *self
            .authorization
            .lock()
            .expect("authorization lock poisoned") = value;
        Ok(())
    }

    /// Whether the repository has the blob `digest`.
    pub(crate) async fn exists(&self, digest: &Digest) -> Result<bool> {
        // `./`: else `sha256:` would read as a URL scheme.
        let url = self.blobs.join(&format!("./{digest}"))?;
        let response = self
            .send_again_if_expired(|| self.http.head(url.clone()))
            .await?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => Err(self.refusal(status, format!("asked for blob {digest}: {status}"))),
        }
    }

    /// Sends the blob `digest` of `size` bytes from the file `path`,
    /// telling `sent` the size of each chunk as the request takes it.
    pub(crate) async fn upload(
        &self,
        digest: &Digest,
        path: &Path,
        size: u64,
        sent: impl Fn(u64) + Send + 'static,
    ) -> Result<()> {
        let start = self.blobs.join("uploads/")?;
        let response = self
            .send_again_if_expired(|| self.http.post(start.clone()))
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            let status = response.status();
            let why = format!(
                "starting an upload of blob {digest}: {}",
                answer(response).await
            );
            return Err(self.refusal(status, why));
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| anyhow!("the registry started an upload without a Location"))?;
        // Relative to the request that got it.
        let mut put = start.join(location)?;
        put.query_pairs_mut().append_pair("digest", digest.as_str());
        let file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("cannot open {}", path.display()))?;
        let request = self
            .upload_http
            .put(put.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(chunks(file, sent)));
        // Credentials go to the registry alone, never elsewhere or over
        // plain HTTP where it spoke HTTPS.
        let request = match self.is_registry(&put) {
            true => self.authorized(request),
            false => request,
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("uploading blob {digest}"))?;
        if response.status() != StatusCode::CREATED {
            let status = response.status();
            let why = format!("uploading blob {digest}: {}", answer(response).await);
            return Err(self.refusal(status, why));
        }
        Ok(())
    }

    /// Sends the request `build` makes; if the registry says the
    /// credentials expired, negotiates them again and sends it once more
    /// (requests without a body only).
    async fn send_again_if_expired(&self, build: impl Fn() -> RequestBuilder) -> Result<Response> {
        let response = self.authorized(build()).send().await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        self.authenticate().await?;
        Ok(self.authorized(build()).send().await?)
    }

    fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        let value = self
            .authorization
            .lock()
            .expect("authorization lock poisoned")
            .clone();
        match value {
            Some(value) => request.header(AUTHORIZATION, value),
            None => request,
        }
    }

    /// Whether `url` is the registry's: same scheme, host and port (Docker
    /// Hub's two API hosts being one).
    fn is_registry(&self, url: &Url) -> bool {
        let host = |url: &Url| {
            let host = url.host_str().unwrap_or_default().to_owned();
            match DOCKER_HUB.contains(&host.as_str()) {
                true => DOCKER_HUB[0].to_owned(),
                false => host,
            }
        };
        url.scheme() == self.blobs.scheme()
            && host(url) == host(&self.blobs)
            && url.port_or_known_default() == self.blobs.port_or_known_default()
    }

    /// The error of a request the registry answered with `status`.
    fn refusal(&self, status: StatusCode, why: String) -> anyhow::Error {
        match status {
            StatusCode::UNAUTHORIZED => Unauthorized {
                registry: self.reference.registry().to_owned(),
            }
            .into(),
            StatusCode::FORBIDDEN => Denied.into(),
            _ => anyhow!("the registry refused {why}"),
        }
    }
}

/// `file`'s bytes, a chunk at a time, each told to `sent` as it is taken.
fn chunks(
    file: tokio::fs::File,
    sent: impl Fn(u64) + Send + 'static,
) -> impl Stream<Item = std::io::Result<Vec<u8>>> + Send {
    stream::try_unfold((file, sent), |(mut file, sent)| async move {
        let mut chunk = vec![0; CHUNK_BYTES];
        let read = file.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        chunk.truncate(read);
        sent(read as u64);
        Ok(Some((chunk, (file, sent))))
    })
}

/// A refusal's status and the start of its body, on one line.
async fn answer(response: Response) -> String {
    let status = response.status();
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= ANSWER_BYTES {
            break;
        }
    }
    let text = String::from_utf8_lossy(&body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.is_empty() {
        true => status.to_string(),
        false => format!(
            "{status} {}",
            text.chars().take(ANSWER_BYTES).collect::<String>()
        ),
    }
}
