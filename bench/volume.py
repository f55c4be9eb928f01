#!/usr/bin/python3
"""Volume benchmark: the same file system work (bench/volume-work.sh: fio's
sequential and 4 KiB random jobs of bench/volume.fio, then creating,
stat'ing and deleting small files with bench/smallfiles) done

  native: in this machine (the KVM test host), on a tmpfs directory;
  hull:   in a container, on a named volume
          (`hull run --rm -v NAME:/data --rootfs ROOTFS ...`);
  base:   the same with another hull binary (--hull-baseline), to compare
          a change with what it changes;
  qemu:   in a QEMU microvm guest booting hull's kernel and agent, on a
          virtiofsd share of a tmpfs directory, mounted by the agent at /data
          as it mounts hull's volumes.

Runs where /dev/kvm is real (inside the KVM test host: see bench/volume.sh).
The three alternate round by round. Prints a Markdown report on stdout and
progress on stderr.

Every directory under test is on the test host's /run (tmpfs): the
volume lives in HULL_ROOT there, virtiofsd shares a directory there, and
the native run works in one. Figures are what fio and smallfiles report
(guest clocks in the guests); the wall time of each run, boot included, is
shown besides.
"""

import argparse
import glob
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import boot  # noqa: E402  (the agent protocol and QEMU's command line)

VOLUME = "benchvol"
TARGET = "/data"
# Mirror of runtime/src/boot.rs: the tag of a container's first mount.
MOUNT_TAG = "hull-mount-0"
# Where bench/volume.sh installs the work in the guests' root.
WORK = "/bench/volume-work.sh"

# (key, label, unit) of each figure, higher is better for all.
METRICS = [
    ("seqwrite", "sequential write, 1 MiB blocks", "MiB/s"),
    ("seqread", "sequential read, 1 MiB blocks", "MiB/s"),
    ("randwrite", "random write, 4 KiB", "IOPS"),
    ("randread", "random read, 4 KiB", "IOPS"),
    ("create", "create (open O_CREAT, write 1 KiB, close)", "files/s"),
    ("stat", "stat", "files/s"),
    ("delete", "delete (unlink)", "files/s"),
    ("smallfiles", "create + stat + delete, all three", "files/s"),
]


def parse(output):
    """The figures of one run from volume-work.sh's output."""
    decoder = json.JSONDecoder()
    text = output.decode()
    fio, end = decoder.raw_decode(text, text.index("{"))
    small, _ = decoder.raw_decode(text, text.index("{", end))
    figures = {}
    for job in fio["jobs"]:
        name = job["jobname"]
        side = job["write"] if "write" in name else job["read"]
        if name.startswith("seq"):
            figures[name] = side["bw_bytes"] / (1 << 20)
        else:
            figures[name] = side["iops"]
    files = small["files"]
    for phase in ("create", "stat", "delete"):
        figures[phase] = files / small[f"{phase}_s"]
    figures["smallfiles"] = files / sum(small[f"{p}_s"] for p in ("create", "stat", "delete"))
    return figures


def work_argv(directory, sizes):
    return ["/bin/sh", WORK, directory, sizes.seq_size, sizes.rand_size,
            str(sizes.rand_time), str(sizes.files)]


# --- native ----------------------------------------------------------------

def run_native(rootfs, sizes):
    """The work script of the guests' root, with this machine's fio (the
    binary the root's is a copy of) on a fresh tmpfs directory."""
    directory = tempfile.mkdtemp(prefix="hb-native-", dir="/run")
    try:
        argv = work_argv(directory, sizes)
        argv[1] = rootfs + WORK
        return subprocess.run(argv, check=True, stdout=subprocess.PIPE).stdout
    finally:
        shutil.rmtree(directory)


# --- hull ------------------------------------------------------------------

def run_hull(hull, rootfs, env, sizes):
    """`hull run` on a fresh named volume, removed afterwards."""
    argv = [hull, "run", "--rm", "-v", f"{VOLUME}:{TARGET}", "--rootfs", rootfs, "--"]
    try:
        return subprocess.run(argv + work_argv(TARGET, sizes), env=env, check=True,
                              stdout=subprocess.PIPE).stdout
    finally:
        subprocess.run([hull, "volume", "rm", VOLUME], env=env, check=True,
                       stdout=subprocess.DEVNULL)


