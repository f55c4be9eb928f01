#!/usr/bin/env bash
# exec latency benchmark (issue 4): `hull exec NAME true` on a running
# container (median of 20) beside a cold `hull run --rm` (median of 10), in
# one KVM test host session.
#
#   bench/exec.sh            (after scripts/setup)
#
# Prints a Markdown report for bench/RESULTS.md, with the load average
# before and after.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

bench/setup
rootfs="$HOME/.cache/hull/bench/busybox-root"
hull="$repo/target/release/hull"
[[ -x "$hull" ]] || { echo "exec.sh: run scripts/setup first" >&2; exit 1; }

echo "load before: \`$(uptime)\`"
echo
echo "- hull: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- || echo ' + uncommitted changes')"
echo
tests/kvm-host/run /usr/bin/python3 bench/exec.py --hull "$hull" --rootfs "$rootfs"
echo
echo "load after: \`$(uptime)\`"
