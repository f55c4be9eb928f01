//! Healthchecks end to end, typed in this host's shell (the VMs in the hull
//! machine): `--health-*` flags and an image's `HEALTHCHECK`, run by the
//! container's monitor through its agent; `starting`, `healthy` and
//! `unhealthy` as Docker moves between them (the start period, retries, a
//! timeout), shown by `ps` (status and `--filter health=`) and `inspect`
//! (`State.Health`, `Config.Healthcheck`).

use hull_e2e::registry::{tar_dir, Registry};
use hull_e2e::script::{facts, on_this_host};
use hull_e2e::{assert_clean, busybox_rootfs, Hull};

const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Pushes `test/checked:v1`: busybox whose config has Docker's
/// `Healthcheck`, passing once `/ready` exists.
fn push_checked_image(registry: &Registry) -> String {
    let (blob, diff) = tar_dir(busybox_rootfs(), Some("gzip"));
    let config = r#"{"Cmd":["sleep","100000"],"Env":["PATH=/bin:/sbin"],"Healthcheck":{"Test":["CMD","test","-e","/ready"],"Interval":1000000000,"Retries":2}}"#;
    registry.push_image("test/checked", "v1", &[(blob, diff, LAYER_GZIP)], config);
    format!("{}/test/checked:v1", registry.host())
}

#[test]
fn healthchecks_move_between_starting_healthy_and_unhealthy() {
    let registry = Registry::start();
    let image = push_checked_image(&registry);
    let hull = Hull::new();
    let script = format!("img={image}\n{}", SCRIPT);
    let output = on_this_host(&hull, &script);
    let fact = |key| facts(&output, key);

    // Before its first check (an hour away): starting.
    assert_eq!(
        fact("first"),
        ["starting Up (health: starting)"],
        "{output}"
    );
    // Two failures in a row: unhealthy, the log with their exit codes.
    assert_eq!(fact("unhealthy"), ["2+ 1 1"], "{output}");
    assert_eq!(fact("filter-unhealthy"), ["flag"], "{output}");
    // A pass: healthy, the streak reset, `ps` says so.
    assert_eq!(fact("healthy"), ["0 (healthy)"], "{output}");
    assert_eq!(fact("filter-healthy"), ["flag"], "{output}");
    assert_eq!(fact("output"), ["checked by hull"], "{output}");
    // A check past its timeout fails, and says why.
    assert_eq!(
        fact("timeout"),
        ["unhealthy -1 Health check exceeded timeout (1s)"],
        "{output}"
    );
    // Failures in the start period do not count.
    assert_eq!(fact("start-period"), ["starting 0 yes"], "{output}");
    // The image's HEALTHCHECK, in Docker's form; --no-healthcheck turns it
    // off; a flag changes one field of it.
    assert_eq!(
        fact("image-config"),
        [
            r#"{"Interval":1000000000,"Retries":2,"StartInterval":0,"StartPeriod":0,"Test":["CMD","test","-e","/ready"],"Timeout":0}"#
        ],
        "{output}"
    );
    assert_eq!(fact("image-health"), ["unhealthy healthy"], "{output}");
    assert_eq!(fact("no-healthcheck"), ["none <nil>"], "{output}");
    assert_eq!(fact("changed"), ["5"], "{output}");
    assert_eq!(fact("filter-none"), ["plain"], "{output}");
    // Bad values: one line each.
    assert_eq!(fact("bad-interval"), ["125 1"], "{output}");
    assert_eq!(fact("bad-both"), ["125"], "{output}");
    assert_clean(&hull);
}

const SCRIPT: &str = r#"
work=$(mktemp -d)
tar -C $R -cf $work/bb.tar . && $h import $work/bb.tar bb:1 >/dev/null
state() { $h inspect -f '{{.State.Health.Status}}' $1; }

$h run -d --name flag --health-cmd 'echo checked by hull; test -e /ok' --health-interval 1s --health-retries 2 bb:1 sleep 100000 >/dev/null
wait_for '[ "$(state flag)" = unhealthy ]'
streak=$($h inspect -f '{{.State.Health.FailingStreak}}' flag)
echo "unhealthy=$([ $streak -ge 2 ] && echo 2+) $($h inspect -f '{{(index .State.Health.Log 0).ExitCode}} {{(index .State.Health.Log 1).ExitCode}}' flag)"
echo "filter-unhealthy=$($h ps --filter health=unhealthy --format '{{.Names}}')"
$h exec flag touch /ok
wait_for '[ "$(state flag)" = healthy ]'
echo "healthy=$($h inspect -f '{{.State.Health.FailingStreak}}' flag) $($h ps --filter name=flag --format '{{.Status}}' | grep -o '(healthy)')"
echo "filter-healthy=$($h ps --filter health=healthy --format '{{.Names}}')"
echo "output=$($h inspect -f '{{range .State.Health.Log}}{{.Output}}{{end}}' flag | grep . | tail -n 1)"
$h rm -f flag >/dev/null

$h run -d --name slow --health-cmd 'sleep 5' --health-timeout 1s --health-interval 1s --health-retries 1 bb:1 sleep 100000 >/dev/null
wait_for '[ "$(state slow)" = unhealthy ]'
echo "timeout=$($h inspect -f '{{.State.Health.Status}} {{(index .State.Health.Log 0).ExitCode}} {{(index .State.Health.Log 0).Output}}' slow)"
$h rm -f slow >/dev/null

$h run -d --name early --health-cmd false --health-interval 1s --health-start-interval 1s --health-start-period 10m --health-retries 1 bb:1 sleep 100000 >/dev/null
wait_for '[ "$($h inspect -f "{{len .State.Health.Log}}" early)" -ge 3 ]'
echo "start-period=$($h inspect -f '{{.State.Health.Status}} {{.State.Health.FailingStreak}}' early) yes"
$h rm -f early >/dev/null

$h run -d --name checked $img >/dev/null
echo "image-config=$($h inspect -f '{{json .Config.Healthcheck}}' checked)"
wait_for '[ "$(state checked)" = unhealthy ]'
$h exec checked touch /ready
wait_for '[ "$(state checked)" = healthy ]'
echo "image-health=unhealthy $(state checked)"
$h run -d --name unchecked --no-healthcheck $img >/dev/null
echo "no-healthcheck=$($h ps --filter health=none --filter name=unchecked --format '{{.Names}}' | sed 's/unchecked/none/') $($h inspect -f '{{.State.Health}}' unchecked)"
$h create --name changed --health-retries 5 $img >/dev/null
echo "changed=$($h inspect -f '{{.Config.Healthcheck.Retries}}' changed)"
$h run -d --name plain bb:1 sleep 100000 >/dev/null
$h run -d --name waiting --health-cmd true --health-interval 1h bb:1 sleep 100000 >/dev/null
echo "first=$(state waiting) $($h ps --filter name=waiting --format '{{.Status}}' | sed 's/Up [^(]*(/Up (/')"
echo "filter-none=$($h ps --filter health=none --format '{{.Names}}' | grep -x plain)"
$h rm -f checked unchecked changed plain waiting >/dev/null

$h run --health-interval soon bb:1 true 2>$work/err; echo "bad-interval=$? $(wc -l < $work/err)"
$h run --health-cmd true --no-healthcheck bb:1 true 2>/dev/null; echo "bad-both=$?"
"#;
