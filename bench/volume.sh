#!/usr/bin/env bash
# Volume benchmark (issue 13): sequential and 4 KiB random I/O (fio) and
# creating, stat'ing and deleting small files, on a named volume in a hull
# container, natively in the KVM test host, and in a QEMU microvm guest on a
# virtiofsd share, all in one test host session (bench/volume.py).
#
#   bench/volume.sh [ROUNDS [SEQ_SIZE [RAND_SIZE [RAND_SECONDS [FILES]]]]]
#                   (defaults 5 256M 64M 10 10000; after scripts/build)
#
# HULL_BASELINE=PATH adds a fourth side: the same hull run with another hull
# binary (a build without the change under test), round by round with the
# others. Both boot the agent of this worktree.
#
# The guests' root is a busybox root with fio (this machine's, with the
# libraries it links) and the work (bench/volume-work.sh, volume.fio and a
# static build of smallfiles.rs), made afresh under ~/.cache/hull/bench.
# Prints a Markdown report for bench/RESULTS.md.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
rounds="${1:-5}" seq_size="${2:-256M}" rand_size="${3:-64M}" rand_time="${4:-10}" files="${5:-10000}"

bench/setup
tools="$HOME/.cache/hull/bench"
hull="$repo/target/release/hull"
kernel="$HOME/.cache/hull/kernel/current/vmlinux"
agent="$repo/target/x86_64-unknown-linux-gnu/release/hull-agent"
[[ -x "$hull" && -x "$agent" && -f "$kernel" ]] || { echo "volume.sh: run scripts/setup and scripts/build first" >&2; exit 1; }

# The guests' root: fio keeps its path and its libraries theirs, so the
# dynamic loader finds them as it does here.
root="$tools/volume-root"
rm -rf "$root"
cp -a "$tools/busybox-root" "$root"
fio="$(command -v fio)"
for file in "$fio" $(ldd "$fio" | grep -o '/[^ ]*'); do
    cp -L --parents "$file" "$root"
done
mkdir "$root/bench"
cp bench/volume-work.sh bench/volume.fio "$root/bench/"
rustc --edition 2021 -O -C target-feature=+crt-static -o "$root/bench/smallfiles" bench/smallfiles.rs

echo "load before: \`$(uptime)\`"
echo
echo "- hull: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- || echo ' + uncommitted changes'), guest kernel $(cat "$(dirname "$kernel")/release")"
baseline=()
if [[ -n "${HULL_BASELINE:-}" ]]; then
    echo "- hull (baseline): $HULL_BASELINE"
    baseline=(--hull-baseline "$HULL_BASELINE")
fi
echo "- $(qemu-system-x86_64 -version | head -1), $("$tools/bin/virtiofsd" --version), $(fio --version)"
echo
# Room for the files under test on the test host's /run (tmpfs, half its memory).
HULL_AGENT="$agent" HULL_TESTHOST_MEMORY="${HULL_TESTHOST_MEMORY:-4096}" tests/kvm-host/run /usr/bin/python3 bench/volume.py \
    --rounds "$rounds" --seq-size "$seq_size" --rand-size "$rand_size" --rand-time "$rand_time" \
    --files "$files" --hull "$hull" "${baseline[@]}" --kernel "$kernel" --virtiofsd "$tools/bin/virtiofsd" --rootfs "$root"
echo
echo "load after: \`$(uptime)\`"
