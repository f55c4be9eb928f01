//! `hull run IMAGE` end to end: images made here and pushed to a real
//! registry (Debian's docker-registry on loopback), pulled by `hull run`
//! itself, and run in a real microVM with hull's kernel and agent (inside
//! the KVM test host when this host's KVM can't run it).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};

use hull_e2e::registry::{tar_dir, Registry};
use hull_e2e::{
    assert_clean, assert_one_line_error, assert_succeeded, busybox_rootfs, container_stderr, Hull,
};

const HULL_ERROR: i32 = 125;
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Copies the busybox root into `dir`, keeping links and modes.
fn copy_busybox(dir: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", busybox_rootfs().display()))
        .arg(dir)
        .status()
        .expect("run cp");
    assert!(status.success(), "cp -a of the busybox root failed");
}

/// Pushes `test/app:v1`: a busybox base layer with a user `app` and files
/// that the second layer deletes (a whiteout), hides (an opaque directory)
/// and hard-links; its config runs a report script as `app` in `/data`.
fn push_layered_app(registry: &Registry) -> String {
    let work = tempfile::tempdir().unwrap();
    let base = work.path().join("base");
    fs::create_dir(&base).unwrap();
    copy_busybox(&base);
    for dir in ["data", "cache/old", "home/app"] {
        fs::create_dir_all(base.join(dir)).unwrap();
    }
    fs::write(
        base.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        base.join("etc/group"),
        "root:x:0:\napp:x:1000:\nstaff:x:50:app\n",
    )
    .unwrap();
    fs::write(base.join("etc/removed"), "must not be seen").unwrap();
    fs::write(base.join("cache/old/stale"), "stale").unwrap();
    for dir in ["data", "home/app"] {
        std::os::unix::fs::chown(base.join(dir), Some(1000), Some(1000)).unwrap();
    }

    let upper = work.path().join("upper");
    for dir in ["etc", "cache", "data"] {
        fs::create_dir_all(upper.join(dir)).unwrap();
    }
    std::os::unix::fs::chown(upper.join("data"), Some(1000), Some(1000)).unwrap();
    fs::write(upper.join("etc/.wh.removed"), "").unwrap();
    fs::write(upper.join("cache/.wh..wh..opq"), "").unwrap();
    fs::write(upper.join("cache/fresh"), "fresh").unwrap();
    fs::write(upper.join("data/c"), "shared\n").unwrap();
    fs::hard_link(upper.join("data/c"), upper.join("data/d")).unwrap();

    let (base_blob, base_diff) = tar_dir(&base, Some("gzip"));
    let (upper_blob, upper_diff) = tar_dir(&upper, None);
    let report = r#"echo \"$GREETING|$(pwd)|$(id -u):$(id -g):$(id -G)|$HOME\"; ls /cache; ls /etc/removed 2>&1; stat -c %h /data/c; cat /data/d; touch /data/mine && echo wrote"#;
    let config = format!(
        r#"{{"Entrypoint":["/bin/sh","-c"],"Cmd":["{report}"],"Env":["PATH=/bin:/sbin","GREETING=hi"],"WorkingDir":"/data","User":"app"}}"#
    );
    registry.push_image(
        "test/app",
        "v1",
        &[
            (base_blob, base_diff, LAYER_GZIP),
            (upper_blob, upper_diff, LAYER_TAR),
        ],
        &config,
    );
    format!("{}/test/app:v1", registry.host())
}

/// Layers of the deep image: past the 58 that a `lowerdir=a:b:...` list of
/// the store's layer names fits in the one page `mount(2)` copies, and
/// Docker's 125.
const DEEP_LAYERS: usize = 130;

