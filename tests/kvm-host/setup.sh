#!/usr/bin/env bash
# Installs what the KVM test host needs, when missing.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../../scripts/apt-ensure" \
    qemu-system-x86 linux-image-amd64 busybox-static xz-utils
