#!/usr/bin/env bash
# Published-port benchmark (issue 5): busybox httpd in a container published
# with `-p`, beside the same httpd run natively, both loaded by wrk from the
# same place, in one KVM test host session.
#
#   bench/net.sh            (after scripts/setup)
#
# Three targets: the native server on the test host's loopback; the
# container through its published port (hull's proxy, then the bridge and
# virtio-net); the container's own address on the bridge (no proxy). Two
# loads: a 4 KiB page (requests/s, latency p50/p99) and a 1 MiB file
# (throughput). Prints a Markdown report for bench/RESULTS.md.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

if [[ "${1:-}" != --inside ]]; then
    bench/setup
    scripts/apt-ensure wrk
    [[ -x target/release/hull ]] || { echo "net.sh: run scripts/setup first" >&2; exit 1; }
    echo "load before: \`$(uptime)\`"
    echo
    echo "- hull: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- || echo ' + uncommitted changes')"
    echo
    # The test host has one vCPU (see DEFAULT_CPUS in cli/src/testhost/machine.rs).
    tests/kvm-host/run /bin/bash "$repo/bench/net.sh" --inside
    echo
    echo "load after: \`$(uptime)\`"
    exit
fi

hull="$repo/target/release/hull"
rootfs="$HOME/.cache/hull/bench/busybox-root"
export HULL_ROOT=$(mktemp -d /tmp/hull-bench-net.XXXXXX)
duration=10s
connections=8

www=$(mktemp -d)
head -c 4096 /dev/urandom > "$www/page"
head -c 1048576 /dev/urandom > "$www/file"
busybox httpd -p 127.0.0.1:18080 -h "$www"

"$hull" run -d --name web -p 127.0.0.1:18081:80 --rootfs "$rootfs" -- \
    sh -c 'mkdir /www; head -c 4096 /dev/urandom > /www/page;
           head -c 1048576 /dev/urandom > /www/file; exec httpd -f -p 80 -h /www' >/dev/null
until wget -q -O /dev/null http://127.0.0.1:18081/page 2>/dev/null; do sleep 0.2; done
ip=$("$hull" inspect web | grep -o '"IPAddress": "[0-9.]*"' | head -n 1 | cut -d'"' -f4)

# wrk's summary as: requests/s, transfer/s, p50, p99.
measure() {
    wrk -t 1 -c "$connections" -d "$duration" --latency "$1" | awk '
        /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
        /^Requests\/sec/ { rps = $2 } /^Transfer\/sec/ { tps = $2 }
        END { printf "%s | %s | %s | %s", rps, tps, p50, p99 }'
}

echo "wrk -t 1 -c $connections -d $duration --latency, busybox httpd, test host with $(nproc) vCPUs:"
echo
echo "| target | file | requests/s | transfer/s | p50 | p99 |"
echo "| --- | --- | --- | --- | --- | --- |"
for file in page file; do
    echo "| native, 127.0.0.1 | $file | $(measure http://127.0.0.1:18080/$file) |"
    echo "| hull, published 127.0.0.1:18081 | $file | $(measure http://127.0.0.1:18081/$file) |"
    echo "| hull, container address $ip | $file | $(measure http://$ip/$file) |"
done
"$hull" rm -f web >/dev/null
