//! `hull diff`, `hull commit` and `hull export` end to end, typed in this
//! host's shell as a Docker user types them (the container's VM in the
//! hull machine, the committed image stored on this host): a container of
//! an imported busybox image writes, changes and deletes files, and writes
//! into a volume; `diff` lists Docker's lines; `commit -c` makes an image
//! that `run` runs with the new CMD; `export` is its whole root without
//! `/proc`'s contents or the volume's. Stopped, the container's files work
//! the same (a VM boots for them alone), as in Docker; and a file copied
//! into a container only created is there when it first starts (how CI
//! jobs hand a container its input and take its output). The containers
//! need no network (`--network none`).

use hull_e2e::script::{facts, on_this_host};
use hull_e2e::{assert_clean, Hull};

#[test]
fn containers_diff_commit_and_export() {
    let hull = Hull::new();
    let output = on_this_host(&hull, SCRIPT);
    let fact = |key| facts(&output, key);

    assert_eq!(fact("import"), ["0"], "{output}");
    assert_eq!(fact("run"), ["0"], "{output}");
    assert_eq!(fact("exec"), ["0"], "{output}");
    // The agent's /etc files, the kernel's file systems and the volume's
    // mount point are the run's, not the container's changes.
    assert_eq!(
        fact("diff"),
        ["C /etc,D /etc/group,C /etc/passwd,A /greeting,A /srv,A /srv/new,A /srv/new/file"],
        "{output}"
    );
    assert_eq!(fact("commit"), ["0 1"], "{output}");
    assert_eq!(fact("committed"), ["hello"], "{output}");
    assert_eq!(fact("same-id"), ["yes"], "{output}");
    assert_eq!(fact("config"), ["tester [cat /greeting]"], "{output}");
    assert_eq!(fact("history"), ["sleep 600|snapshot"], "{output}");
    // The image holds the changes but not the volume's file.
    assert_eq!(fact("contents"), ["gone added novolume"], "{output}");
    // A change Docker's commit does not take: refused, nothing stored.
    assert_eq!(fact("bad-change"), ["1 1 0"], "{output}");
    // In the event log: the commit (its container's, taken in the hull
    // machine, stored here) and the images imported and tagged.
    assert_eq!(fact("commit-event"), ["box greeted:1 snapshot"], "{output}");
    assert_eq!(fact("image-events"), ["import,tag"], "{output}");
    // greeting, srv/new/file, nothing under proc/ or data/, the image's
    // busybox, the deleted etc/group gone.
    assert_eq!(fact("export"), ["0 1 1 0 0 1 0"], "{output}");
    assert_eq!(fact("export-o"), ["0 1"], "{output}");
    // Stopped, its files read as they did while it ran, the volume's too.
    let stopped = fact("stopped");
    assert!(stopped[0].starts_with("exited "), "{output}");
    assert_eq!(fact("stopped-diff"), fact("diff"), "{output}");
    assert_eq!(fact("stopped-export"), ["0 1 1 1"], "{output}");
    assert_eq!(fact("stopped-commit"), ["0 hello"], "{output}");
    assert_eq!(fact("stopped-cp-out"), ["0 y v"], "{output}");
    // Nothing of that ran it: its state and exit code are as they were.
    assert_eq!(fact("stopped-after"), stopped, "{output}");
    // Created, then given a file, it stays created and its first run reads
    // the file (in the working directory Docker makes at create); its
    // output is taken once it has exited.
    assert_eq!(fact("created-cp-in"), ["0 created"], "{output}");
    assert_eq!(fact("created-start"), ["input"], "{output}");
    assert_eq!(fact("created-cp-out"), ["0 out exited 0"], "{output}");
    // A missing container's files: one line, exit 1.
    assert_eq!(
        fact("missing"),
        ["1 hull: no such container: nosuch"],
        "{output}"
    );
    assert_clean(&hull);
}

