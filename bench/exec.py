#!/usr/bin/python3
"""exec latency: `hull exec NAME true` on a running container beside a cold
`hull run --rm --rootfs ROOTFS -- true`, alternating run by run.

Runs where /dev/kvm is real (inside the KVM test host: see bench/exec.sh).
Prints a Markdown table on stdout and progress on stderr.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def timed(argv, env):
    start = time.monotonic()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hull", required=True)
    parser.add_argument("--rootfs", required=True)
    parser.add_argument("--execs", type=int, default=20)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    state = tempfile.mkdtemp(prefix="hull-bench-exec-")
    env = dict(os.environ, HULL_ROOT=state)
    hull = args.hull
    subprocess.run([hull, "run", "-d", "--name", "bench", "--rootfs", args.rootfs,
                    "--", "sleep", "100000"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        exec_argv = [hull, "exec", "bench", "true"]
        run_argv = [hull, "run", "--rm", "--rootfs", args.rootfs, "--", "true"]
        timed(exec_argv, env)  # warm-ups
        timed(run_argv, env)
        execs, runs = [], []
        for i in range(max(args.execs, args.runs)):
            if i < args.execs:
                execs.append(timed(exec_argv, env))
            if i < args.runs:
                runs.append(timed(run_argv, env))
            print(f"round {i + 1}: exec {execs[-1]:.3f} s", file=sys.stderr)
    finally:
        subprocess.run([hull, "rm", "-f", "bench"], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(state)

    exec_median = statistics.median(execs)
    run_median = statistics.median(runs)
    print("| command | median | min | max | runs |")
    print("| --- | --- | --- | --- | --- |")
    for name, times in [("`hull exec bench true`", execs),
                        ("`hull run --rm --rootfs busybox -- true`", runs)]:
        print(f"| {name} | {statistics.median(times):.3f} s | {min(times):.3f} s "
              f"| {max(times):.3f} s | {len(times)} |")
    print()
    print(f"exec / cold run: **{exec_median / run_median:.2f}**")


if __name__ == "__main__":
    main()
