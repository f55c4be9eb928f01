#!/usr/bin/python3
"""The hull machine's cost: the same workloads timed through the machine
(from this host's shell), directly inside the KVM test host, and natively on
this host (no VM), then reported as slowdown factors. See bench/machine.sh.

  machine.py measure --hull HULL --rootfs ROOTFS    one JSON line of medians
  machine.py native                                 the workloads without a VM
  machine.py report MACHINE.json TESTHOST.json NATIVE.json   Markdown
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

# A CPU-bound loop in busybox sh (user mode only) and a syscall-heavy copy
# (two syscalls per byte).
CPU = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"
SYSCALLS = "dd if=/dev/zero of=/dev/null bs=1 count=1000000 2>/dev/null"
ROUNDS = {"run": 5, "exec": 10, "cpu": 3, "syscalls": 3}


def timed(argv, env=None):
    start = time.monotonic()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def median_of(label, rounds, argv, env=None):
    timed(argv, env)  # warm-up
    samples = [timed(argv, env) for _ in range(rounds)]
    print(f"{label}: {[round(s, 3) for s in samples]}", file=sys.stderr)
    return statistics.median(samples)


def measure(args):
    # The caller's root (and so its running machine), else a fresh one.
    state = os.environ.get("HULL_ROOT") or tempfile.mkdtemp(prefix="hull-bench-machine-")
    env = dict(os.environ, HULL_ROOT=state)
    hull = args.hull
    result = {}
    result["run"] = median_of("run", ROUNDS["run"],
                              [hull, "run", "--rm", "--rootfs", args.rootfs, "--", "true"], env)
    subprocess.run([hull, "run", "-d", "--name", "bench", "--rootfs", args.rootfs,
                    "--", "sleep", "100000"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        for key, command in [("exec", ["true"]),
                             ("cpu", ["sh", "-c", CPU]),
                             ("syscalls", ["sh", "-c", SYSCALLS])]:
            result[key] = median_of(key, ROUNDS[key], [hull, "exec", "bench", *command], env)
    finally:
        subprocess.run([hull, "rm", "-f", "bench"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    print(json.dumps(result))


def native(_args):
    busybox = "/bin/busybox"
    result = {
        "cpu": median_of("cpu", ROUNDS["cpu"], [busybox, "sh", "-c", CPU]),
        "syscalls": median_of("syscalls", ROUNDS["syscalls"], [busybox, "sh", "-c", SYSCALLS]),
    }
    print(json.dumps(result))


def report(args):
    machine, testhost, native_ = (json.load(open(path)) for path in
                                  (args.machine, args.testhost, args.native))
    rows = [
        ("run", "`hull run --rm --rootfs busybox -- true`"),
        ("exec", "`hull exec bench true`"),
        ("cpu", f"`hull exec bench sh -c '{CPU}'`"),
        ("syscalls", f"`hull exec bench sh -c '{SYSCALLS}'`"),
    ]
    print("| workload | through the machine | inside the test host | natively | "
          "machine / test host | machine / native |")
    print("| --- | --- | --- | --- | --- | --- |")
    for key, label in rows:
        here = native_.get(key)
        print(f"| {label} | {machine[key]:.3f} s | {testhost[key]:.3f} s | "
              f"{'-' if here is None else f'{here:.3f} s'} | "
              f"**{machine[key] / testhost[key]:.2f}** | "
              f"{'-' if here is None else f'**{machine[key] / here:.1f}**'} |")


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    measuring = commands.add_parser("measure")
    measuring.add_argument("--hull", required=True)
    measuring.add_argument("--rootfs", required=True)
    commands.add_parser("native")
    reporting = commands.add_parser("report")
    for name in ("machine", "testhost", "native"):
        reporting.add_argument(name)
    args = parser.parse_args()
    {"measure": measure, "native": native, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
