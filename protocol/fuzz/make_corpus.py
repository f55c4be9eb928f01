#!/usr/bin/env python3
"""Writes the seed corpus of hull-protocol's fuzz targets (corpus/<target>/):
frame streams as each end sends them, and hostile ones, that the mutations
and libFuzzer start from. Run from this directory; the output is checked in."""

import json
import os
import struct

TAGS = dict(hello=1, run=2, started=3, stdin=4, stdin_close=5, stdout=6, stderr=7, signal=8,
            exited=9, failed=10, shutdown=11, resize=12, query=13, answer=14, copy=15,
            run_detached=16, diff=17)


def frame(tag, body=b""):
    """One frame: length (tag and body) as a little-endian u32, tag, body."""
    if not isinstance(body, bytes):
        body = json.dumps(body, separators=(",", ":")).encode()
    return struct.pack("<I", len(body) + 1) + bytes([TAGS[tag]]) + body


def write(target, name, *frames):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/{name}", "wb") as out:
        out.write(b"".join(frames))


RUN = {
    "argv": ["/bin/sh", "-c", "echo 'hi'; exit 3"], "env": ["PATH=/bin", "A=b=c"], "cwd": "/tmp",
    "user": "1000:100", "hostname": "box",
    "rootfs": {"share": "hull-layers", "layers": ["top", "base"], "scratch_device": "/dev/vda",
               "read_only": True, "mounts": [
                   {"target": "/data", "source": {"Share": {"tag": "hull-vol-0", "entry": None, "copy_up": True}},
                    "read_only": False},
                   {"target": "/tmp", "source": {"Tmpfs": {"size_bytes": 1048576, "mode": 1023}},
                    "read_only": False}]},
    "tty": {"rows": 24, "cols": 80},
    "network": {"interfaces": [{"mac": "02:68:0a:58:00:02", "address": "10.88.0.2", "prefix_len": 16,
                                "gateway": "10.88.0.1"}],
                "etc_files": [{"name": "hosts", "contents": "127.0.0.1\tlocalhost\n"}]},
    "limits": {"memory_max_bytes": 268435456, "memory_low_bytes": None, "cpu_quota_usec": None,
               "cpu_weight": None, "pids_max": 100, "rlimits": [{"name": "nofile", "soft": 1024, "hard": 2048}],
               "shm_size_bytes": None, "capabilities": ["CHOWN"], "sysctls": [["net.ipv4.ip_forward", "1"]]},
}
HELLO = {"version": 7, "software": "hull-agent 0.1.0"}

# What the host sends the agent.
write("frames", "host-run", frame("hello", HELLO), frame("run", RUN), frame("stdin", b"input\n"),
      frame("resize", {"rows": 50, "cols": 132}), frame("signal", 15), frame("stdin_close"),
      frame("query", "Stats"), frame("shutdown"))
write("frames", "host-exec", frame("hello", HELLO), frame("run_detached", dict(RUN, rootfs=None, limits=None)))
write("frames", "host-copy", frame("hello", HELLO), frame("copy", {"In": {"dest": "/tmp", "contents": True}}),
      frame("stdin", b"a tar stream"), frame("stdin_close"), frame("diff", {"exclude": ["/etc/hosts"]}))
# What the agent sends the host: what a hostile guest controls.
write("frames", "agent-session", frame("hello", HELLO), frame("started", {"pid": 7}),
      frame("stdout", bytes([0, 255, 10, 13])), frame("stderr"), frame("exited", {"Signal": 9}))
write("frames", "agent-answers", frame("hello", HELLO), frame("answer", {"Stats": {
    "cpu_usage_usec": 1234567, "memory_bytes": 3145728, "memory_limit_bytes": 536870912, "pids": 4,
    "oom_kills": 0}}), frame("answer", {"Processes": [{"pid": 1, "ppid": 0, "uid": 0, "state": "S",
                                                    "cpu_time_ms": 20, "command": "sh -c sleep 600"}]}),
      frame("exited", {"Code": 3}))
write("frames", "agent-failed", frame("hello", HELLO),
      frame("failed", {"code": 127, "reason": "exec /nope: No such file or directory"}))
write("frames", "agent-copy-out", frame("stdout", b"x" * 512), frame("stdout", b"y" * 512),
      frame("exited", {"Code": 0}))
# Hostile: a long string where a number belongs, a length past the limit,
# an empty frame, an unknown tag, a frame cut short.
write("frames", "long-string", frame("started", {"pid": "x" * 4096}))
write("frames", "too-large", struct.pack("<I", 256 * 1024 + 2) + bytes([TAGS["stdout"]]))
write("frames", "empty", struct.pack("<I", 0))
write("frames", "unknown-tag", struct.pack("<I", 1) + bytes([200]))
write("frames", "truncated", frame("hello", HELLO)[:20])
