#!/usr/bin/env bash
# Image pull benchmark (issue 3): pull and unpack a ~200 MB, 5-layer image
# from a local registry into an empty store, `hull pull` beside
# `skopeo copy` + `umoci unpack` (Debian's packages), alternating run by run;
# plus the unpack alone against plain `tar -xzf` of the same layer blobs.
#
#   bench/pull.sh [RUNS]     (default 5; needs target/release/hull: scripts/build)
#
# Prints a Markdown report for bench/RESULTS.md. Run it on a quiet machine:
# the report starts and ends with the load average.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
runs="${1:-5}"
hull="$repo/target/release/hull"
[[ -x "$hull" ]] || { echo "pull.sh: build hull first (scripts/build)" >&2; exit 1; }

# docker-registry serves the image, skopeo pushes it and is half of the peer,
# umoci the other half; busybox-static makes the base layer.
scripts/apt-ensure docker-registry skopeo umoci busybox-static python3 gzip tar
tools="$HOME/.cache/hull/bench"
rootfs="$tools/busybox-root"
[[ -x "$rootfs/bin/busybox" ]] || scripts/make-busybox-rootfs "$rootfs"

# The test image, built once and cached under a hash of its recipe (and of
# what else decides its bytes: the busybox package, Python's zlib).
key="$( { cat bench/pull_image.py; dpkg-query -W busybox-static
          python3 -c 'import zlib; print(zlib.ZLIB_RUNTIME_VERSION)'; } | sha256sum | cut -c1-16)"
image="$tools/pull-image-$key"
if [[ ! -f "$image/info.json" ]]; then
    echo "pull.sh: building the test image into $image (~20 s)" >&2
    python3 bench/pull_image.py "$rootfs" "$image"
fi

# All runs write under one temporary directory on the disk (not tmpfs), as
# a real store would; the registry keeps its storage there too.
work="$(mktemp -d /var/tmp/hull-pull-bench.XXXXXX)"
registry_pid=
cleanup() {
    [[ -z "$registry_pid" ]] || kill "$registry_pid" 2>/dev/null || true
    [[ -z "$registry_pid" ]] || wait "$registry_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# A private copy: others may rebuild target/release/hull during the run.
cp "$hull" "$work/hull"

# Debian's docker-registry (CNCF distribution) on a free loopback port, as
# tests/support/registry.rs starts it.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat > "$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOF
/usr/bin/docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
    sleep 0.1
done
ref="127.0.0.1:$port/bench/big:v1"
# skopeo copies the layers as they are (no recompression): the registry
# serves exactly the blobs of the cached layout.
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$image/layout:v1" "docker://$ref"

echo "load before: \`$(uptime)\`"
echo
echo "- hull: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- || echo ' + uncommitted changes') (target/release/hull built $(date -u -r "$hull" '+%Y-%m-%d %H:%M UTC'))"
echo "- $(skopeo --version), $(umoci --version), docker-registry $(dpkg-query -W -f='${Version}' docker-registry), GNU tar $(dpkg-query -W -f='${Version}' tar), gzip $(dpkg-query -W -f='${Version}' gzip)"
echo "- $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM; work directory on $(findmnt -no FSTYPE -T "$work") ($(findmnt -no SOURCE -T "$work"))"
echo
python3 bench/pull.py --hull "$work/hull" --ref "$ref" --image "$image" --work "$work" --runs "$runs"
echo
echo "load after: \`$(uptime)\`"
