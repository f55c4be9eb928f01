#!/usr/bin/python3
"""Cold-boot benchmark: `hull run --rm --rootfs ROOTFS -- true` beside QEMU's
microvm machine booting the same kernel and agent initramfs to do the same
work: mount the virtio-fs root under an overlay whose upper layer is an
ext4 scratch disk (virtio-blk) made per run, connect over vsock, run `true`,
power off.

Runs where /dev/kvm is real (inside the KVM test host: see bench/boot.sh).
Prints a Markdown table on stdout and progress on stderr.

Measured for each run, from just before the first process is spawned until
every process of the run has been reaped:
  hull:  wall time of `hull run`; peak RSS from wait4(2) on it, which is the
         larger of the CLI's own peak and that of the `hull __vmm` child it
         reaps (Linux folds reaped children's ru_maxrss in as a maximum).
  QEMU:  wall time from making the sockets and the scratch disk until both
         virtiofsd and QEMU exited, with this script acting as the host
         side of the agent protocol;
         peak RSS of QEMU and of virtiofsd, each from its own wait4(2).
"""

import argparse
import glob
import json
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Mirrors of protocol/src/lib.rs (the version is read from it below).
AGENT_READY_PORT = 1024
TAG_HELLO, TAG_RUN, TAG_STDIN_CLOSE, TAG_EXITED, TAG_FAILED, TAG_SHUTDOWN = 1, 2, 5, 9, 10, 11
TAG_STARTED, TAG_STDOUT, TAG_STDERR = 3, 6, 7

# Mirrors of runtime/src/boot.rs: the share tag, the scratch disk's name, the
# guest CID and the defaults of `hull run` (1 vCPU, 512 MiB).
ROOTFS_TAG = "hull-rootfs"
SCRATCH_DEVICE = "/dev/vda"
GUEST_CID = 3
VCPUS = 1
MEMORY_MIB = 512
SCRATCH_SIZE = 10 << 30  # sparse, as in runtime/src/scratch.rs
BOOT_TIMEOUT_S = 120


def constant(path, pattern):
    """A constant of hull's source, so that this script cannot drift from it."""
    match = re.search(pattern, open(os.path.join(REPO, path)).read())
    if not match:
        sys.exit(f"boot.py: {pattern} not found in {path}")
    return match.group(1)


PROTOCOL_VERSION = int(constant("protocol/src/lib.rs", r"pub const VERSION: u32 = (\d+);"))


def guest_cmdline():
    """hull's GUEST_CMDLINE plus the `quiet` it adds without --console."""
    return constant("runtime/src/boot.rs", r'const GUEST_CMDLINE: &str = "([^"]*)";') + " quiet"


def reap(pid):
    """Waits for `pid`; returns (exit status, peak RSS in KiB)."""
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss


# --- hull ------------------------------------------------------------------

def run_hull(hull, rootfs, env):
    start = time.monotonic()
    proc = subprocess.Popen([hull, "run", "--rm", "--rootfs", rootfs, "--", "true"], env=env)
    code, rss = reap(proc.pid)
    elapsed = time.monotonic() - start
    proc.returncode = code  # reaped here, not by Popen
    if code != 0:
        sys.exit(f"boot.py: hull run exited with {code}")
    return elapsed, {"hull run (CLI + VMM)": rss}


# --- QEMU microvm + virtiofsd, driven over vsock ---------------------------

def send(conn, tag, body=b""):
    conn.sendall(struct.pack("<IB", len(body) + 1, tag) + body)


def receive(conn):
    header = conn.recv(5, socket.MSG_WAITALL)
    if len(header) < 5:
        raise ConnectionError("the agent hung up")
    length, tag = struct.unpack("<IB", header)
    body = conn.recv(length - 1, socket.MSG_WAITALL) if length > 1 else b""
    return tag, body


