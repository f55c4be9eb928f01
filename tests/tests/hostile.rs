//! Hostile conditions: every kind of hull process killed with SIGKILL at a
//! bad moment, a state root that runs out of space, and many `run --rm`
//! cycles. Each must leave consistent state (what `ps`, `rm` and the next
//! run see) and nothing behind: no processes, taps, nftables rules,
//! mounts, run directories or cgroups, and the host's open files back to
//! where they were.
//!
//! `HULL_E2E_RM_CYCLES` sets the number of `run --rm` cycles (20 by
//! default; `scripts/hostile` runs 1000).

use std::sync::Mutex;

use hull_e2e::script::{facts, in_test_host};

/// The tests here run one at a time: two of them count what is left on
/// the whole test host.
static WHOLE_HOST: Mutex<()> = Mutex::new(());

/// What a container may leave behind, counted: hull's processes, taps,
/// per-tap nftables rules, mounts under the root, run directories and VMM
/// cgroups.
const LEFTOVERS: &str = r#"
leftovers() {
    echo "$(grep -l -a -e '__monito[r]' -e '__vm[m]' /proc/[0-9]*/cmdline 2>/dev/null | wc -l)" \
        "$(ip -o link show | grep -c htap)" \
        "$(nft list ruleset 2>/dev/null | grep -c htap)" \
        "$(grep -c "$HULL_ROOT" /proc/mounts)" \
        "$(ls $HULL_ROOT/run 2>/dev/null | wc -l)" \
        "$(find /sys/fs/cgroup/hull -mindepth 1 -type d 2>/dev/null | wc -l)"
}
short() { echo $1 | cut -c1-12; }
"#;

#[test]
fn every_hull_process_killed_leaves_consistent_state_and_nothing_behind() {
    let _alone = WHOLE_HOST
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let output = in_test_host(&format!(
        "{LEFTOVERS}{}",
        r#"
echo "before=$(leftovers)"
# A container's monitor: the VM goes with it, the container shows as
# ended and is removed whole.
id=$($h run -d -p 9100:80 --rootfs $R -- sleep 600)
monitor=$(grep -o '"pid": [0-9]*' $HULL_ROOT/containers/$id/state.json | grep -o '[0-9]*$')
kill -9 $monitor
wait_for '[ -z "$($h ps -q --filter id=$id)" ]'
echo "monitor-killed=$($h ps -a --filter id=$id --format '{{.State}}')"
$h rm -f $id >/dev/null; echo "monitor-rm=$?"
# The jailed VMM, and the helper that waits for it.
for target in vmm helper; do
    id=$($h run -d -p 9100:80 --rootfs $R -- sleep 600)
    wait_for "[ -s $HULL_ROOT/run/$(short $id)/vmm.pid ]"
    case $target in
        vmm) pid=$(cat $HULL_ROOT/run/$(short $id)/vmm.pid) ;;
        helper) pid=$(pgrep -o -f "__vm[m] $HULL_ROOT/run/$(short $id)/") ;;
    esac
    kill -9 $pid
    wait_for "[ -z \"\$($h ps -q --filter id=$id)\" ]"
    echo "$target-killed=$($h ps -a --filter id=$id --format '{{.State}}')"
    $h start $id >/dev/null; echo "$target-restarted=$?"
    $h rm -f $id >/dev/null; echo "$target-rm=$?"
done
# A foreground run, attached: the next command sweeps its record.
$h run --rm -p 9100:80 --name fg --rootfs $R -- sleep 600 </dev/null >/dev/null 2>&1 &
fg=$!
wait_for '$h ps | grep -q " fg$"'
kill -9 $fg
wait_for '[ -z "$(grep -l -a -e "__vm[m]" /proc/[0-9]*/cmdline 2>/dev/null)" ]'
echo "fg-swept=$($h ps -aq | wc -l)"
# An import killed while it unpacks: the store keeps its images, the
# next import of the same archive works, a prune clears the work left.
mkdir -p /tmp/big && head -c 200000000 /dev/urandom > /tmp/big/blob
tar -C $R -cf /tmp/big.tar . && tar -C /tmp/big -rf /tmp/big.tar blob && rm -rf /tmp/big
$h import /tmp/big.tar killed:1 >/dev/null 2>&1 &
importer=$!
wait_for '[ -n "$(ls $HULL_ROOT/image/tmp 2>/dev/null)" ]'
kill -9 $importer; wait $importer 2>/dev/null
echo "import-killed=$($h images -q | wc -l)"
$h import /tmp/big.tar killed:1 >/dev/null; echo "reimport=$?"
echo "reimported-runs=$($h run --rm killed:1 sh -c 'echo ok')"
$h rmi killed:1 >/dev/null; $h image prune -a -f >/dev/null
echo "store-tmp=$(ls $HULL_ROOT/image/tmp | wc -l) $($h images -q | wc -l)"
rm -f /tmp/big.tar
echo "after=$(leftovers)"
"#
    ));
    let before = facts(&output, "before");
    assert_eq!(before, ["0 0 0 0 0 0"], "{output}");
    assert_eq!(facts(&output, "monitor-killed"), ["exited"], "{output}");
    assert_eq!(facts(&output, "monitor-rm"), ["0"], "{output}");
    for target in ["vmm", "helper"] {
        assert_eq!(
            facts(&output, &format!("{target}-killed")),
            ["exited"],
            "{output}"
        );
        assert_eq!(
            facts(&output, &format!("{target}-restarted")),
            ["0"],
            "{output}"
        );
        assert_eq!(facts(&output, &format!("{target}-rm")), ["0"], "{output}");
    }
    assert_eq!(facts(&output, "fg-swept"), ["0"], "{output}");
    assert_eq!(facts(&output, "import-killed"), ["0"], "{output}");
    assert_eq!(facts(&output, "reimport"), ["0"], "{output}");
    assert_eq!(facts(&output, "reimported-runs"), ["ok"], "{output}");
    assert_eq!(facts(&output, "store-tmp"), ["0 0"], "{output}");
    assert_eq!(facts(&output, "after"), before, "{output}");
}

