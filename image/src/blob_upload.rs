//! A push's blobs, as Docker sends them: a blob the repository has already
//! is not sent again (`HEAD`, Docker's "Layer already exists"), and the
//! others stream from the store's files in one monolithic upload (`POST`
//! then `PUT ?digest=`), never whole in memory. oci-client 0.15 pushes a
//! blob from a slice and cannot ask whether one is there; it keeps the
//! token it negotiates, which these requests carry, and pushes the
//! manifest.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use futures_util::stream::{self, Stream};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};
use tokio::io::AsyncReadExt;

use crate::digest::Digest;

/// How much of a blob one read sends.
const CHUNK_BYTES: usize = 1 << 20;

/// Uploads to one repository of a registry.
pub(crate) struct BlobUploader {
    http: reqwest::Client,
    /// `{scheme}://{registry}/v2/{repository}/blobs/`.
    blobs: Url,
    authorization: Option<HeaderValue>,
    /// The registry as the user named it.
    registry: String,
}

/// The registry refused the credentials, or wants some.
#[derive(Debug, thiserror::Error)]
#[error("unauthorized: authentication required for {registry} (try hull login {registry})")]
pub(crate) struct Unauthorized {
    registry: String,
}

impl BlobUploader {
    /// Authenticates `client` for pushing to `reference`'s repository as
    /// `auth` (the token it keeps serves its manifest push too), and an
    /// uploader carrying the same credentials.
    pub(crate) async fn new(
        client: &Client,
        http: reqwest::Client,
        scheme: &str,
        reference: &Reference,
        auth: &RegistryAuth,
    ) -> Result<BlobUploader> {
        let token = client
            .auth(reference, auth, RegistryOperation::Push)
            .await?;
        let authorization = match (token, auth) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            (None, RegistryAuth::Basic(user, password)) => {
                use base64::Engine;
                let pair =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {pair}"))
            }
            (None, _) => None,
        };
        let authorization = authorization
            .map(|value| HeaderValue::from_str(&value))
            .transpose()
            .context("the registry's token is not a valid header")?;
        let blobs = format!(
            "{scheme}://{}/v2/{}/blobs/",
            reference.resolve_registry(),
            reference.repository()
        );
        Ok(BlobUploader {
            http,
            blobs: Url::parse(&blobs).with_context(|| format!("bad registry address {blobs}"))?,
            authorization,
            registry: reference.registry().to_owned(),
        })
    }

    /// Whether the repository has the blob `digest`.
    pub(crate) async fn exists(&self, digest: &Digest) -> Result<bool> {
        // `./`: else `sha256:` would read as a URL scheme.
        let url = self.blobs.join(&format!("./{digest}"))?;
        let response = self.authorized(self.http.head(url)).send().await?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => Err(self.refusal(status, format!("asked for blob {digest}: {status}"))),
        }
    }

    /// Sends the blob `digest` of `size` bytes from the file `path`.
    pub(crate) async fn upload(&self, digest: &Digest, path: &Path, size: u64) -> Result<()> {
        let start = self.blobs.join("uploads/")?;
        let response = self.authorized(self.http.post(start)).send().await?;
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
        // A relative location is the registry's.
        let mut put = self.blobs.join(location)?;
        put.query_pairs_mut().append_pair("digest", digest.as_str());
        let file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("cannot open {}", path.display()))?;
        let request = self
            .http
            .put(put)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(chunks(file)));
        let response = self.authorized(request).send().await?;
        if response.status() != StatusCode::CREATED {
            let status = response.status();
            let why = format!("uploading blob {digest}: {}", answer(response).await);
            return Err(self.refusal(status, why));
        }
        Ok(())
    }

    /// The error of a request the registry answered with `status`.
    fn refusal(&self, status: StatusCode, why: String) -> anyhow::Error {
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Unauthorized {
                registry: self.registry.clone(),
            }
            .into(),
            _ => anyhow!("the registry refused {why}"),
        }
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.authorization {
            Some(value) => request.header(AUTHORIZATION, value.clone()),
            None => request,
        }
    }
}

/// `file`'s bytes, a chunk at a time.
fn chunks(file: tokio::fs::File) -> impl Stream<Item = std::io::Result<Vec<u8>>> + Send {
    stream::try_unfold(file, |mut file| async move {
        let mut chunk = vec![0; CHUNK_BYTES];
        let read = file.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        chunk.truncate(read);
        Ok(Some((chunk, file)))
    })
}

/// A refusal's status and the start of its body, on one line.
async fn answer(response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let body: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match body.is_empty() {
        true => status.to_string(),
        false => format!("{status} {}", body.chars().take(200).collect::<String>()),
    }
}