def run_true(conn):
    """The host side of one session, as `hull run` does it without -i."""
    tag, body = receive(conn)
    hello = json.loads(body) if tag == TAG_HELLO else None
    if not hello or hello["version"] != PROTOCOL_VERSION:
        raise RuntimeError(f"unexpected greeting {tag} {body!r}")
    send(conn, TAG_HELLO, json.dumps({"version": PROTOCOL_VERSION, "software": "bench"}).encode())
    spec = {
        "argv": ["true"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=bench", "HOME=/root"],
        "cwd": "/", "user": "", "hostname": "bench",
        "rootfs": {"share": ROOTFS_TAG, "layers": [], "scratch_device": SCRATCH_DEVICE},
        "tty": None,
    }
    send(conn, TAG_RUN, json.dumps(spec).encode())
    send(conn, TAG_STDIN_CLOSE)
    while True:
        tag, body = receive(conn)
        if tag == TAG_EXITED:
            if json.loads(body) != {"Code": 0}:
                raise RuntimeError(f"true ended with {body!r}")
            break
        if tag == TAG_FAILED:
            raise RuntimeError(f"the agent could not run true: {body!r}")
        if tag not in (TAG_STARTED, TAG_STDOUT, TAG_STDERR):
            raise RuntimeError(f"unexpected message {tag} {body!r}")
    send(conn, TAG_SHUTDOWN)


def make_scratch_disk(path):
    """The container's writable layer, made as runtime/src/scratch.rs makes it."""
    with open(path, "xb") as disk:
        disk.truncate(SCRATCH_SIZE)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-E",
                    "lazy_itable_init=1,lazy_journal_init=1,nodiscard", path], check=True)


def qemu_argv(kernel, initramfs, scratch, fs_socket, console_log):
    return [
        "qemu-system-x86_64",
        "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
        # No ACPI (the guest kernel has none): microvm then lists its
        # virtio-mmio devices on the kernel command line itself.
        "-M", "microvm,acpi=off,x-option-roms=off",
        "-enable-kvm", "-cpu", "host", "-smp", str(VCPUS),
        # virtio-fs needs guest memory the vhost-user daemon can map.
        "-m", f"{MEMORY_MIB}M",
        "-object", f"memory-backend-memfd,id=ram,size={MEMORY_MIB}M,share=on",
        "-machine", "memory-backend=ram",
        "-kernel", kernel, "-initrd", initramfs, "-append", guest_cmdline(),
        "-serial", f"file:{console_log}",
        # hull's VMM has an i8042 too: the guest reboots through it (reboot=k).
        "-device", "i8042",
        "-drive", f"file={scratch},format=raw,if=none,id=scratch,discard=unmap",
        "-device", "virtio-blk-device,drive=scratch",
        "-chardev", f"socket,id=fs,path={fs_socket}",
        "-device", f"vhost-user-fs-device,chardev=fs,tag={ROOTFS_TAG}",
        "-device", f"vhost-vsock-device,guest-cid={GUEST_CID}",
    ]


def run_qemu(virtiofsd, kernel, initramfs, rootfs):
    with tempfile.TemporaryDirectory(prefix="hb-", dir="/run") as work:  # tmpfs, like HULL_ROOT
        start = time.monotonic()
        # Bound and listening before anything starts, as hull's CLI does with
        # its agent socket, so nothing below polls for a socket file.
        agent = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        agent.bind((socket.VMADDR_CID_ANY, AGENT_READY_PORT))
        agent.listen(1)
        fs_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        fs_socket = os.path.join(work, "fs.sock")
        fs_listener.bind(fs_socket)
        fs_listener.listen(1)
        scratch = os.path.join(work, "scratch.img")
        make_scratch_disk(scratch)

        # The share as hull serves it: read-only, cached, and (like hull's
        # in-process server) without a sandbox or seccomp filter of its own.
        fsd = subprocess.Popen(
            [virtiofsd, f"--fd={fs_listener.fileno()}", f"--shared-dir={rootfs}",
             "--readonly", "--cache=always", "--sandbox=none", "--seccomp=none",
             "--log-level=error"],
            pass_fds=[fs_listener.fileno()])
        fs_listener.close()
        qemu = subprocess.Popen(
            qemu_argv(kernel, initramfs, scratch, fs_socket, os.path.join(work, "console.log")),
            stdin=subprocess.DEVNULL)

        try:
            agent.settimeout(BOOT_TIMEOUT_S)
            conn, _ = agent.accept()
            agent.close()
            with conn:
                conn.settimeout(BOOT_TIMEOUT_S)
                run_true(conn)
            qemu_code, qemu_rss = reap(qemu.pid)
            fsd_code, fsd_rss = reap(fsd.pid)
        except BaseException:
            for proc in (qemu, fsd):
                proc.kill()
            try:
                console = open(os.path.join(work, "console.log"), errors="replace").read()
            except OSError:
                console = "(none)"
            print(f"boot.py: QEMU run failed; guest console:\n{console[-2000:]}", file=sys.stderr)
            raise
        elapsed = time.monotonic() - start
        qemu.returncode, fsd.returncode = qemu_code, fsd_code  # reaped here
        if qemu_code != 0:
            sys.exit(f"boot.py: QEMU exited with {qemu_code}")
        return elapsed, {"qemu-system-x86_64": qemu_rss, "virtiofsd": fsd_rss}


