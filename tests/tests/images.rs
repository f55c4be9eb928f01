//! Images end to end: the real `hull` binary against a real registry
//! (Debian's docker-registry on loopback, started per test). Test images are
//! built here, pushed, pulled back and compared file by file.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use hull_e2e::registry::{
    free_port, sha256, tar_dir, ManifestServer, Registry, UnauthorizedRegistry, OCI_MANIFEST,
};
use hull_e2e::{busybox_rootfs, Hull};

const FAILURE: i32 = 1;

fn run(hull: &Hull, args: &[&str]) -> Output {
    hull.command(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hull")
}

/// Runs `hull ARGS` and returns its stdout, failing the test if it fails.
fn ok(hull: &Hull, args: &[&str]) -> String {
    let output = run(hull, args);
    assert!(
        output.status.success(),
        "hull {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `hull ARGS`, expects a failure's exit (1, as Docker's) and a
/// one-line message containing `needle`.
fn fails_with(hull: &Hull, args: &[&str], needle: &str) {
    fails_with_code(hull, args, FAILURE, needle);
}

/// Runs `hull ARGS`, expects exit `code` and a one-line message containing
/// `needle`.
fn fails_with_code(hull: &Hull, args: &[&str], code: i32, needle: &str) {
    let output = run(hull, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "hull {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "want one line, got: {stderr}");
    assert!(
        stderr.starts_with("hull: ") && stderr.contains(needle),
        "hull {args:?}: {stderr}"
    );
}

/// The bytes a size as Docker prints it (`1.23MB`) stands for.
fn human_bytes(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => panic!("not a size: {text}"),
    };
    number.parse::<f64>().expect("a size") * scale
}

/// The store holds no image, blob, layer or leftover temporary file.
fn assert_store_empty(hull: &Hull) {
    assert_eq!(ok(hull, &["images", "-q"]), "");
    for dir in ["blobs/sha256", "layers", "tmp"] {
        let path = hull.root().join("image").join(dir);
        let entries: Vec<_> = fs::read_dir(&path)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            entries.is_empty(),
            "{} not empty: {entries:?}",
            path.display()
        );
    }
}

/// The unpacked layer directories `hull image inspect` reports, bottom first.
fn layer_dirs(hull: &Hull, image: &str) -> Vec<PathBuf> {
    let json = ok(hull, &["image", "inspect", image]);
    json.split('"')
        .filter(|s| s.contains("/image/layers/"))
        .map(PathBuf::from)
        .collect()
}

/// Asserts that trees `a` and `b` hold the same entries with the same type,
/// mode, owner, mtime (except directories), contents, link target and device.
fn assert_same_tree(a: &Path, b: &Path) {
    let mut names_a: Vec<_> = fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut names_b: Vec<_> = fs::read_dir(b)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names_a.sort();
    names_b.sort();
    assert_eq!(
        names_a,
        names_b,
        "entries of {} and {}",
        a.display(),
        b.display()
    );
    for name in names_a {
        let (pa, pb) = (a.join(&name), b.join(&name));
        let (ma, mb) = (
            fs::symlink_metadata(&pa).unwrap(),
            fs::symlink_metadata(&pb).unwrap(),
        );
        assert_eq!(ma.mode(), mb.mode(), "mode of {}", pb.display());
        assert_eq!(
            (ma.uid(), ma.gid()),
            (mb.uid(), mb.gid()),
            "owner of {}",
            pb.display()
        );
        if ma.is_dir() {
            assert_same_tree(&pa, &pb);
            continue;
        }
        assert_eq!(ma.mtime(), mb.mtime(), "mtime of {}", pb.display());
        if ma.file_type().is_symlink() {
            assert_eq!(
                fs::read_link(&pa).unwrap(),
                fs::read_link(&pb).unwrap(),
                "target of {}",
                pb.display()
            );
        } else if ma.is_file() {
            assert!(
                fs::read(&pa).unwrap() == fs::read(&pb).unwrap(),
                "contents of {}",
                pb.display()
            );
        } else {
            assert_eq!(ma.rdev(), mb.rdev(), "device of {}", pb.display());
        }
    }
}

fn get_xattr(path: &Path, key: &str) -> Option<Vec<u8>> {
    let path = CString::new(path.as_os_str().as_bytes()).unwrap();
    let key = CString::new(key).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid NUL-terminated strings and a live buffer of the given length.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            key.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

fn set_xattr(path: &Path, key: &str, value: &[u8]) {
    let path = CString::new(path.as_os_str().as_bytes()).unwrap();
    let key = CString::new(key).unwrap();
    // SAFETY: valid NUL-terminated strings and a live value slice.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
}

fn mknod(path: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | 0o640, libc::makedev(major, minor)) };
    assert_eq!(rc, 0, "mknod: {}", std::io::Error::last_os_error());
}

/// A tar of the busybox root filesystem.
fn busybox_tar(dir: &Path) -> PathBuf {
    let (tar, _) = tar_dir(busybox_rootfs(), None);
    let path = dir.join("busybox.tar");
    fs::write(&path, tar).unwrap();
    path
}

#[test]
fn import_push_and_pull_back_into_a_fresh_root_is_identical() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let name = format!("{}/test/busybox:v1", registry.host());

    let builder = Hull::new();
    let id = ok(
        &builder,
        &["import", busybox_tar(work.path()).to_str().unwrap(), &name],
    );
    let id = id
        .trim()
        .strip_prefix("sha256:")
        .expect("import prints the image ID")
        .to_owned();
    let pushed = ok(&builder, &["push", &name]);
    assert!(
        pushed.contains("digest: sha256:") && pushed.contains(": Pushed"),
        "{pushed}"
    );
    // What the registry has is not sent again, as Docker's push says; the
    // same manifest lands under another tag.
    let other = format!("{}/test/busybox:v2", registry.host());
    ok(&builder, &["tag", &name, &other]);
    let again = ok(&builder, &["push", &other]);
    let digest_of = |output: &str| {
        output
            .split("digest: ")
            .nth(1)
            .map(|rest| rest[..71].to_owned())
    };
    assert!(
        again.contains(": Layer already exists") && !again.contains(": Pushed"),
        "{again}"
    );
    assert_eq!(digest_of(&again), digest_of(&pushed), "{again}");
    // A registry that wants credentials, or none there: one line each.
    let unauthorized = UnauthorizedRegistry::start();
    let refused = format!("{}/test/busybox:v1", unauthorized.host());
    ok(&builder, &["tag", &name, &refused]);
    fails_with(
        &builder,
        &["push", &refused],
        "unauthorized: authentication required",
    );
    let down = format!("127.0.0.1:{}/test/busybox:v1", free_port());
    ok(&builder, &["tag", &name, &down]);
    fails_with(&builder, &["push", &down], "cannot reach registry");

    // A build pulls its base with progress on stderr (none with -q):
    // stdout is the ID's (-q), or the exported tar's (-o -).
    let context = work.path().join("context");
    fs::create_dir(&context).unwrap();
    fs::write(
        context.join("Dockerfile"),
        format!("FROM {name}\nLABEL built=yes\n"),
    )
    .unwrap();
    for (flags, stdout_is) in [(&["-q"][..], "id"), (&["-o", "-"][..], "tar")] {
        let fresh = Hull::new();
        let mut args = vec!["build", "--progress", "plain"];
        args.extend(flags);
        args.push(context.to_str().unwrap());
        let output = run(&fresh, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stderr}");
        assert_eq!(
            stderr.contains("Pull complete"),
            stdout_is == "tar",
            "{args:?}: {stderr}"
        );
        match stdout_is {
            "id" => {
                assert!(
                    String::from_utf8_lossy(&output.stdout).starts_with("sha256:")
                        && output.stdout.iter().filter(|b| **b == b'\n').count() == 1,
                    "{:?}",
                    String::from_utf8_lossy(&output.stdout)
                );
                // The base and the image built on it share its layer:
                // `system df` counts it once, and no container uses it.
                let df = ok(
                    &fresh,
                    &[
                        "system",
                        "df",
                        "--format",
                        "{{.Type}}|{{.TotalCount}}|{{.Size}}|{{.Reclaimable}}",
                    ],
                );
                let images = df.lines().find(|l| l.starts_with("Images|")).unwrap();
                let fields: Vec<&str> = images.split('|').collect();
                let one = ok(&fresh, &["images", "--format", "{{.Size}}"]);
                let one = human_bytes(one.lines().next().unwrap());
                assert_eq!(fields[1], "2", "{df}");
                assert!(
                    (human_bytes(fields[2]) - one).abs() <= one * 1e-2,
                    "{df} vs {one}"
                );
                assert!(fields[3].ends_with("(100%)"), "{df}");
            }
            _ => {
                let tar = work.path().join("out.tar");
                fs::write(&tar, &output.stdout).unwrap();
                let listed = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
                let names = String::from_utf8_lossy(&listed.stdout);
                assert!(listed.status.success(), "not a tar: {names}");
                assert!(names.lines().any(|n| n == "bin/busybox"), "{names}");
            }
        }
    }

    let puller = Hull::new();
    let pulled = ok(&puller, &["pull", &name]);
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    assert_eq!(
        ok(&puller, &["images", "-q"]).trim(),
        &id[..12],
        "same image ID after the round trip"
    );
    let layers = layer_dirs(&puller, &name);
    assert_eq!(layers.len(), 1);
    assert_same_tree(busybox_rootfs(), &layers[0]);

    let again = ok(&puller, &["pull", &name]);
    assert!(
        again.contains("Already exists") && again.contains("Image is up to date"),
        "{again}"
    );
    let table = ok(&puller, &["images"]);
    assert!(table.starts_with("REPOSITORY"), "{table}");
    assert!(
        table.contains(&format!("{}/test/busybox", registry.host())) && table.contains(" v1 "),
        "{table}"
    );

    // Every tag of a repository, both ways; a tag is no repository.
    let repository = format!("{}/test/busybox", registry.host());
    ok(&builder, &["tag", &name, &format!("{repository}:v3")]);
    let all = ok(&builder, &["push", "--all-tags", &repository]);
    assert_eq!(all.matches("digest: sha256:").count(), 3, "{all}");
    let everything = Hull::new();
    ok(&everything, &["pull", "-a", &repository]);
    assert_eq!(
        ok(&everything, &["images", "--format", "{{.Tag}}"]),
        "v1\nv2\nv3\n"
    );
    fails_with(
        &everything,
        &["pull", "-a", &name],
        "tag can't be used with --all-tags",
    );
    fails_with(
        &everything,
        &["pull", "-a", &format!("{}/test/nothing", registry.host())],
        "not found",
    );
    // A repository whose every tag was deleted lists `"tags": null`.
    let (digest, _) = registry.push_image("test/gone", "v1", &[], "{}");
    registry.delete_manifest("test/gone", &digest);
    fails_with(
        &everything,
        &["pull", "-a", &format!("{}/test/gone", registry.host())],
        "test/gone has no tags",
    );
    // As Docker's rmi: a digest name goes alone while a tag is left; the
    // last tag of a repository takes its digest names with it.
    let digest = ok(&puller, &["images", "--digests", "--format", "{{.Digest}}"]);
    let pinned = format!("{repository}@{}", digest.trim());
    assert_eq!(
        ok(&puller, &["rmi", &pinned]),
        format!("Untagged: {pinned}\n")
    );
    assert_eq!(ok(&puller, &["images", "-q"]).trim(), &id[..12]);
    ok(&puller, &["pull", "-q", &name]);
    let removed = ok(&puller, &["rmi", &name]);
    assert!(
        removed.starts_with(&format!(
            "Untagged: {name}\nUntagged: {pinned}\nDeleted: sha256:"
        )),
        "{removed}"
    );
}