#[test]
fn a_full_state_root_gives_one_line_errors_and_recovers() {
    let _alone = WHOLE_HOST
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let output = in_test_host(
        r#"
mkdir -p /tmp/small && mount -t tmpfs -o size=48m tmpfs /tmp/small
export HULL_ROOT=/tmp/small/root
tar -C $R -cf /tmp/rootfs.tar .
$h import /tmp/rootfs.tar bb:1 >/dev/null; echo "import=$?"
dd if=/dev/zero of=/tmp/small/fill bs=1M count=64 2>/dev/null
err=$($h import /tmp/rootfs.tar bb:2 2>&1 >/dev/null); echo "full-import=$? $(echo "$err" | wc -l)"
echo "full-import-says=$err"
err=$($h run --rm bb:1 true 2>&1 >/dev/null); echo "full-run=$? $(echo "$err" | wc -l)"
echo "full-run-says=$err"
err=$($h volume create vol 2>&1 >/dev/null); echo "full-volume=$? $(echo "$err" | wc -l)"
echo "full-volume-says=$err"
echo "full-state=$($h images -q | wc -l) $($h ps -aq | wc -l) $($h volume ls -q | wc -l) $(ls $HULL_ROOT/containers | wc -l)"
rm /tmp/small/fill
$h import /tmp/rootfs.tar bb:2 >/dev/null; echo "recovered-import=$?"
echo "recovered-run=$($h run --rm bb:2 sh -c 'echo ok')"
$h volume create vol >/dev/null; echo "recovered-volume=$?"
$h image prune -f >/dev/null
echo "store-tmp=$(ls $HULL_ROOT/image/tmp | wc -l)"
umount /tmp/small
"#,
    );
    assert_eq!(facts(&output, "import"), ["0"], "{output}");
    // Out of space: a non-zero exit, one line that says so, and nothing
    // half-made left for `images`, `ps` or `volume ls` to show.
    for what in ["import", "run", "volume"] {
        let fact = facts(&output, &format!("full-{what}"));
        let [code, lines] = fact[0].split(' ').collect::<Vec<_>>()[..] else {
            panic!("no full-{what} fact: {output}");
        };
        assert_ne!(code, "0", "{output}");
        assert_eq!(lines, "1", "{output}");
        let says = &facts(&output, &format!("full-{what}-says"))[0];
        assert!(says.contains("No space left on device"), "{output}");
    }
    assert_eq!(facts(&output, "full-state"), ["1 0 0 0"], "{output}");
    assert_eq!(facts(&output, "recovered-import"), ["0"], "{output}");
    assert_eq!(facts(&output, "recovered-run"), ["ok"], "{output}");
    assert_eq!(facts(&output, "recovered-volume"), ["0"], "{output}");
    assert_eq!(facts(&output, "store-tmp"), ["0"], "{output}");
}

#[test]
fn run_rm_cycles_bring_everything_back_to_its_baseline() {
    let cycles: u32 = std::env::var("HULL_E2E_RM_CYCLES")
        .ok()
        .and_then(|cycles| cycles.parse().ok())
        .unwrap_or(20);
    let _alone = WHOLE_HOST
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let output = in_test_host(&format!(
        "{LEFTOVERS}cycles={cycles}\n{}",
        r#"
$h run --rm -p 9200:80 --rootfs $R -- true; echo "first=$?"
files() { cut -f1 /proc/sys/fs/file-nr; }
memory() { awk '/^MemAvailable/ {print $2}' /proc/meminfo; }
rules=$(nft list ruleset)
files_before=$(files); memory_before=$(memory); before=$(leftovers)
failed=0
for i in $(seq $cycles); do
    $h run --rm -p 9200:80 --rootfs $R -- true || failed=$((failed + 1))
done
echo "failed=$failed"
echo "leftovers=$before / $(leftovers)"
[ "$(nft list ruleset)" = "$rules" ] && echo "rules=unchanged"
echo "files=$files_before $(files)"
echo "memory=$memory_before $(memory)"
echo "containers=$($h ps -aq | wc -l) $(ls $HULL_ROOT/containers | wc -l)"
"#
    ));
    assert_eq!(facts(&output, "first"), ["0"], "{output}");
    assert_eq!(facts(&output, "failed"), ["0"], "{output}");
    let leftovers = facts(&output, "leftovers");
    let (before, after) = leftovers[0].split_once(" / ").expect("leftovers fact");
    assert_eq!(before, after, "{output}");
    assert_eq!(facts(&output, "rules"), ["unchanged"], "{output}");
    assert_eq!(facts(&output, "containers"), ["0 0"], "{output}");
    // Open files and memory back to where they were, within what the
    // kernel's caches move on their own (a cycle that leaked one file
    // or 100 KiB would pass 20 cycles' slack only barely, 1000 not).
    let numbers = |fact: &str| -> Vec<i64> {
        facts(&output, fact)[0]
            .split(' ')
            .map(|n| n.parse().expect("a number"))
            .collect()
    };
    let files = numbers("files");
    assert!(files[1] - files[0] < 64, "{output}");
    let memory = numbers("memory");
    assert!(memory[0] - memory[1] < 64 * 1024, "{output}");
}
