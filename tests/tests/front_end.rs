//! What the CLI adds on the runtime, end to end: foreground runs keep their
//! containers, `create` and `start -a`, Docker's management-command forms,
//! `--format` templates and completions; and arguments refused before the
//! hull machine starts for them.

use hull_e2e::script::{facts, in_test_host};
use hull_e2e::Hull;

#[test]
fn foreground_runs_are_kept_and_formats_and_management_forms_work() {
    let output = in_test_host(
        r#"
$h run --name fg --rootfs $R -- sh -c 'echo kept; echo oops >&2; exit 3'; echo "fg=$?"
echo "fg-ps=$($h ps -a --format '{{.Names}} {{.State}} {{.Status}}' | cut -d' ' -f1-4)"
echo "fg-logs=$($h logs fg 2>/dev/null) $($h logs fg 2>&1 >/dev/null)"
$h start -a fg >out 2>/dev/null; echo "start-a=$? $(cat out)"
echo "fg-runs=$($h logs fg 2>/dev/null | wc -l)"
$h run --rm --name gone --rootfs $R -- true; echo "rm-run=$? $($h ps -aq --filter name=gone | wc -l)"
$h container create --name made --net none --rootfs $R -- sh -c 'echo made' >/dev/null; echo "create=$?"
echo "created=$($h container ls -a --filter status=created --format '{{.Names}}')"
echo "made-start=$($h container start -a made)"
echo "inspect=$($h container inspect -f '{{.Name}} {{.State.Status}} {{.State.ExitCode}}' made)"
echo "inspect-json=$($h inspect --format '{{json .State.Running}}' made)"
echo "table=$($h ps -a --format 'table {{.Names}}\t{{.State}}' | head -n 1 | tr -s ' ')"
echo "json-rows=$($h container list -a --format json | grep -c '^{.*"Names":"\(fg\|made\)"')"
echo "go-json=$($h ps -a --format '{{json .}}' | grep -c '"State":"exited"')"
$h ps --format '{{.Nope' 2>err; echo "bad-template=$? $(grep -c 'template parsing error' err)"
echo "network-ls=$($h network ls --format '{{.Name}}/{{.Driver}}')"
echo "network-inspect=$($h network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' bridge)"
echo "version=$($h version --format '{{.Client.Version}}')"
echo "image-ls=$($h image ls --format '{{.Repository}}' | wc -l) $($h image list -q | wc -l)"
echo "completion=$($h completion bash | grep -c '^_hull()')"
$h container rm fg made >/dev/null; echo "rm=$? $($h ps -aq | wc -l)"
"#,
    );
    // A foreground run keeps its container, its log and its exit code.
    assert_eq!(facts(&output, "fg"), ["3"], "{output}");
    assert_eq!(
        facts(&output, "fg-ps"),
        ["fg exited Exited (3)"],
        "{output}"
    );
    assert_eq!(facts(&output, "fg-logs"), ["kept oops"], "{output}");
    assert_eq!(facts(&output, "start-a"), ["3 kept"], "{output}");
    assert_eq!(facts(&output, "fg-runs"), ["2"], "{output}");
    assert_eq!(facts(&output, "rm-run"), ["0 0"], "{output}");
    // create, then start -a, under their management names.
    assert_eq!(facts(&output, "create"), ["0"], "{output}");
    assert_eq!(facts(&output, "created"), ["made"], "{output}");
    assert_eq!(facts(&output, "made-start"), ["made"], "{output}");
    assert_eq!(facts(&output, "inspect"), ["/made exited 0"], "{output}");
    assert_eq!(facts(&output, "inspect-json"), ["false"], "{output}");
    // Docker's --format: tables with headers, JSON lines, Go templates.
    assert_eq!(facts(&output, "table"), ["NAMES STATE"], "{output}");
    assert_eq!(facts(&output, "json-rows"), ["2"], "{output}");
    assert_eq!(facts(&output, "go-json"), ["2"], "{output}");
    assert_eq!(facts(&output, "bad-template"), ["125 1"], "{output}");
    assert_eq!(facts(&output, "network-ls"), ["bridge/bridge"], "{output}");
    assert_eq!(
        facts(&output, "network-inspect"),
        ["10.89.0.0/16"],
        "{output}"
    );
    assert_eq!(
        facts(&output, "version"),
        [env!("CARGO_PKG_VERSION")],
        "{output}"
    );
    assert_eq!(facts(&output, "image-ls"), ["0 0"], "{output}");
    assert_eq!(facts(&output, "completion"), ["1"], "{output}");
    assert_eq!(facts(&output, "rm"), ["0 0"], "{output}");
}