#[test]
fn multi_layer_image_keeps_whiteouts_links_devices_and_xattrs() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();

    let base = work.path().join("base");
    for dir in ["etc", "data", "cache/old", "bin", "dev", "usr/lib"] {
        fs::create_dir_all(base.join(dir)).unwrap();
    }
    fs::write(base.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::write(base.join("etc/group"), "root:x:0:\n").unwrap();
    fs::write(base.join("cache/old/stale"), "stale").unwrap();
    fs::write(base.join("bin/tool"), "#!/bin/sh\necho tool\n").unwrap();
    fs::hard_link(base.join("bin/tool"), base.join("bin/tool-link")).unwrap();
    std::os::unix::fs::symlink("usr/lib", base.join("lib")).unwrap();
    std::os::unix::fs::chown(base.join("data"), Some(1000), Some(1000)).unwrap();
    mknod(&base.join("dev/null"), libc::S_IFCHR, 1, 3);
    set_xattr(&base.join("etc/passwd"), "user.origin", b"base");

    let upper = work.path().join("upper");
    for dir in ["etc", "cache", "data"] {
        fs::create_dir_all(upper.join(dir)).unwrap();
    }
    fs::write(upper.join("etc/.wh.group"), "").unwrap();
    fs::write(upper.join("cache/.wh..wh..opq"), "").unwrap();
    fs::write(upper.join("cache/fresh"), "fresh").unwrap();
    fs::write(upper.join("data/c"), "shared").unwrap();
    fs::hard_link(upper.join("data/c"), upper.join("data/d")).unwrap();

    let top = work.path().join("top");
    fs::create_dir_all(&top).unwrap();
    fs::write(top.join("motd"), "hello from the top layer\n").unwrap();

    let layers = vec![
        {
            let (blob, diff) = tar_dir(&base, Some("gzip"));
            (blob, diff, "application/vnd.oci.image.layer.v1.tar+gzip")
        },
        {
            let (blob, diff) = tar_dir(&upper, None);
            (blob, diff, "application/vnd.oci.image.layer.v1.tar")
        },
        {
            let (blob, diff) = tar_dir(&top, Some("zstd"));
            (blob, diff, "application/vnd.oci.image.layer.v1.tar+zstd")
        },
    ];
    let config = r#"{"Cmd":["/bin/tool"],"Env":["PATH=/bin","GREETING=hi"],"WorkingDir":"/data"}"#;
    registry.push_image("test/layered", "v2", &layers, config);

    let hull = Hull::new();
    let name = format!("{}/test/layered:v2", registry.host());
    ok(&hull, &["pull", &name]);
    let inspect = ok(&hull, &["image", "inspect", &name]);
    for needle in [
        "\"Cmd\"",
        "/bin/tool",
        "GREETING=hi",
        "\"WorkingDir\": \"/data\"",
        // Docker's shape: {"Type": "layers", "Layers": [diff IDs]}, and
        // Config with every field Docker has.
        "\"RootFS\": {\n      \"Layers\": [\n        \"sha256:",
        "\"Type\": \"layers\"",
        "\"Hostname\": \"\"",
    ] {
        assert!(
            inspect.contains(needle),
            "inspect lacks {needle}: {inspect}"
        );
    }
    // As Docker: what was found is printed, a name that was not is one
    // line, and the exit is 1; a name pinned to a digest is no new tag.
    let id = ok(&hull, &["image", "inspect", "-f", "{{.Id}}", &name]);
    let partly = run(
        &hull,
        &["image", "inspect", "-f", "{{.Id}}", &name, "nosuch"],
    );
    assert_eq!(partly.status.code(), Some(FAILURE));
    assert_eq!(String::from_utf8_lossy(&partly.stdout), id);
    assert!(String::from_utf8_lossy(&partly.stderr).contains("no such image: nosuch"));
    fails_with(
        &hull,
        &["tag", &name, &format!("x:t@sha256:{}", "0".repeat(64))],
        "refusing to create a tag with a digest reference",
    );
    let dirs = layer_dirs(&hull, &name);
    assert_eq!(dirs.len(), 3, "{inspect}");

    // Bottom layer: a faithful copy, links, device and xattr included.
    assert_same_tree(&base, &dirs[0]);
    let tool = fs::metadata(dirs[0].join("bin/tool")).unwrap();
    assert_eq!(
        tool.ino(),
        fs::metadata(dirs[0].join("bin/tool-link")).unwrap().ino()
    );
    assert_eq!(
        get_xattr(&dirs[0].join("etc/passwd"), "user.origin").as_deref(),
        Some(&b"base"[..])
    );

    // Middle layer: whiteouts in overlayfs format.
    let whiteout = fs::symlink_metadata(dirs[1].join("etc/group")).unwrap();
    assert!(
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
        "etc/group is a 0/0 whiteout"
    );
    assert!(!dirs[1].join("etc/.wh.group").exists());
    assert_eq!(
        get_xattr(&dirs[1].join("cache"), "user.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!dirs[1].join("cache/.wh..wh..opq").exists());
    assert_eq!(fs::read(dirs[1].join("cache/fresh")).unwrap(), b"fresh");
    let c = fs::metadata(dirs[1].join("data/c")).unwrap();
    assert_eq!(
        (c.ino(), c.nlink()),
        (fs::metadata(dirs[1].join("data/d")).unwrap().ino(), 2)
    );

    // Top layer: zstd.
    assert_same_tree(&top, &dirs[2]);

    // Stacked by overlayfs as they are, the layers show the image's view.
    let merged = work.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let lower: Vec<String> = dirs.iter().rev().map(|d| d.display().to_string()).collect();
    let mount = OverlayMount::new(&lower.join(":"), &merged);
    let mut cache: Vec<_> = fs::read_dir(mount.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    cache.sort();
    assert_eq!(
        cache,
        ["fresh"],
        "the opaque directory hides the lower layer's contents"
    );
    assert!(
        !mount.path().join("etc/group").exists(),
        "the whiteout hides etc/group"
    );
    assert!(mount.path().join("etc/passwd").is_file());
    assert_eq!(
        fs::read_to_string(mount.path().join("motd")).unwrap(),
        "hello from the top layer\n"
    );
    assert_eq!(
        fs::read_to_string(mount.path().join("bin/tool-link")).unwrap(),
        "#!/bin/sh\necho tool\n"
    );
}

/// A read-only overlayfs of lower layers only, unmounted on drop.
struct OverlayMount {
    target: PathBuf,
}

impl OverlayMount {
    fn new(lowerdir: &str, target: &Path) -> OverlayMount {
        let status = Command::new("mount")
            .args([
                "-t",
                "overlay",
                "overlay",
                "-o",
                &format!("ro,userxattr,lowerdir={lowerdir}"),
            ])
            .arg(target)
            .status()
            .expect("run mount");
        assert!(status.success(), "cannot mount the layers with overlayfs");
        OverlayMount {
            target: target.to_owned(),
        }
    }

    fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.target).status();
    }
}

#[test]
fn multi_arch_indexes_resolve_to_linux_amd64_and_digests_pin() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let mut manifests = Vec::new();
    for arch in ["arm64", "amd64"] {
        let dir = work.path().join(arch);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("arch"), arch).unwrap();
        let (blob, diff_id) = tar_dir(&dir, Some("gzip"));
        let layer = (blob, diff_id, "application/vnd.oci.image.layer.v1.tar+gzip");
        let (digest, size) = registry.push_image("test/multi", arch, &[layer], "{}");
        manifests.push(format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":{size},"platform":{{"os":"linux","architecture":"{arch}"}}}}"#
        ));
    }
    let index_type = "application/vnd.oci.image.index.v1+json";
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{index_type}","manifests":[{}]}}"#,
        manifests.join(",")
    );
    registry.push_manifest("test/multi", "latest", index_type, index.as_bytes());

    let hull = Hull::new();
    let name = format!("{}/test/multi", registry.host());
    ok(&hull, &["pull", &name]);
    let dirs = layer_dirs(&hull, &format!("{name}:latest"));
    assert_eq!(fs::read_to_string(dirs[0].join("arch")).unwrap(), "amd64");

    // By digest: the arm64 manifest, exactly that one.
    let arm64 = manifests[0].split('"').nth(7).unwrap().to_owned();
    let pinned = format!("{name}@{arm64}");
    ok(&hull, &["pull", &pinned]);
    assert_eq!(
        fs::read_to_string(layer_dirs(&hull, &pinned)[0].join("arch")).unwrap(),
        "arm64"
    );
    let wrong = format!("{name}@sha256:{}", "0".repeat(64));
    fails_with(&hull, &["pull", &wrong], "not found");

    // By the index's digest, as images are pinned: the image is found by
    // it, which pull prints and records.
    let by_index = Hull::new();
    let index_digest = sha256(index.as_bytes());
    let index_pinned = format!("{name}@{index_digest}");
    let said = ok(&by_index, &["pull", &index_pinned]);
    assert!(
        said.contains(&format!("Digest: {index_digest}\n")),
        "{said}"
    );
    assert_eq!(
        fs::read_to_string(layer_dirs(&by_index, &index_pinned)[0].join("arch")).unwrap(),
        "amd64"
    );
    assert_eq!(
        ok(
            &by_index,
            &[
                "image",
                "inspect",
                "-f",
                "{{json .RepoDigests}}",
                &index_pinned
            ]
        ),
        format!("[\"{name}@{index_digest}\"]\n")
    );
    assert_eq!(
        ok(
            &by_index,
            &[
                "images",
                "--digests",
                "--format",
                "{{.Repository}} {{.Tag}} {{.Digest}}"
            ]
        ),
        format!("{name} <none> {index_digest}\n")
    );

    // `manifest inspect` shows the registry's index and manifests as
    // served, pulling nothing; a missing one fails with one line.
    let fresh = Hull::new();
    assert_eq!(
        ok(&fresh, &["manifest", "inspect", &name]),
        format!("{index}\n")
    );
    let shown = ok(&fresh, &["manifest", "inspect", &pinned]);
    assert!(shown.contains(r#""layers""#), "{shown}");
    assert_store_empty(&fresh);
    fails_with(&fresh, &["manifest", "inspect", &wrong], "not found");
    fails_with(&fresh, &["manifest", "inspect", "UPPER/x"], "lowercase");
}

#[test]
fn a_layer_kept_without_its_blob_is_pulled_again_so_save_and_push_have_it() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    fs::write(work.path().join("f"), "the one layer").unwrap();
    let gzipped = tar_dir(work.path(), Some("gzip"));
    let plain = tar_dir(work.path(), None);
    let kind = "application/vnd.oci.image.layer.v1.tar";
    registry.push_image(
        "test/kept",
        "gz",
        &[(
            gzipped.0,
            gzipped.1,
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )],
        "{}",
    );
    registry.push_image(
        "test/kept",
        "plain",
        &[(plain.0, plain.1, kind)],
        r#"{"Env":["PLAIN=1"]}"#,
    );
    let hull = Hull::new();
    let name = format!("{}/test/kept", registry.host());
    ok(&hull, &["pull", &format!("{name}:gz")]);
    ok(&hull, &["pull", &format!("{name}:plain")]);
    // The layer stays (gz has it); the uncompressed blob goes with plain.
    ok(&hull, &["rmi", &format!("{name}:plain")]);
    ok(&hull, &["pull", &format!("{name}:plain")]);
    let archive = work.path().join("plain.tar");
    ok(
        &hull,
        &[
            "save",
            "-o",
            archive.to_str().unwrap(),
            &format!("{name}:plain"),
        ],
    );
    ok(
        &hull,
        &["tag", &format!("{name}:plain"), &format!("{name}:again")],
    );
    ok(&hull, &["push", &format!("{name}:again")]);
}

