//! Downloading one file over HTTP(S), as a build's `ADD <url>` does
//! (reqwest on a tokio runtime private to each call, as registry calls
//! run): its bytes into a file, hashed as they come, held to the layer
//! size limit, with the `Last-Modified` time BuildKit gives the file.

use std::io::Write;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::PrimitiveDateTime;

use crate::digest::{Digest, Hasher};
use crate::limits::{LimitExceeded, Limits};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest silence in the middle of a response.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// HTTP's date format (RFC 9110's IMF-fixdate), always in GMT.
const HTTP_DATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// What a download wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// The sha256 of the bytes.
    pub digest: Digest,
    /// How many there were.
    pub size: u64,
    /// The response's `Last-Modified` time, if it had a valid one.
    pub last_modified: Option<SystemTime>,
}

/// Downloads `url` (http or https) into `out`: an error for a status
/// other than success, a server that cannot be reached, or more bytes than
/// `limits` allow a layer. Every error names the URL.
pub fn download(url: &str, out: &mut impl Write, limits: &Limits) -> Result<Downloaded> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the network runtime")?;
    runtime
        .block_on(fetch(url, out, limits))
        .with_context(|| format!("cannot download {url}"))
}

async fn fetch(url: &str, out: &mut impl Write, limits: &Limits) -> Result<Downloaded> {
    let parsed = reqwest::Url::parse(url).map_err(|err| anyhow!("not a valid URL: {err}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("only http and https URLs can be downloaded");
    }
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .context("cannot create an HTTP client")?;
    let unreachable = |err: reqwest::Error| anyhow!("{}", root_cause(&err));
    let mut response = client.get(parsed).send().await.map_err(unreachable)?;
    let status = response.status();
    if !status.is_success() {
        bail!("the server answered {status}");
    }
    let what = || format!("the download {url}");
    let limit = limits.max_layer_bytes;
    if let Some(claimed) = response.content_length().filter(|len| *len > limit) {
        return Err(LimitExceeded::layer_bytes(what(), Some(claimed), limits).into());
    }
    let last_modified = response
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|value| value.to_str().ok())
        .and_then(http_date);
    let mut hasher = Hasher::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if hasher.len() + chunk.len() as u64 > limit {
            return Err(LimitExceeded::layer_bytes(what(), None, limits).into());
        }
        hasher.update(&chunk);
        out.write_all(&chunk).context("cannot write the download")?;
    }
    out.flush().context("cannot write the download")?;
    let size = hasher.len();
    Ok(Downloaded {
        digest: hasher.finish(),
        size,
        last_modified,
    })
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) as a time.
fn http_date(text: &str) -> Option<SystemTime> {
    let time = PrimitiveDateTime::parse(text.trim(), HTTP_DATE).ok()?;
    Some(time.assume_utc().into())
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    use super::*;

    /// Serves one request on loopback with `response` (headers and body)
    /// and returns the URL of `path` on it.
    fn serve_once(path: &str, response: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let mut stream = stream;
            stream.write_all(&response).unwrap();
        });
        url
    }

    fn response(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn a_download_is_hashed_and_keeps_its_last_modified_time() {
        let url = serve_once(
            "/files/tool.tar.gz",
            response(
                "200 OK",
                "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
                b"contents",
            ),
        );
        let mut out = Vec::new();
        let got = download(&url, &mut out, &Limits::default()).unwrap();
        assert_eq!(out, b"contents");
        assert_eq!(got.digest, Digest::of(b"contents"));
        assert_eq!(got.size, 8);
        assert_eq!(
            got.last_modified,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784111777))
        );
    }

    #[test]
    fn errors_name_the_url_and_what_went_wrong() {
        let url = serve_once("/missing", response("404 Not Found", "", b"no"));
        let err = format!(
            "{:#}",
            download(&url, &mut Vec::new(), &Limits::default()).unwrap_err()
        );
        assert_eq!(
            err,
            format!("cannot download {url}: the server answered 404 Not Found")
        );

        // A port nothing listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/x");
        let err = format!(
            "{:#}",
            download(&url, &mut Vec::new(), &Limits::default()).unwrap_err()
        );
        assert!(
            err.starts_with(&format!("cannot download {url}: ")),
            "{err}"
        );
        assert!(err.to_lowercase().contains("refused"), "{err}");

        let limits = Limits {
            max_layer_bytes: 4,
            ..Limits::default()
        };
        let url = serve_once("/big", response("200 OK", "", b"too big"));
        let err = format!(
            "{:#}",
            download(&url, &mut Vec::new(), &limits).unwrap_err()
        );
        assert!(err.contains("claims 7 bytes, over the limit of 4"), "{err}");
        assert!(err.contains("max-layer-bytes"), "{err}");

        let err = download("ftp://example.com/x", &mut Vec::new(), &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("ftp://example.com/x"), "{err}");
    }
}
