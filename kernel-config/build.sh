#!/usr/bin/env bash
# Builds hull's guest kernel (vmlinux) from Debian's linux-source-6.12 with
# hull.config applied on top of allnoconfig, and caches it by content hash:
#   ~/.cache/hull/kernel/<hash>/vmlinux
# The hash covers the fragment, the exact source package version and
# RECIPE_VERSION (bump it when the build steps below change what is built), so
# an unchanged tree is a no-op. `current` beside the hashed directories points
# at the latest build; hull looks for its default kernel there. Prints the path
# of vmlinux on stdout; logs go to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fragment="$here/hull.config"
cache_root="${HULL_CACHE_DIR:-$HOME/.cache/hull}/kernel"
source_pkg=linux-source-6.12
RECIPE_VERSION=1
build_deps=(build-essential flex bison bc libelf-dev libssl-dev xz-utils "$source_pkg")

log() { echo "kernel-config: $*" >&2; }

"$here/../scripts/apt-ensure" "${build_deps[@]}"

source_version="$(dpkg-query -W -f='${Version}' "$source_pkg")"
hash="$(cat "$fragment" <(echo "$source_version recipe $RECIPE_VERSION") | sha256sum | cut -c1-16)"
out="$cache_root/$hash"

publish() {
    ln -sfn "$hash" "$cache_root/.current.$$"
    mv -T "$cache_root/.current.$$" "$cache_root/current"
    echo "$out/vmlinux"
}

if [[ -f "$out/vmlinux" ]]; then
    publish
    exit 0
fi

tarball="/usr/src/$source_pkg.tar.xz"
work="$(mktemp -d "$cache_root.build.XXXXXX" 2>/dev/null || { mkdir -p "$(dirname "$cache_root")"; mktemp -d "$cache_root.build.XXXXXX"; })"
trap 'rm -rf "$work"' EXIT
log "building $source_pkg $source_version into $out (this takes several minutes)"
tar -xJf "$tarball" -C "$work"
src="$work/$source_pkg"

make -C "$src" -s KCONFIG_ALLCONFIG="$fragment" allnoconfig >&2

# A symbol whose dependencies are unmet is silently dropped by Kconfig: refuse
# to build a kernel that lacks something the fragment asked for.
dropped=0
while IFS= read -r line; do
    grep -qxF "$line" "$src/.config" || { log "option lost in .config: $line"; dropped=1; }
done < <(grep -E '^CONFIG_[A-Z0-9_]+=' "$fragment")
((dropped == 0)) || { log "fix hull.config: the options above have unmet dependencies"; exit 1; }

make -C "$src" -s -j"$(nproc)" vmlinux >&2

mkdir -p "$cache_root"
staging="$work/out"
mkdir "$staging"
cp "$src/vmlinux" "$src/.config" "$staging/"
make -C "$src" -s kernelrelease > "$staging/release"
mv -T "$staging" "$out"
log "built $(cat "$out/release")"
publish