#[test]
fn indexes_with_attestations_nested_indexes_and_artifacts_pull_as_docker_pulls_them() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let repository = "test/shapes";
    let dir = work.path().join("amd64");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("arch"), "amd64").unwrap();
    let (blob, diff_id) = tar_dir(&dir, Some("gzip"));
    let layer = (blob, diff_id, "application/vnd.oci.image.layer.v1.tar+gzip");
    let (amd64, amd64_size) = registry.push_image(repository, "amd64", &[layer], "{}");

    // BuildKit's attestation manifest: an in-toto statement as its layer.
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#;
    registry.push_blob(repository, &sha256(statement), statement);
    let config = format!(
        r#"{{"architecture":"unknown","os":"unknown","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        sha256(statement)
    );
    registry.push_blob(repository, &sha256(config.as_bytes()), config.as_bytes());
    let attestation = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.in-toto+json","digest":"{}","size":{}}}]}}"#,
        sha256(config.as_bytes()),
        config.len(),
        sha256(statement),
        statement.len()
    );
    let attestation_digest = sha256(attestation.as_bytes());
    registry.push_manifest(
        repository,
        &attestation_digest,
        OCI_MANIFEST,
        attestation.as_bytes(),
    );
    let index_type = "application/vnd.oci.image.index.v1+json";
    // The attestation first, so that picking it would show.
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{index_type}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{attestation_digest}","size":{},"platform":{{"os":"unknown","architecture":"unknown"}},"annotations":{{"vnd.docker.reference.digest":"{amd64}","vnd.docker.reference.type":"attestation-manifest"}}}},{{"mediaType":"{OCI_MANIFEST}","digest":"{amd64}","size":{amd64_size},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
        attestation.len()
    );
    registry.push_manifest(repository, "attested", index_type, index.as_bytes());
    // An index of indexes, without platforms.
    let nested = format!(
        r#"{{"schemaVersion":2,"mediaType":"{index_type}","manifests":[{{"mediaType":"{index_type}","digest":"{}","size":{}}}]}}"#,
        sha256(index.as_bytes()),
        index.len()
    );
    registry.push_manifest(repository, "nested", index_type, nested.as_bytes());

    let hull = Hull::new();
    let name = format!("{}/{repository}", registry.host());
    for tag in ["attested", "nested"] {
        let reference = format!("{name}:{tag}");
        ok(&hull, &["pull", &reference]);
        let dirs = layer_dirs(&hull, &reference);
        assert_eq!(fs::read_to_string(dirs[0].join("arch")).unwrap(), "amd64");
    }

    // A Helm chart is no container image: one line, nothing stored.
    let chart_config = br#"{"name":"chart"}"#;
    registry.push_blob(repository, &sha256(chart_config), chart_config);
    let chart = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{}","size":{}}},"layers":[]}}"#,
        sha256(chart_config),
        chart_config.len()
    );
    registry.push_manifest(repository, "chart", OCI_MANIFEST, chart.as_bytes());
    let fresh = Hull::new();
    fails_with(
        &fresh,
        &["pull", &format!("{name}:chart")],
        "is not a container image: it is an artifact whose config is application/vnd.cncf.helm.config.v1+json",
    );
    assert_store_empty(&fresh);
}