# --- QEMU microvm + virtiofsd ----------------------------------------------

def run_session(conn, argv):
    """The host side of one session running `argv` with the volume at
    TARGET, as hull's does for a named volume's first mount; returns its
    stdout."""
    tag, body = boot.receive(conn)
    hello = json.loads(body) if tag == boot.TAG_HELLO else None
    if not hello or hello["version"] != boot.PROTOCOL_VERSION:
        raise RuntimeError(f"unexpected greeting {tag} {body!r}")
    boot.send(conn, boot.TAG_HELLO,
              json.dumps({"version": boot.PROTOCOL_VERSION, "software": "bench"}).encode())
    spec = {
        "argv": argv,
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=bench", "HOME=/root"],
        "cwd": "/", "user": "", "hostname": "bench",
        "rootfs": {
            "share": boot.ROOTFS_TAG, "layers": [], "scratch_device": boot.SCRATCH_DEVICE,
            "mounts": [{"target": TARGET, "read_only": False,
                        "source": {"Share": {"tag": MOUNT_TAG, "entry": None,
                                             "copy_up": True}}}],
        },
        "tty": None,
    }
    boot.send(conn, boot.TAG_RUN, json.dumps(spec).encode())
    boot.send(conn, boot.TAG_STDIN_CLOSE)
    stdout = bytearray()
    while True:
        tag, body = boot.receive(conn)
        if tag == boot.TAG_STDOUT:
            stdout += body
        elif tag == boot.TAG_STDERR:
            sys.stderr.buffer.write(body)
        elif tag == boot.TAG_EXITED:
            if json.loads(body) != {"Code": 0}:
                raise RuntimeError(f"the work ended with {body!r}")
            break
        elif tag == boot.TAG_FAILED:
            raise RuntimeError(f"the agent could not run the work: {body!r}")
        elif tag != boot.TAG_STARTED:
            raise RuntimeError(f"unexpected message {tag} {body!r}")
    boot.send(conn, boot.TAG_SHUTDOWN)
    return bytes(stdout)


