#!/usr/bin/env bash
# The hull machine's cost (issue 6): `hull run --rm`, `hull exec`, a
# CPU-bound and a syscall-heavy workload through the machine from this
# host's shell, versus the same directly inside the KVM test host (where
# /dev/kvm is real), versus the workloads natively on this host; and how
# long `hull machine start` takes.
#
#   bench/machine.sh            (after scripts/setup)
#
# Prints a Markdown report for bench/RESULTS.md, with the load average
# before and after.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

bench/setup
rootfs="$HOME/.cache/hull/bench/busybox-root"
hull="$repo/target/release/hull"
[[ -x "$hull" ]] || { echo "machine.sh: run scripts/setup first" >&2; exit 1; }
work="$(mktemp -d)"
trap 'HULL_ROOT="$work/root" "$hull" machine rm >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

echo "load before: \`$(uptime)\`"
echo
echo "- hull: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- || echo ' + uncommitted changes')"
echo

# Machine starts, each from stopped (the image cached).
export HULL_ROOT="$work/root" HULL_BACKEND=machine
starts=()
for _ in 1 2 3; do
    begin=$EPOCHREALTIME
    "$hull" machine start >/dev/null
    starts+=("$(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $begin }")")
    "$hull" machine stop >/dev/null
done
echo "\`hull machine start\` from stopped: ${starts[*]} s"
echo

"$hull" machine start >/dev/null
python3 bench/machine.py measure --hull "$hull" --rootfs "$rootfs" > "$work/machine.json"
"$hull" machine stop >/dev/null
unset HULL_ROOT HULL_BACKEND
tests/kvm-host/run /usr/bin/python3 bench/machine.py measure --hull "$hull" --rootfs "$rootfs" \
    > "$work/testhost.json"
python3 bench/machine.py native > "$work/native.json"
python3 bench/machine.py report "$work/machine.json" "$work/testhost.json" "$work/native.json"
echo
echo "load after: \`$(uptime)\`"