#[test]
fn failed_pulls_leave_the_store_as_it_was() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let hull = Hull::new();

    fails_with(
        &hull,
        &["pull", &format!("{}/test/none:v1", registry.host())],
        "not found",
    );
    assert_store_empty(&hull);

    let down = format!("127.0.0.1:{}/test/app:v1", free_port());
    fails_with(&hull, &["pull", &down], "cannot reach registry");
    // Nothing said of pulling from a registry that never answered.
    assert!(run(&hull, &["pull", &down]).stdout.is_empty());
    assert_store_empty(&hull);

    let unauthorized = UnauthorizedRegistry::start();
    fails_with(
        &hull,
        &["pull", &format!("{}/test/app:v1", unauthorized.host())],
        "unauthorized",
    );
    assert_store_empty(&hull);

    fails_with(&hull, &["pull", "Bad/Name"], "invalid reference format");

    // Image manifest schema 1, as old registries still serve it.
    let schema1 = ManifestServer::start(
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        br#"{"schemaVersion":1,"name":"test/old","tag":"v1","architecture":"amd64",
            "fsLayers":[{"blobSum":"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"}],
            "history":[{"v1Compatibility":"{}"}],"signatures":[]}"#,
    );
    fails_with(
        &hull,
        &["pull", &format!("{}/test/old:v1", schema1.host())],
        "it is an image manifest schema 1, a format hull does not read",
    );
    assert_store_empty(&hull);

    // A layer whose bytes were altered in the registry.
    let dir = work.path().join("layer");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("file"), "x".repeat(4096)).unwrap();
    let (blob, diff_id) = tar_dir(&dir, Some("gzip"));
    let blob_digest = sha256(&blob);
    registry.push_image(
        "test/corrupt",
        "v1",
        &[(
            blob.clone(),
            diff_id.clone(),
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )],
        "{}",
    );
    let mut altered = blob.clone();
    let last = altered.len() - 1;
    altered[last] ^= 0xff;
    fs::write(registry.blob_file(&blob_digest), &altered).unwrap();
    fails_with(
        &hull,
        &["pull", &format!("{}/test/corrupt:v1", registry.host())],
        "digest",
    );
    assert_store_empty(&hull);

    // The same blob cut short.
    fs::write(registry.blob_file(&blob_digest), &blob[..blob.len() / 2]).unwrap();
    fails_with(
        &hull,
        &["pull", &format!("{}/test/corrupt:v1", registry.host())],
        "truncated",
    );
    assert_store_empty(&hull);

    // A layer with an entry reaching outside it.
    let escape = work.path().join("escape");
    fs::create_dir_all(escape.join("inner")).unwrap();
    fs::write(escape.join("evil"), "evil").unwrap();
    let output = Command::new("tar")
        .arg("-C")
        .arg(escape.join("inner"))
        .args(["-P", "-cf", "-", "../evil"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let tar = output.stdout;
    let diff_id = sha256(&tar);
    registry.push_image(
        "test/escape",
        "v1",
        &[(tar, diff_id, "application/vnd.oci.image.layer.v1.tar")],
        "{}",
    );
    fails_with(
        &hull,
        &["pull", &format!("{}/test/escape:v1", registry.host())],
        "escapes the layer",
    );
    assert_eq!(ok(&hull, &["images", "-q"]), "");
    assert!(
        fs::read_dir(hull.root().join("image/layers"))
            .unwrap()
            .next()
            .is_none(),
        "no half-unpacked layer"
    );
    assert!(
        fs::read_dir(hull.root().join("image/tmp"))
            .unwrap()
            .next()
            .is_none(),
        "no leftovers"
    );
}

/// Whether the store's work directory holds an entry named `prefix...`.
fn store_work_started(hull: &Hull, prefix: &str) -> bool {
    fs::read_dir(hull.root().join("image/tmp")).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
    })
}

