#!/usr/bin/env bash
# Build benchmark (issue 14): the same Dockerfile and context built by
# `hull build` (every RUN in a microVM of its own) and by `buildah bud`
# (Debian's package, chroot isolation, --layers for its cache), alternating
# run by run: a cold build (no cache), a rebuild with nothing changed, and a
# rebuild after a one-byte change to a copied file (the steps after it run
# again).
#
#   bench/build.sh [RUNS]                  (default 3; needs target/release/hull: scripts/build)
#   bench/build.sh --in-test-host [RUNS]   both builders in one KVM test host session
#
# The Dockerfile is the seed Flask app's shape without Python (no registry
# here): the base is a busybox root ADDed from a local tar, so both builders
# start from the same bytes. On a host whose KVM cannot run hull's guest,
# hull's RUN steps go to the hull machine (QEMU TCG, ~15x slower than
# native), while buildah runs natively: the report says which. With
# --in-test-host, both run in one KVM test host (tests/kvm-host), where
# hull's RUN VMs use its KVM directly and buildah runs beside them: both
# under the same emulation, so the ratio compares the builders.
#
# Prints a Markdown report for bench/RESULTS.md; run it on a quiet machine.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
hull="$repo/target/release/hull"
[[ -x "$hull" ]] || { echo "build.sh: build hull first (scripts/build)" >&2; exit 1; }
tools="$HOME/.cache/hull/bench"
rootfs="$tools/busybox-root"
if [[ -z "${HULL_BENCH_INSIDE_TEST_HOST:-}" ]]; then
    scripts/apt-ensure buildah busybox-static python3
    [[ -x "$rootfs/bin/busybox" ]] || scripts/make-busybox-rootfs "$rootfs"
fi
if [[ "${1:-}" == --in-test-host ]]; then
    shift
    exec tests/kvm-host/run /usr/bin/env HULL_BENCH_INSIDE_TEST_HOST=1 \
        /bin/bash "$repo/bench/build.sh" "$@"
fi
runs="${1:-3}"

if [[ -n "${HULL_BENCH_INSIDE_TEST_HOST:-}" ]]; then
    # The test host's own memory, not its 9p view of this host's disk.
    work="$(mktemp -d /tmp/hull-build-bench.XXXXXX)"
    mount -t tmpfs tmpfs "$work"
else
    work="$(mktemp -d /var/tmp/hull-build-bench.XXXXXX)"
fi
export HULL_ROOT="$work/hull-root"
buildah_root="$work/buildah-root"
buildah_run="$work/buildah-run"
cleanup() {
    "$work/hull" machine stop >/dev/null 2>&1 || true
    buildah --root "$buildah_root" --runroot "$buildah_run" rmi --all --force >/dev/null 2>&1 || true
    if [[ -n "${HULL_BENCH_INSIDE_TEST_HOST:-}" ]]; then umount "$work"; fi
    rm -rf "$work"
}
trap cleanup EXIT
# A private copy: others may rebuild target/release/hull during the run.
cp "$hull" "$work/hull"
# The static guest agent, which hull finds beside the workspace's target.
export HULL_AGENT="${HULL_AGENT:-$repo/target/x86_64-unknown-linux-gnu/release/hull-agent}"

context="$work/context"
mkdir -p "$context"
tar -C "$rootfs" -cf "$context/rootfs.tar" .
echo 'flask==3.0' > "$context/requirements.txt"
echo 'print("hello")' > "$context/app.py"
cat > "$context/Dockerfile" <<'EOF'
FROM scratch
ADD rootfs.tar /
WORKDIR /app
COPY requirements.txt .
RUN cat requirements.txt > /installed && echo "installed $(cat /installed)"
COPY app.py .
RUN i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i + 1)); done > /app/generated
ENV PORT=5000
EXPOSE 5000
CMD ["sh", "-c", "cat /app/app.py"]
EOF

# Seconds `$@` takes, its output kept in $work/last.log.
seconds() {
    local start end
    start=$(date +%s.%N)
    "$@" >"$work/last.log" 2>&1 || { cat "$work/last.log" >&2; return 1; }
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.2f}')"
}
hull_build() { "$work/hull" build "$@" -t bench:1 "$context"; }
buildah_build() {
    buildah --root "$buildah_root" --runroot "$buildah_run" bud --isolation chroot --layers \
        "$@" -t bench:1 "$context"
}
load_before="$(uptime)"
# The machine's boot is not a build's: start it first where it is used.
"$work/hull" machine start >/dev/null 2>&1 || true

declare -A times
for run in $(seq "$runs"); do
    for builder in hull buildah; do
        echo 'print("hello")' > "$context/app.py"
        times[$builder-cold]+="$(seconds ${builder}_build --no-cache) "
        times[$builder-nochange]+="$(seconds ${builder}_build) "
        echo "print(\"hello$run\")" > "$context/app.py"
        times[$builder-onechange]+="$(seconds ${builder}_build) "
    done
done
# hull's rebuild with nothing changed must be all cached.
hull_build >"$work/check.log" 2>&1
cached=$(grep -c ' CACHED$' "$work/check.log" || true)

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
where="directly on this host's KVM; buildah ran natively (chroot isolation)"
[[ -e /sys/module/kvm_pvm ]] && where="in the hull machine (QEMU TCG with nested SVM; this host's KVM is PVM); buildah ran natively (chroot isolation)"
[[ -n "${HULL_BENCH_INSIDE_TEST_HOST:-}" ]] && where="on the KVM of one KVM test host (QEMU TCG with nested SVM), and buildah (chroot isolation) in the same test host: both under the same emulation"

echo "load before: \`$load_before\`"
echo
echo "- $runs runs each, alternating; medians in seconds. hull's RUN steps ran $where."
echo "- hull's rebuild with nothing changed: $cached steps CACHED."
echo
echo "| build | hull (s) | buildah (s) | hull / buildah |"
echo "| --- | --- | --- | --- |"
for kind in cold nochange onechange; do
    h=$(echo "${times[hull-$kind]}" | median)
    b=$(echo "${times[buildah-$kind]}" | median)
    ratio=$(python3 -c "print(f'{$h / max($b, 0.01):.1f}')")
    echo "| $kind | $h | $b | $ratio |"
done
echo
echo "all runs: $(for k in "${!times[@]}"; do echo "$k: ${times[$k]}"; done | sort | paste -sd ';')"
echo "load after: \`$(uptime)\`"
