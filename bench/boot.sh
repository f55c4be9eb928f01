#!/usr/bin/env bash
# Boot benchmark (issue 2): cold `hull run --rm --rootfs busybox -- true`
# beside QEMU's microvm machine booting the same kernel and agent initramfs,
# both in one KVM test host session; then, for context, `hull run` from this
# shell, which on a PVM host includes booting the test host.
#
#   bench/boot.sh [RUNS]     (default 10; after scripts/setup)
#
# Prints a Markdown report for bench/RESULTS.md. Run it on a quiet machine:
# the report starts and ends with the load average.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
runs="${1:-10}"
host_runs=3

bench/setup
tools="$HOME/.cache/hull/bench"
rootfs="$tools/busybox-root"
hull="$repo/target/release/hull"
kernel="$HOME/.cache/hull/kernel/current/vmlinux"
[[ -x "$hull" && -f "$kernel" ]] || { echo "boot.sh: run scripts/setup first" >&2; exit 1; }

echo "load before: \`$(uptime)\`"
echo
echo "- hull: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- || echo ' + uncommitted changes'), guest kernel $(cat "$(dirname "$kernel")/release")"
echo "- $(qemu-system-x86_64 -version | head -1), $("$tools/bin/virtiofsd" --version)"
echo
echo "### Inside one KVM test host session ($runs runs each, after one warm-up each)"
echo
tests/kvm-host/run /usr/bin/python3 bench/boot.py --runs "$runs" \
    --hull "$hull" --kernel "$kernel" --virtiofsd "$tools/bin/virtiofsd" --rootfs "$rootfs"
echo
echo "### From the host shell, including the KVM test host's boot ($host_runs runs, after one warm-up)"
echo
log="$(mktemp)"
"$hull" run --rm --rootfs "$rootfs" -- true 2>>"$log"
times=()
for ((i = 0; i < host_runs; i++)); do
    start="$(date +%s.%N)"
    "$hull" run --rm --rootfs "$rootfs" -- true 2>>"$log"
    end="$(date +%s.%N)"
    times+=("$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')")
done
rm -f "$log"
median="$(printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }')"
echo "\`hull run --rm --rootfs busybox -- true\`: median ${median} s (all: ${times[*]})"
echo
echo "load after: \`$(uptime)\`"