def listening_unix_socket(path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    return listener


def virtiofsd(binary, listener, directory, options):
    proc = subprocess.Popen(
        [binary, f"--fd={listener.fileno()}", f"--shared-dir={directory}",
         "--sandbox=none", "--seccomp=none", "--log-level=error", *options],
        pass_fds=[listener.fileno()])
    listener.close()
    return proc


def run_qemu(binary, kernel, initramfs, rootfs, sizes):
    with tempfile.TemporaryDirectory(prefix="hb-", dir="/run") as work:
        volume = os.path.join(work, "volume")
        os.mkdir(volume)
        agent = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        agent.bind((socket.VMADDR_CID_ANY, boot.AGENT_READY_PORT))
        agent.listen(1)
        root_socket, volume_socket = (os.path.join(work, f"{n}.sock") for n in ("root", "volume"))
        root_listener = listening_unix_socket(root_socket)
        volume_listener = listening_unix_socket(volume_socket)
        scratch = os.path.join(work, "scratch.img")
        boot.make_scratch_disk(scratch)

        # The root as bench/boot.py serves it (as hull serves a directory
        # root: read-only, cached); the volume with virtiofsd's defaults
        # (--cache=auto, no writeback cache), writable.
        processes = [
            virtiofsd(binary, root_listener, rootfs, ["--readonly", "--cache=always"]),
            virtiofsd(binary, volume_listener, volume, []),
        ]
        argv = boot.qemu_argv(kernel, initramfs, scratch, root_socket,
                              os.path.join(work, "console.log"))
        argv += ["-chardev", f"socket,id=volume,path={volume_socket}",
                 "-device", f"vhost-user-fs-device,chardev=volume,tag={MOUNT_TAG}"]
        processes.insert(0, subprocess.Popen(argv, stdin=subprocess.DEVNULL))
        try:
            agent.settimeout(boot.BOOT_TIMEOUT_S)
            conn, _ = agent.accept()
            agent.close()
            with conn:
                conn.settimeout(600)
                output = run_session(conn, work_argv(TARGET, sizes))
            for proc in processes:
                if proc.wait() != 0:
                    raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        except BaseException:
            for proc in processes:
                proc.kill()
            try:
                console = open(os.path.join(work, "console.log"), errors="replace").read()
            except OSError:
                console = "(none)"
            print(f"volume.py: QEMU run failed; guest console:\n{console[-2000:]}",
                  file=sys.stderr)
            raise
        return output


# --- driver ----------------------------------------------------------------

def figure(value):
    """Three significant digits at least: guests' figures can be below 1."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


LABELS = {"native": "native", "hull": "hull", "base": "hull (baseline)",
          "qemu": "QEMU + virtiofsd"}


def report(figures, walls, args):
    sides = list(figures)
    baseline = "base" in figures
    print(f"fio {args.seq_size} sequential file, {args.rand_size} random file "
          f"({args.rand_time} s per random job), {args.files} files of 1 KiB; "
          f"median of {args.rounds} rounds:")
    print()
    print("| work | " + " | ".join(LABELS[s] for s in sides)
          + " | hull / native | virtiofsd / native | hull / virtiofsd |"
          + (" hull / baseline |" if baseline else ""))
    print("|" + " --- |" * (len(sides) + 4 + baseline))
    for key, label, unit in METRICS:
        m = {s: statistics.median(r[key] for r in figures[s]) for s in sides}
        print(f"| {label} ({unit}) | " + " | ".join(figure(m[s]) for s in sides)
              + f" | {m['hull'] / m['native']:.3f} | {m['qemu'] / m['native']:.3f} "
              f"| **{m['hull'] / m['qemu']:.2f}** |"
              + (f" **{m['hull'] / m['base']:.2f}** |" if baseline else ""))
    print()
    print("Wall time of a whole run, boot included (median): " + ", ".join(
        f"{s} {statistics.median(walls[s]):.1f} s" for s in sides))
    print()
    print("All figures, in run order:")
    print()
    for key, _, unit in METRICS:
        print(f"- {key} ({unit}): " + "; ".join(
            f"{s} " + " ".join(figure(r[key]) for r in figures[s]) for s in sides))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seq-size", default="256M")
    parser.add_argument("--rand-size", default="64M")
    parser.add_argument("--rand-time", type=int, default=10)
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--hull", default=os.path.join(boot.REPO, "target/release/hull"))
    parser.add_argument("--hull-baseline", help="another hull binary to run alike")
    parser.add_argument("--virtiofsd", required=True)
    parser.add_argument("--rootfs", required=True)
    parser.add_argument("--kernel",
                        default=os.path.expanduser("~/.cache/hull/kernel/current/vmlinux"))
    args = parser.parse_args()

    hull_root = tempfile.mkdtemp(prefix="hb-", dir="/run")
    hull_env = dict(os.environ, HULL_ROOT=hull_root, HULL_KERNEL=args.kernel)
    subprocess.run(["modprobe", "vhost_vsock"], check=True)

    warm_up = argparse.Namespace(seq_size="4M", rand_size="4M", rand_time=1, files=100)
    runners = {
        "native": lambda sizes: run_native(args.rootfs, sizes),
        "hull": lambda sizes: run_hull(args.hull, args.rootfs, hull_env, sizes),
    }
    if args.hull_baseline:
        runners["base"] = lambda sizes: run_hull(args.hull_baseline, args.rootfs, hull_env, sizes)
    for name, runner in runners.items():
        print(f"warm-up: {name}", file=sys.stderr)
        runner(warm_up)
    # QEMU boots the agent initramfs hull built and cached in its warm-up.
    (initramfs,) = glob.glob(os.path.join(hull_root, "cache", "initramfs-*.cpio"))
    runners["qemu"] = lambda sizes: run_qemu(args.virtiofsd, args.kernel, initramfs,
                                             args.rootfs, sizes)
    print("warm-up: qemu", file=sys.stderr)
    runners["qemu"](warm_up)

    figures = {name: [] for name in runners}
    walls = {name: [] for name in runners}
    for i in range(args.rounds):
        for name, runner in runners.items():
            start = time.monotonic()
            output = runner(args)
            walls[name].append(time.monotonic() - start)
            figures[name].append(parse(output))
            print(f"round {i + 1}/{args.rounds}: {name} {walls[name][-1]:.1f} s "
                  + json.dumps({k: figure(v) for k, v in figures[name][-1].items()}),
                  file=sys.stderr)
    report(figures, walls, args)


if __name__ == "__main__":
    main()