/// Pushes an image of [`DEEP_LAYERS`] layers: busybox, then one file per
/// layer in /layers, the middle layer removing the file of the one below.
fn push_deep_image(registry: &Registry) -> String {
    let work = tempfile::tempdir().unwrap();
    let base = work.path().join("base");
    fs::create_dir(&base).unwrap();
    copy_busybox(&base);
    let mut layers = vec![tar_dir(&base, Some("gzip"))];
    for n in 1..DEEP_LAYERS {
        let layer = work.path().join(n.to_string());
        fs::create_dir_all(layer.join("layers")).unwrap();
        fs::write(layer.join(format!("layers/{n}")), format!("{n}\n")).unwrap();
        if n == DEEP_LAYERS / 2 {
            fs::write(layer.join(format!("layers/.wh.{}", n - 1)), "").unwrap();
        }
        layers.push(tar_dir(&layer, None));
    }
    let layers: Vec<_> = layers
        .into_iter()
        .enumerate()
        .map(|(n, (blob, diff))| (blob, diff, if n == 0 { LAYER_GZIP } else { LAYER_TAR }))
        .collect();
    registry.push_image("test/deep", "v1", &layers, r#"{"Cmd":["/bin/sh"]}"#);
    format!("{}/test/deep:v1", registry.host())
}

#[test]
fn a_pulled_layered_image_runs_with_its_config_and_whiteouts() {
    let registry = Registry::start();
    let image = push_layered_app(&registry);
    let hull = Hull::new();

    // Not in the store yet: `hull run` pulls it, with progress on stderr
    // only, then runs the image's Entrypoint + Cmd as its User in its
    // WorkingDir with its Env; the second layer's whiteout, opaque
    // directory and hard link hold in the guest's overlay.
    let output = hull.run(["run", "--rm", &image], b"");
    let stderr = container_stderr(&output);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("Unable to find image '{image}' locally")),
        "{stderr}"
    );
    assert_eq!(
        stdout(&output),
        "hi|/data|1000:1000:1000 50|/home/app\n\
         fresh\n\
         ls: /etc/removed: No such file or directory\n\
         2\n\
         shared\n\
         wrote\n"
    );
    assert_clean(&hull);

    // Now it is in the store; flags override the config, a command
    // replaces Cmd and keeps the Entrypoint.
    let output = hull.run(
        [
            "run",
            "--rm",
            "--pull",
            "never",
            "-u",
            "0:0",
            "-w",
            "/cache",
            "-e",
            "GREETING=yo",
            &image,
            "echo \"$GREETING|$(pwd)|$(id -u):$(id -g)|$HOME\"",
        ],
        b"",
    );
    assert_succeeded(&output);
    assert_eq!(container_stderr(&output), "");
    assert_eq!(stdout(&output), "yo|/cache|0:0|/root\n");

    // --entrypoint drops the image's Cmd; --pull always pulls again (and,
    // through the KVM test host, the run inside uses what was pulled).
    let output = hull.run(
        [
            "run",
            "--rm",
            "--pull",
            "always",
            "--entrypoint",
            "/bin/echo",
            &image,
            "a",
            "b",
        ],
        b"",
    );
    assert_succeeded(&output);
    assert_eq!(stdout(&output), "a b\n");
    assert_clean(&hull);

    // An image of many layers runs, every layer in its overlay: the first
    // and last files, the count less the one whited out.
    let deep = push_deep_image(&registry);
    let output = hull.run(
        [
            "run",
            "--rm",
            &deep,
            "sh",
            "-c",
            &format!(
                "cat /layers/1 /layers/{}; ls /layers | wc -l",
                DEEP_LAYERS - 1
            ),
        ],
        b"",
    );
    assert_succeeded(&output);
    assert_eq!(
        stdout(&output),
        format!("1\n{}\n{}\n", DEEP_LAYERS - 1, DEEP_LAYERS - 2)
    );
    assert_clean(&hull);
}

#[test]
fn run_errors_name_the_image_and_start_no_vm() {
    let registry = Registry::start();
    let hull = Hull::new();

    let missing = format!("{}/test/absent:v1", registry.host());
    let output = hull.run(["run", "--rm", "--pull", "never", &missing], b"");
    assert_one_line_error(&output, HULL_ERROR, &format!("no such image: {missing}"));

    let output = hull.run(["run", "--rm", "Not/A:Valid:Name"], b"");
    assert_one_line_error(&output, HULL_ERROR, "Not/A:Valid:Name");

    // An image with neither Entrypoint nor Cmd needs a command.
    let (blob, diff) = tar_dir(busybox_rootfs(), None);
    registry.push_image(
        "test/bare",
        "v1",
        &[(blob, diff, LAYER_TAR)],
        r#"{"Env":["PATH=/bin"]}"#,
    );
    let bare = format!("{}/test/bare:v1", registry.host());
    let pulled = hull.command(["pull", "-q", &bare]).output().unwrap();
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let output = hull.run(["run", "--rm", &bare], b"");
    assert_one_line_error(&output, HULL_ERROR, "no command specified");
    assert_clean(&hull);
}

#[test]
fn a_running_containers_image_cannot_be_removed() {
    let hull = Hull::new();
    let work = tempfile::tempdir().unwrap();
    let tar_path = work.path().join("busybox.tar");
    fs::write(&tar_path, tar_dir(busybox_rootfs(), None).0).unwrap();
    let imported = hull
        .command(["import".as_ref(), tar_path.as_os_str(), "bb:1".as_ref()])
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    let mut container = hull
        .command([
            "run",
            "--rm",
            "bb:1",
            "sh",
            "-c",
            "echo ready; exec sleep 600",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hull");
    let mut lines = BufReader::new(container.stdout.take().unwrap()).lines();
    assert_eq!(
        lines.next().expect("a line").expect("readable stdout"),
        "ready"
    );

    for force in [&[][..], &["-f"][..]] {
        let output = hull.run([&["rmi"][..], force, &["bb:1"]].concat(), b"");
        assert_one_line_error(&output, 1, "in use by a running container");
    }

    // SAFETY: kill(2) on our own child's pid has no memory-safety concerns.
    assert_eq!(
        unsafe { libc::kill(container.id() as i32, libc::SIGINT) },
        0
    );
    assert_eq!(container.wait().unwrap().code(), Some(128 + libc::SIGINT));
    let output = hull.run(["rmi", "bb:1"], b"");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        container_stderr(&output)
    );
    assert_clean(&hull);
}