# --- driver ----------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--hull", default=os.path.join(REPO, "target/release/hull"))
    parser.add_argument("--virtiofsd", required=True)
    parser.add_argument("--rootfs", required=True)
    parser.add_argument("--kernel", default=os.path.expanduser("~/.cache/hull/kernel/current/vmlinux"))
    args = parser.parse_args()

    # hull's state in a fresh root, so the agent initramfs it caches (and
    # QEMU then boots) is known to be built from this checkout's agent. It
    # lives in the test host's memory and goes with it.
    hull_root = tempfile.mkdtemp(prefix="hb-", dir="/run")
    hull_env = dict(os.environ, HULL_ROOT=hull_root, HULL_KERNEL=args.kernel)
    # vhost-vsock for QEMU; Debian builds it as a module.
    subprocess.run(["modprobe", "vhost_vsock"], check=True)

    runners = {
        "hull": lambda: run_hull(args.hull, args.rootfs, hull_env),
        "qemu": None,  # needs hull's initramfs: set after hull's warm-up
    }
    print("warm-up: hull", file=sys.stderr)
    runners["hull"]()
    (initramfs,) = glob.glob(os.path.join(hull_root, "cache", "initramfs-*.cpio"))
    runners["qemu"] = lambda: run_qemu(args.virtiofsd, args.kernel, initramfs, args.rootfs)
    print("warm-up: qemu", file=sys.stderr)
    runners["qemu"]()

    # Alternate the two so that load changes hit both alike.
    times = {name: [] for name in runners}
    peaks = {}
    for i in range(args.runs):
        for name, runner in runners.items():
            elapsed, rss = runner()
            times[name].append(elapsed)
            for process, kib in rss.items():
                peaks.setdefault(process, []).append(kib)
            print(f"run {i + 1}/{args.runs}: {name} {elapsed:.3f} s", file=sys.stderr)

    hull_s, qemu_s = (statistics.median(times[n]) for n in ("hull", "qemu"))
    print(f"| | median of {args.runs} | min | max |")
    print("|---|---|---|---|")
    for name, label in (("hull", "`hull run`"), ("qemu", "QEMU microvm + virtiofsd")):
        print(f"| {label} | {statistics.median(times[name]):.3f} s "
              f"| {min(times[name]):.3f} s | {max(times[name]):.3f} s |")
    print(f"| ratio hull / QEMU | {hull_s / qemu_s:.2f} | | |")
    print()
    print("| peak RSS (ru_maxrss) | median | max |")
    print("|---|---|---|")
    for process, kibs in peaks.items():
        print(f"| {process} | {statistics.median(kibs) / 1024:.1f} MiB | {max(kibs) / 1024:.1f} MiB |")
    print()
    print("all times (s): " + json.dumps({n: [round(t, 3) for t in ts] for n, ts in times.items()}))


if __name__ == "__main__":
    main()