const SCRIPT: &str = r#"
d=$(mktemp -d)
tar -C $R -c . | $h import - base:1 >/dev/null; echo "import=$?"
$h run -d --network none --name box -v data:/data base:1 sleep 600 >/dev/null; echo "run=$?"
$h exec box sh -c 'echo hello > /greeting && echo more >> /etc/passwd && rm /etc/group && mkdir -p /srv/new && echo y > /srv/new/file && echo v > /data/in-volume'; echo "exec=$?"
echo "diff=$($h diff box | paste -sd,)"

id=$($h commit -c 'CMD ["cat","/greeting"]' -m snapshot -a tester box greeted:1); code=$?
echo "commit=$code $(echo "$id" | grep -c '^sha256:[0-9a-f]\{64\}$')"
echo "committed=$($h run --rm --network none greeted:1)"
echo "same-id=$([ "$($h image inspect -f '{{.Id}}' greeted:1)" = "$id" ] && echo yes)"
echo "config=$($h image inspect -f '{{.Author}} {{.Config.Cmd}}' greeted:1)"
echo "history=$($h history --no-trunc --format '{{.CreatedBy}}|{{.Comment}}' greeted:1 | head -1)"
echo "contents=$($h run --rm --network none greeted:1 sh -c 'test -e /etc/group || echo gone; test -f /srv/new/file && echo added; test -e /data/in-volume || echo novolume' | paste -sd' ')"
$h commit -c 'RUN rm -rf /' box bad:1 > /dev/null 2> $d/err; code=$?
echo "bad-change=$code $(grep -c '"RUN" is not a valid change command' $d/err) $($h images --format '{{.Repository}}' | grep -c '^bad$')"
echo "commit-event=$($h events --since 10m --until 0s --filter event=commit --format '{{.Actor.Attributes.name}} {{.Actor.Attributes.imageRef}} {{.Actor.Attributes.comment}}')"
echo "image-events=$($h events --since 10m --until 0s --filter type=image --format '{{.Action}}' | sort -u | paste -sd,)"

$h export box > $d/box.tar; code=$?
tar -tf $d/box.tar | sed 's|^\./||; s|/$||' > $d/list
echo "export=$code $(grep -cx greeting $d/list) $(grep -cx srv/new/file $d/list) $(grep -c '^proc/.' $d/list) $(grep -c '^data/.' $d/list) $(grep -cx bin/busybox $d/list) $(grep -cx etc/group $d/list)"
$h export -o $d/o.tar box; echo "export-o=$? $(tar -tf $d/o.tar | grep -cx greeting)"

$h stop -t 1 box > /dev/null
echo "stopped=$($h inspect -f '{{.State.Status}} {{.State.ExitCode}} {{.State.FinishedAt}}' box)"
echo "stopped-diff=$($h diff box | paste -sd,)"
$h export box > $d/stopped.tar; code=$?
tar -tf $d/stopped.tar | sed 's|^\./||; s|/$||' > $d/list
echo "stopped-export=$code $(grep -cx greeting $d/list) $(grep -cx srv/new/file $d/list) $(grep -cx bin/busybox $d/list)"
$h commit box stopped:1 > /dev/null; code=$?
echo "stopped-commit=$code $($h run --rm --network none stopped:1 cat /greeting)"
$h cp box:/srv/new/file $d/file; code=$?
echo "stopped-cp-out=$code $(cat $d/file) $($h cp box:/data/in-volume - | tar -xO)"
echo "stopped-after=$($h inspect -f '{{.State.Status}} {{.State.ExitCode}} {{.State.FinishedAt}}' box)"
$h rm box > /dev/null
$h volume rm data > /dev/null

echo input > $d/input
$h create --network none --name fresh -w /work base:1 sh -c 'cat input; echo out > output' > /dev/null
$h cp $d/input fresh:/work/input; code=$?
echo "created-cp-in=$code $($h inspect -f '{{.State.Status}}' fresh)"
echo "created-start=$($h start -a fresh)"
$h cp fresh:/work/output $d/output; code=$?
echo "created-cp-out=$code $(cat $d/output) $($h inspect -f '{{.State.Status}} {{.State.ExitCode}}' fresh)"
$h rm fresh > /dev/null
$h cp nosuch:/etc/passwd $d/ 2> $d/err; echo "missing=$? $(cat $d/err)"
"#;
