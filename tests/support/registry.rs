//! A real OCI registry for the image tests: Debian's `docker-registry`
//! (CNCF distribution) on a free 127.0.0.1 port with its own temporary
//! storage, stopped on drop. Plus a minimal HTTP client to push test images
//! into it directly, and a registry that answers everything with 401.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::repo_root;

const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// A running `docker-registry` serving plain HTTP on loopback.
pub struct Registry {
    child: Child,
    storage: tempfile::TempDir,
    port: u16,
}

impl Registry {
    /// Starts a registry, installing Debian's package first if needed.
    pub fn start() -> Registry {
        if !Path::new(REGISTRY_BINARY).is_file() {
            let status = Command::new(repo_root().join("scripts/apt-ensure"))
                .arg("docker-registry")
                .status()
                .expect("run scripts/apt-ensure");
            assert!(status.success(), "cannot install docker-registry");
        }
        let storage = tempfile::Builder::new()
            .prefix("hull-registry-")
            .tempdir()
            .expect("registry temp dir");
        let port = free_port();
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.path().join("data").display()
            ),
        )
        .expect("write registry config");
        let child = Command::new(REGISTRY_BINARY)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            child,
            storage,
            port,
        };
        registry.wait_ready();
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the registry keeps the blob `digest` (`sha256:<hex>`), for tests
    /// that corrupt it.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.storage
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(response) = http(&self.host(), "GET", "/v2/", &[], b"") {
                if response.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry did not come up on {}", self.host());
    }

    /// Uploads `data`, whose digest is `digest`, as a blob of `repository`
    /// (an upload session, then one PUT with the whole blob).
    pub fn push_blob(&self, repository: &str, digest: &str, data: &[u8]) {
        let start = http(
            &self.host(),
            "POST",
            &format!("/v2/{repository}/blobs/uploads/"),
            &[],
            b"",
        )
        .expect("start upload");
        assert_eq!(
            start.status,
            202,
            "upload start failed: {}",
            start.body_text()
        );
        let location = start.header("location").expect("upload location");
        let path = location
            .find("/v2/")
            .map_or(location.as_str(), |i| &location[i..]);
        let separator = if path.contains('?') { '&' } else { '?' };
        let path = format!("{path}{separator}digest={digest}");
        let response = http(
            &self.host(),
            "PUT",
            &path,
            &[("Content-Type", "application/octet-stream")],
            data,
        )
        .expect("push blob");
        assert_eq!(
            response.status,
            201,
            "blob upload failed: {}",
            response.body_text()
        );
    }

    /// Pushes an image made of `layers` (blob, diff_id, media type) with config
    /// `container_config` as `repository:tag`; returns the manifest's digest and size.
    pub fn push_image(
        &self,
        repository: &str,
        tag: &str,
        layers: &[(Vec<u8>, String, &str)],
        container_config: &str,
    ) -> (String, usize) {
        let diff_ids: Vec<String> = layers.iter().map(|(_, d, _)| format!("\"{d}\"")).collect();
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2026-01-02T03:04:05Z","config":{container_config},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
            diff_ids.join(",")
        );
        let config_digest = sha256(config.as_bytes());
        self.push_blob(repository, &config_digest, config.as_bytes());
        let mut descriptors = Vec::new();
        for (blob, _, media_type) in layers {
            let digest = sha256(blob);
            self.push_blob(repository, &digest, blob);
            descriptors.push(format!(
                r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{}}}"#,
                blob.len()
            ));
        }
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{}]}}"#,
            config.len(),
            descriptors.join(",")
        );
        self.push_manifest(repository, tag, OCI_MANIFEST, manifest.as_bytes());
        (sha256(manifest.as_bytes()), manifest.len())
    }

    /// Puts `manifest` as `repository:reference`.
    pub fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let response = http(
            &self.host(),
            "PUT",
            &path,
            &[("Content-Type", media_type)],
            manifest,
        )
        .expect("push manifest");
        assert_eq!(
            response.status,
            201,
            "manifest upload failed: {}",
            response.body_text()
        );
    }
}

impl Registry {
    /// Deletes the manifest `digest` of `repository`, and with it every
    /// tag that named it.
    pub fn delete_manifest(&self, repository: &str, digest: &str) {
        let path = format!("/v2/{repository}/manifests/{digest}");
        let response = http(&self.host(), "DELETE", &path, &[], b"").expect("delete manifest");
        assert_eq!(
            response.status,
            202,
            "manifest delete failed: {}",
            response.body_text()
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback server answering every request with 401 and a Basic challenge.
pub struct UnauthorizedRegistry {
    port: u16,
}

impl UnauthorizedRegistry {
    pub fn start() -> UnauthorizedRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let body =
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        UnauthorizedRegistry { port }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A loopback registry that serves one manifest for every reference, with
/// its media type and digest: for formats no registry here stores, such as
/// image manifest schema 1.
pub struct ManifestServer {
    port: u16,
}

impl ManifestServer {
    pub fn start(media_type: &'static str, manifest: &'static [u8]) -> ManifestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let body: &[u8] = match request_line.contains(" /v2/ ") {
                    true => b"{}",
                    false => manifest,
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {media_type}\r\nDocker-Content-Digest: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    sha256(manifest),
                    body.len()
                );
                let _ = (&stream).write_all(head.as_bytes());
                if !request_line.starts_with("HEAD ") {
                    let _ = (&stream).write_all(body);
                }
            }
        });
        ManifestServer { port }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("local addr").port()
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`.
fn http(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad HTTP response"))?;
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let headers = String::from_utf8_lossy(&raw[..head_end])
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let body = raw.get(head_end + 4..).unwrap_or_default().to_vec();
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// `tar` of `dir`'s contents, numeric owners and xattrs kept, compressed
/// with `compressor` (`gzip`, `zstd`) if given.
pub fn tar_dir(dir: &Path, compressor: Option<&str>) -> (Vec<u8>, String) {
    let output = Command::new("tar")
        .args([
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "--sort=name",
            "-C",
        ])
        .arg(dir)
        .args(["-cf", "-", "."])
        .output()
        .expect("run tar");
    assert!(
        output.status.success(),
        "tar failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tar = output.stdout;
    let diff_id = sha256(&tar);
    let Some(compressor) = compressor else {
        return (tar, diff_id);
    };
    let mut child = Command::new(compressor)
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("run {compressor}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &tar));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    (output.stdout, diff_id)
}