#[test]
fn a_pull_killed_while_it_unpacks_leaves_a_store_that_pulls_again() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    // 256 MiB of zeros: a small blob whose unpacking takes a while; the
    // marker comes last in the tar.
    let dir = work.path().join("layer");
    fs::create_dir(&dir).unwrap();
    fs::File::create(dir.join("big"))
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    fs::write(dir.join("marker"), "whole\n").unwrap();
    let (blob, diff_id) = tar_dir(&dir, Some("gzip"));
    registry.push_image(
        "test/big",
        "v1",
        &[(blob, diff_id, "application/vnd.oci.image.layer.v1.tar+gzip")],
        "{}",
    );
    let name = format!("{}/test/big:v1", registry.host());

    let hull = Hull::new();
    let mut pull = hull
        .command(["pull", "-q", &name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !store_work_started(&hull, "layer-") {
        assert!(
            pull.try_wait().unwrap().is_none(),
            "the pull ended before its unpacking was seen"
        );
        assert!(Instant::now() < deadline, "no unpacking seen");
        thread::sleep(Duration::from_millis(5));
    }
    pull.kill().unwrap();
    pull.wait().unwrap();

    // No image half-recorded; the same pull works again, whole, and
    // sweeps what the killed one left.
    assert_eq!(ok(&hull, &["images", "-q"]), "");
    ok(&hull, &["pull", "-q", &name]);
    assert!(!store_work_started(&hull, ""), "work left in image/tmp");
    let layer = &layer_dirs(&hull, &name)[0];
    assert_eq!(fs::read_to_string(layer.join("marker")).unwrap(), "whole\n");
    assert_eq!(fs::metadata(layer.join("big")).unwrap().len(), 256 << 20);
    // Removing it leaves nothing, the killed pull's work included.
    ok(&hull, &["rmi", &name]);
    ok(&hull, &["image", "prune", "-a", "-f"]);
    assert_store_empty(&hull);
}

#[test]
fn concurrent_pulls_of_one_image_both_succeed() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let name = format!("{}/test/busybox:concurrent", registry.host());
    let builder = Hull::new();
    ok(
        &builder,
        &["import", busybox_tar(work.path()).to_str().unwrap(), &name],
    );
    ok(&builder, &["push", &name]);

    let hull = Hull::new();
    let children: Vec<_> = (0..3)
        .map(|_| {
            hull.command(["pull", "-q", &name])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(ok(&hull, &["images", "-q"]).lines().count(), 1);
    assert_same_tree(busybox_rootfs(), &layer_dirs(&hull, &name)[0]);
    assert!(
        fs::read_dir(hull.root().join("image/tmp"))
            .unwrap()
            .next()
            .is_none(),
        "no leftovers"
    );
}

/// `data` compressed by `gzip -9`, as one gzip member.
fn gzip(dir: &Path, data: &[u8]) -> Vec<u8> {
    let path = dir.join("gzip-input");
    fs::write(&path, data).unwrap();
    let output = Command::new("gzip")
        .arg("-9c")
        .arg(&path)
        .output()
        .expect("run gzip");
    assert!(output.status.success());
    output.stdout
}

/// A GNU tar header: `name`, type `kind`, `size` bytes, mode 0644.
fn gnu_header(name: &[u8], kind: u8, size: u64) -> [u8; 512] {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name);
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    header[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = kind;
    header[257..265].copy_from_slice(b"ustar  \0");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    header
}

/// A 263 KB gzip tar (issue 17's memory bomb) whose first record, a GNU
/// long name, claims 256 MiB and holds it: `aaa...a/../escape`, in gzip
/// members of 1 MiB each, then the file it names. Unchecked, hull read
/// it whole (1 GiB peak RSS) and printed all of it in its error.
fn header_bomb(dir: &Path) -> PathBuf {
    let mut bomb = gzip(dir, &gnu_header(b"././@LongLink", b'L', 256 << 20));
    let mebibyte = gzip(dir, &vec![b'a'; 1 << 20]);
    for _ in 0..255 {
        bomb.extend_from_slice(&mebibyte);
    }
    let mut tail = vec![b'a'; (1 << 20) - 11];
    tail.extend_from_slice(b"/../escape\0");
    tail.extend_from_slice(&gnu_header(b"x", b'0', 0));
    tail.extend_from_slice(&[0; 1024]);
    bomb.extend(gzip(dir, &tail));
    let path = dir.join("bomb.tar.gz");
    fs::write(&path, bomb).unwrap();
    path
}

/// Runs `hull ARGS`: its exit code, stderr and peak RSS in KiB.
#[expect(clippy::zombie_processes, reason = "wait4 reaps it, for its rusage")]
fn run_measured(hull: &Hull, args: &[&str]) -> (i32, String, u64) {
    use std::io::Read;
    let mut child = hull
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hull");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: all-zero bytes are a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; both pointers are to
    // live locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status));
    (libc::WEXITSTATUS(status), stderr, usage.ru_maxrss as u64)
}

#[test]
fn a_hostile_import_fails_in_one_short_line_in_bounded_memory() {
    let work = tempfile::tempdir().unwrap();
    let hull = Hull::new();
    let bomb = header_bomb(work.path());
    let compressed = fs::metadata(&bomb).unwrap().len();
    assert!(compressed < 300 << 10, "{compressed} bytes");
    let (code, stderr, rss_kib) =
        run_measured(&hull, &["import", bomb.to_str().unwrap(), "bomb:v1"]);
    println!("hostile import: {compressed} bytes compressed, peak RSS {rss_kib} KiB");
    assert_eq!(code, FAILURE, "{stderr:.300}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:.300}");
    assert!(stderr.len() < 300, "{} bytes: {stderr:.300}", stderr.len());
    assert!(
        stderr.starts_with("hull: cannot import ")
            && stderr.ends_with(
                ": a tar header record (GNU long name) claims 268435456 bytes, over the limit \
                 of 1048576 (image-limits.max-header-bytes in <hull root>/config.json)\n"
            ),
        "{stderr}"
    );
    assert!(rss_kib < 64 << 10, "peak RSS {rss_kib} KiB");
    assert_store_empty(&hull);
}

/// `python3 -m http.server` serving `dir` on a free loopback port, until
/// dropped.
struct FileServer {
    child: std::process::Child,
    port: u16,
}

impl FileServer {
    fn start(dir: &Path) -> FileServer {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "http.server never listened");
            thread::sleep(Duration::from_millis(50));
        }
        FileServer { child, port }
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn import_applies_changes_and_a_message_and_downloads_urls() {
    let work = tempfile::tempdir().unwrap();
    let tar = busybox_tar(work.path());
    let tar = tar.to_str().unwrap();
    let hull = Hull::new();
    ok(
        &hull,
        &[
            "import",
            "-c",
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            "--change",
            "ENV MODE=prod",
            "-c",
            "WORKDIR /srv",
            "-m",
            "base system",
            tar,
            "box:changed",
        ],
    );
    let inspect = |format: &str, image: &str| {
        ok(&hull, &["image", "inspect", "-f", format, image])
            .trim()
            .to_owned()
    };
    assert_eq!(
        inspect("{{json .Config.Cmd}}", "box:changed"),
        r#"["/bin/sh","-c","echo hi"]"#
    );
    assert_eq!(
        inspect("{{json .Config.Env}}", "box:changed"),
        r#"["MODE=prod"]"#
    );
    assert_eq!(inspect("{{.Config.WorkingDir}}", "box:changed"), "/srv");
    assert_eq!(inspect("{{.Comment}}", "box:changed"), "base system");
    let history = ok(
        &hull,
        &["history", "--format", "{{.Comment}}", "box:changed"],
    );
    assert_eq!(history.trim(), "base system");

    // A change import does not take: one line, nothing stored.
    fails_with(
        &hull,
        &["import", "-c", "RUN echo hi", tar, "box:bad"],
        "\"RUN\" is not a valid change command",
    );
    assert_eq!(ok(&hull, &["images", "-q"]).lines().count(), 1);

    // From a URL: Docker's comment names it.
    let server = FileServer::start(work.path());
    let url = server.url("busybox.tar");
    ok(&hull, &["import", &url, "box:url"]);
    assert_eq!(
        inspect("{{.Comment}}", "box:url"),
        format!("Imported from {url}")
    );
    assert_eq!(
        inspect("{{json .RootFS.Layers}}", "box:url"),
        inspect("{{json .RootFS.Layers}}", "box:changed"),
        "the same tar makes the same layer"
    );
    fails_with(
        &hull,
        &["import", &server.url("missing.tar"), "box:missing"],
        "cannot download",
    );
    assert_eq!(ok(&hull, &["images", "-q"]).lines().count(), 2);
}

#[test]
fn images_tag_rmi_and_prune_manage_the_store() {
    let work = tempfile::tempdir().unwrap();
    let hull = Hull::new();
    let tar = busybox_tar(work.path());
    let id = ok(&hull, &["import", tar.to_str().unwrap(), "busybox:one"])
        .trim()
        .to_owned();
    ok(&hull, &["tag", "busybox:one", "me/box:two"]);

    let table = ok(&hull, &["images"]);
    assert!(
        table.contains("busybox ") && table.contains("me/box "),
        "familiar names: {table}"
    );
    let json = ok(&hull, &["images", "--format", "json"]);
    assert_eq!(json.lines().count(), 2, "{json}");
    assert!(
        json.lines()
            .all(|l| l.starts_with('{') && l.contains(&id[7..19])),
        "{json}"
    );
    assert_eq!(ok(&hull, &["images", "-q"]).trim(), &id[7..19]);
    for name in [
        "busybox:one",
        "docker.io/library/busybox:one",
        &id,
        &id[7..15],
    ] {
        assert!(
            ok(&hull, &["image", "inspect", name]).contains(&id),
            "resolve {name}"
        );
    }
    // Docker's 1 for an image that is not there.
    fails_with_code(&hull, &["image", "inspect", "busybox"], 1, "no such image");

    // By ID with two names: refused without -f.
    fails_with(&hull, &["rmi", &id], "multiple repositories");
    fails_with_code(&hull, &["rmi", "no-such-image"], 1, "no such image");
    // By name: only untagged.
    let untagged = ok(&hull, &["rmi", "me/box:two"]);
    assert_eq!(untagged.trim(), "Untagged: me/box:two");
    assert_eq!(ok(&hull, &["images", "-q"]).trim(), &id[7..19]);

    // A second import takes the tag; the first image is left dangling.
    let id2 = ok(&hull, &["import", tar.to_str().unwrap(), "busybox:one"])
        .trim()
        .to_owned();
    assert_ne!(id, id2, "the config has a new creation time");
    assert!(ok(&hull, &["images"]).contains("<none>"));
    let pruned = ok(&hull, &["image", "prune", "-f"]);
    assert!(pruned.contains(&id), "{pruned}");
    assert_eq!(ok(&hull, &["images", "-q"]).trim(), &id2[7..19]);
    assert_eq!(
        fs::read_dir(hull.root().join("image/layers"))
            .unwrap()
            .count(),
        1,
        "the shared layer stays"
    );

    let removed = ok(&hull, &["rmi", "busybox:one"]);
    assert!(
        removed.contains("Untagged: busybox:one") && removed.contains(&format!("Deleted: {id2}")),
        "{removed}"
    );
    assert_store_empty(&hull);
}

#[test]
fn login_checks_credentials_and_keeps_them_in_docker_format() {
    let registry = Registry::start();
    let host = registry.host();
    let hull = Hull::new();
    let output = hull.run(
        ["login", &host, "-u", "me", "--password-stdin"],
        b"s3cret\n",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let auth_file = hull.root().join("auth.json");
    let auth = fs::read_to_string(&auth_file).unwrap();
    // base64("me:s3cret")
    assert!(
        auth.contains(&format!("\"{host}\"")) && auth.contains("\"bWU6czNjcmV0\""),
        "{auth}"
    );
    assert_eq!(fs::metadata(&auth_file).unwrap().mode() & 0o777, 0o600);

    let refusing = UnauthorizedRegistry::start();
    let output = hull.run(
        ["login", &refusing.host(), "-u", "me", "--password-stdin"],
        b"wrong\n",
    );
    assert_eq!(output.status.code(), Some(FAILURE));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("incorrect username or password") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(
        !fs::read_to_string(&auth_file)
            .unwrap()
            .contains(&refusing.host()),
        "nothing stored"
    );

    assert!(ok(&hull, &["logout", &host]).contains("Removing login credentials"));
    assert!(!fs::read_to_string(&auth_file).unwrap().contains(&host));
}

#[test]
fn save_and_load_move_images_between_roots() {
    let work = tempfile::tempdir().unwrap();
    let source = Hull::new();
    let id = ok(
        &source,
        &[
            "import",
            busybox_tar(work.path()).to_str().unwrap(),
            "busybox:saved",
        ],
    )
    .trim()
    .to_owned();
    let archive = work.path().join("images.tar");
    ok(
        &source,
        &["save", "-o", archive.to_str().unwrap(), "busybox:saved"],
    );
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for name in [
        "manifest.json",
        "index.json",
        "oci-layout",
        &format!("blobs/sha256/{}", &id[7..]),
    ] {
        assert!(
            listing.lines().any(|l| l == name),
            "archive lacks {name}: {listing}"
        );
    }

    let target = Hull::new();
    let loaded = ok(&target, &["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(loaded.trim(), "Loaded image: busybox:saved");
    assert_eq!(ok(&target, &["images", "-q"]).trim(), &id[7..19]);
    assert_same_tree(busybox_rootfs(), &layer_dirs(&target, "busybox:saved")[0]);

    // A truncated archive loads nothing and leaves nothing behind.
    let bytes = fs::read(&archive).unwrap();
    let cut = work.path().join("cut.tar");
    fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let fresh = Hull::new();
    let output = run(&fresh, &["load", "-i", cut.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(FAILURE));
    assert_store_empty(&fresh);
}