/// `run --sig-proxy=false`: a signal ends hull's session, not the
/// container, which runs on to its end; its output keeps its streams, its
/// input its end, and its code is hull's.
#[test]
fn without_sig_proxy_a_signal_ends_the_session_and_the_container_runs_on() {
    let output = in_test_host(
        r#"
$h run --name sp --sig-proxy=false --rootfs $R -- sh -c 'echo out; echo err >&2; sleep 8; echo finished' >out 2>err &
client=$!
wait_for 'grep -q out out && grep -q err err'
kill -TERM $client; wait $client; echo "sp-client=$?"
echo "sp-state=$($h inspect -f '{{.State.Status}}' sp)"
echo "sp-err=$(cat err)"
wait_for '[ "$($h inspect -f "{{.State.Status}}" sp)" = exited ]'
echo "sp-logs=$($h logs sp 2>/dev/null | tr '\n' ' ')"
echo "sp-code=$($h inspect -f '{{.State.ExitCode}}' sp)"
echo "sp-stdin=$(echo piped | $h run -i --rm --sig-proxy=false --rootfs $R -- cat) $?"
# Input still open when hull goes: its going ends the process's input.
mkfifo feed
$h run -i --name spin --sig-proxy=false --rootfs $R -- sh -c 'echo up; cat; echo eof' <feed >/dev/null 2>&1 &
client=$!
exec 8>feed
wait_for '$h logs spin 2>/dev/null | grep -q up'
kill -TERM $client; wait $client
wait_for '[ "$($h inspect -f "{{.State.Status}}" spin)" = exited ]'
exec 8>&-
echo "sp-input-gone=$($h logs spin | tr '\n' ' ')"
$h rm spin >/dev/null
$h run --rm --sig-proxy=false --rootfs $R -- sh -c 'echo out; echo err >&2; exit 4' 2>/dev/null; echo "sp-exit=$?"
echo "sp-left=$($h ps -aq | wc -l)"
"#,
    );
    assert_eq!(facts(&output, "sp-client"), ["143"], "{output}");
    assert_eq!(facts(&output, "sp-state"), ["running"], "{output}");
    assert_eq!(facts(&output, "sp-err"), ["err"], "{output}");
    assert_eq!(facts(&output, "sp-logs"), ["out finished "], "{output}");
    assert_eq!(facts(&output, "sp-code"), ["0"], "{output}");
    assert_eq!(facts(&output, "sp-stdin"), ["piped 0"], "{output}");
    assert_eq!(facts(&output, "sp-input-gone"), ["up eof "], "{output}");
    assert_eq!(facts(&output, "sp-exit"), ["4"], "{output}");
    assert_eq!(facts(&output, "sp-left"), ["1"], "{output}");
}

#[test]
fn bad_arguments_are_refused_before_the_machine_starts() {
    let hull = Hull::new();
    let refused: [(&[&str], i32, &str); 10] = [
        (
            &["network", "create", "bad/name"],
            125,
            "is not a network name",
        ),
        (&["start", "nosuch"], 1, "no such container: nosuch"),
        (&["rmi", "nosuch"], 1, "no such image: nosuch"),
        (
            &["run", "--memroy", "1g", "alpine"],
            125,
            "unexpected argument '--memroy' found (a similar argument exists: '--memory'); \
             see 'hull run --help'",
        ),
        (
            &["run", "--gpus", "all", "alpine"],
            125,
            "--gpus all: host GPUs cannot be passed into a container's VM",
        ),
        // Wrong on its own: refused before the image is looked for.
        (
            &["run", "-v", "data:relative", "absent.example/x"],
            125,
            "invalid mount target \"relative\"",
        ),
        (
            &["run", "-h", "a b", "absent.example/x"],
            125,
            "is not a host name",
        ),
        (
            &["run", "UPPER/x"],
            125,
            "repository name must be lowercase",
        ),
        (
            &["run", "--network", "host", "--rootfs", "/", "true"],
            125,
            "--network host is not supported",
        ),
        (
            &[
                "run",
                "--network",
                "none",
                "-p",
                "80",
                "--rootfs",
                "/",
                "true",
            ],
            125,
            "--network none gives the container no network",
        ),
    ];
    for (args, code, what) in refused {
        let mut command = hull.command(args);
        command.env("HULL_BACKEND", "machine");
        let output = hull_e2e::output_with_stdin(command, b"");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(what), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("starting the hull machine"),
            "{args:?}: {stderr}"
        );
    }
    // A command group alone prints its help, on stderr, as Docker's do.
    for (args, usage) in [
        (&[][..], "Usage: hull [OPTIONS] <COMMAND>"),
        (&["image"][..], "Usage: hull image [OPTIONS] <COMMAND>"),
    ] {
        let output = hull.run(args, b"");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.contains(usage), "{args:?}: {stderr}");
    }
    let status = hull.run(["machine", "status"], b"");
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.starts_with("hull machine: stopped"), "{status}");
}
