#!/usr/bin/env python3
"""Measurement side of bench/pull.sh (issue 3); prints Markdown tables.

    bench/pull.py --hull HULL --ref 127.0.0.1:PORT/bench/big:v1 \
        --image DIR --work DIR [--runs 5]

DIR of --image is what bench/pull_image.py built (layout/ and info.json).
After one warm-up each, --runs rounds of, in this order:

- hull pull:    `hull --root <empty> pull -q REF`
- skopeo+umoci: `skopeo copy docker://REF oci:<empty>:v1`, then
                `umoci unpack --image <that>:v1 <empty bundle>`
- tar -x:       `tar -xzf` of each layer blob in order into one empty dir
- hull load:    `hull --root <empty> load -i <OCI layout tar>` (no network)
- gzip -d:      `gzip -dc` of each layer blob to /dev/null (the CPU floor of
                decompression alone)

Every run writes into a fresh directory on the same file system, after a
`sync` so that the previous run's dirty pages are not flushed on its time;
deleting the result is not timed.

hull's unpack time per layer is read from its store afterwards, without
instrumenting hull: Store::unpack_layer makes a temporary directory
(`tmp/layer-*`) when it starts, writes `size` into it when the layer is
unpacked and verified, and renames the directory to `layers/<diff_id>`.
So the birth time (statx btime) of `layers/<diff_id>` is the start and the
mtime of its `size` the end. Likewise a layer blob's birth time is when its
download started writing and its mtime when the last byte was written.
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time


CPU = []  # CPU seconds (user + system) of each run() call, in order


def run(argv, **kw):
    """Runs argv; returns (seconds, peak RSS in MiB of it and its waited-for
    children) and appends its CPU time (likewise with children) to CPU."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, **kw)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit("pull.py: %s failed with %d" % (" ".join(argv), proc.returncode))
    CPU.append(usage.ru_utime + usage.ru_stime)
    return elapsed, usage.ru_maxrss / 1024


def stat_times(paths):
    """{path: (birth, mtime)} as epoch seconds, from `stat` (statx)."""
    out = subprocess.run(
        ["stat", "--printf", "%n\t%w\t%y\n", *paths], check=True, capture_output=True, text=True
    ).stdout
    result = {}
    for line in out.splitlines():
        name, *stamps = line.split("\t")
        parsed = []
        for s in stamps:
            date, clock, zone = s.split()
            whole, frac = clock.split(".")
            t = datetime.datetime.strptime(date + " " + whole + " " + zone, "%Y-%m-%d %H:%M:%S %z")
            parsed.append(t.timestamp() + int(frac) / 1e9)
        result[name] = tuple(parsed)
    return result


def hull_phases(root, layers, t0):
    """Per layer (download start, download end, unpack start, unpack end),
    seconds after t0; download times are None if the blob is not kept."""
    store = os.path.join(root, "image")
    phases = []
    for layer in layers:
        blob = os.path.join(store, "blobs/sha256", layer["digest"].split(":")[1])
        unpacked = os.path.join(store, "layers", layer["diff_id"].split(":")[1])
        times = stat_times([blob, unpacked, os.path.join(unpacked, "size")])
        blob_t, dir_t, size_t = times[blob], times[unpacked], times[os.path.join(unpacked, "size")]
        phases.append((blob_t[0] - t0, blob_t[1] - t0, dir_t[0] - t0, size_t[1] - t0))
    return phases


def fresh(work, name):
    path = os.path.join(work, name)
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run(["sync"], check=True)
    return path


def clean(path):
    shutil.rmtree(path, ignore_errors=True)


def fmt(values, unit=" s", digits=3):
    return "%.*f%s" % (digits, statistics.median(values), unit), "%.*f%s" % (digits, min(values), unit), "%.*f%s" % (digits, max(values), unit)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hull", required=True)
    ap.add_argument("--ref", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    info = json.load(open(os.path.join(args.image, "info.json")))
    layers = info["layers"]
    blobs = [os.path.join(args.image, "layout/blobs/sha256", l["digest"].split(":")[1]) for l in layers]
    tar_bytes = sum(l["tar_size"] for l in layers)
    gz_bytes = sum(l["size"] for l in layers)

    # `hull load` input: the same OCI layout as an (uncompressed) tar.
    load_tar = os.path.join(args.work, "image.tar")
    with tarfile.open(load_tar, "w") as t:
        layout = os.path.join(args.image, "layout")
        for name in sorted(os.listdir(layout)):
            t.add(os.path.join(layout, name), arcname=name)

    keys = ("hull", "skopeo", "umoci", "peer", "tar", "load", "load_unpack", "gunzip")
    results = {k: [] for k in keys}  # wall seconds per run
    cpu = {k: [] for k in keys}  # CPU seconds (user + system) per run
    rss = {k: [] for k in ("hull", "skopeo", "umoci", "load")}
    tar_layers = [[] for _ in layers]
    load_layers = [[] for _ in layers]
    pull_phases = []
    sizes = {}

    def cpu_since(mark):
        return sum(CPU[mark:])

    def hull_pull(record):
        root = fresh(args.work, "hull-root")
        mark = len(CPU)
        t0 = time.time()
        t, m = run([args.hull, "--root", root, "pull", "-q", args.ref])
        if record:
            results["hull"].append(t)
            cpu["hull"].append(cpu_since(mark))
            rss["hull"].append(m)
            pull_phases.append(hull_phases(root, layers, t0))
            sizes["hull store"] = du(root)
        clean(root)

    def peer(record):
        dest = fresh(args.work, "peer")
        os.makedirs(dest)
        oci, bundle = os.path.join(dest, "oci"), os.path.join(dest, "bundle")
        mark = len(CPU)
        t1, m1 = run(["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false",
                      "docker://" + args.ref, "oci:%s:v1" % oci])
        t2, m2 = run(["umoci", "unpack", "--image", oci + ":v1", bundle])
        if record:
            results["skopeo"].append(t1)
            results["umoci"].append(t2)
            results["peer"].append(t1 + t2)
            cpu["skopeo"].append(CPU[mark])
            cpu["umoci"].append(CPU[mark + 1])
            cpu["peer"].append(cpu_since(mark))
            rss["skopeo"].append(m1)
            rss["umoci"].append(m2)
            sizes["skopeo+umoci (OCI layout + bundle)"] = du(dest)
        clean(dest)

    def plain_tar(record):
        dest = fresh(args.work, "tar")
        os.makedirs(dest)
        mark = len(CPU)
        per_layer = [run(["tar", "-xzf", blob, "-C", dest])[0] for blob in blobs]
        if record:
            results["tar"].append(sum(per_layer))
            cpu["tar"].append(cpu_since(mark))  # tar with its gzip child
            for i, t in enumerate(per_layer):
                tar_layers[i].append(t)
            sizes["tar -x (merged, whiteouts left as files)"] = du(dest)
        clean(dest)

    def hull_load(record):
        root = fresh(args.work, "load-root")
        mark = len(CPU)
        t0 = time.time()
        t, m = run([args.hull, "--root", root, "load", "-q", "-i", load_tar])
        if record:
            results["load"].append(t)
            cpu["load"].append(cpu_since(mark))
            rss["load"].append(m)
            phases = hull_phases(root, layers, t0)
            for i, p in enumerate(phases):
                load_layers[i].append(p[3] - p[2])
            results["load_unpack"].append(sum(p[3] - p[2] for p in phases))
        clean(root)

    def gunzip(record):
        subprocess.run(["sync"], check=True)
        mark = len(CPU)
        total = 0
        for blob in blobs:
            with open(blob, "rb") as f:
                total += run(["gzip", "-dc"], stdin=f)[0]
        if record:
            results["gunzip"].append(total)
            cpu["gunzip"].append(cpu_since(mark))

    steps = (hull_pull, peer, plain_tar, hull_load, gunzip)
    for step in steps:  # warm-up: page cache, registry, first-run costs
        step(False)
    for i in range(args.runs):
        for step in steps:
            step(True)
        print("pull.py: round %d of %d done" % (i + 1, args.runs), file=sys.stderr)

    med = statistics.median
    mb = 1e6

    def paired(a, b):
        """Median, min and max of the per-round ratios a/b, and min(a)/min(b)."""
        r = [x / y for x, y in zip(results[a], results[b])]
        return med(r), min(r), max(r), min(results[a]) / min(results[b])

    print("Image: %d gzip layers, %.1f MB compressed, %.1f MB of tar (%d entries)." % (
        len(layers), gz_bytes / mb, tar_bytes / mb, sum(l["entries"] for l in layers)))
    print()
    print("| | median of %d | min | max | CPU (median) | peak RSS (median) |" % args.runs)
    print("|---|---|---|---|---|---|")
    print("| `hull pull` (download + verify + unpack) | %s | %s | %s | %.2f s | %.0f MiB |" % (
        *fmt(results["hull"]), med(cpu["hull"]), med(rss["hull"])))
    print("| `skopeo copy` + `umoci unpack` | %s | %s | %s | %.2f s | |" % (*fmt(results["peer"]), med(cpu["peer"])))
    print("| &nbsp;&nbsp;of which `skopeo copy` | %s | %s | %s | %.2f s | %.0f MiB |" % (
        *fmt(results["skopeo"]), med(cpu["skopeo"]), med(rss["skopeo"])))
    print("| &nbsp;&nbsp;of which `umoci unpack` | %s | %s | %s | %.2f s | %.0f MiB |" % (
        *fmt(results["umoci"]), med(cpu["umoci"]), med(rss["umoci"])))
    r = paired("hull", "peer")
    print("| **ratio hull / peer** (per round; of the minima: %.2f) | **%.2f** | %.2f | %.2f | %.2f | |" % (
        r[3], r[0], r[1], r[2], med(cpu["hull"]) / med(cpu["peer"])))
    print()

    # hull pull phases, medians over the runs.
    dl_end = [max(p[1] for p in ph) for ph in pull_phases]
    unpack_first = [min(p[2] for p in ph) for ph in pull_phases]
    unpack_last = [max(p[3] for p in ph) for ph in pull_phases]
    unpack_sum = [sum(p[3] - p[2] for p in ph) for ph in pull_phases]
    print("Inside `hull pull` (from its store's timestamps, median of %d; seconds after the process started):" % args.runs)
    print()
    print("| layer | downloading | unpacking |")
    print("|---|---|---|")
    for i, l in enumerate(layers):
        p = [ph[i] for ph in pull_phases]
        print("| %d %s | %.2f - %.2f | %.2f - %.2f |" % (
            i + 1, l["what"].split(":")[0], med(x[0] for x in p), med(x[1] for x in p),
            med(x[2] for x in p), med(x[3] for x in p)))
    print()
    print("All downloads written by %.2f s, first unpack starts %.2f s, last ends %.2f s, exit %.2f s; "
          "unpack time summed over layers %.2f s (so %.2f layers unpack at once on average)." % (
              med(dl_end), med(unpack_first), med(unpack_last), med(results["hull"]), med(unpack_sum),
              med(s / (e - f) for s, e, f in zip(unpack_sum, unpack_last, unpack_first))))
    print()

    print("Unpacking alone (no network), median of %d; MB/s of tar stream (from the median):" % args.runs)
    print()
    print("| | median | min | max | MB/s | CPU (median) |")
    print("|---|---|---|---|---|---|")
    rows = (
        ("`tar -xzf` of each layer in turn (the practical limit)", "tar", "%.2f s (tar + gzip)"),
        ("`hull load`: its layers' unpack time (read from the store)", "load_unpack", None),
        ("`hull load` in all (untar the archive, copy and hash blobs, unpack)", "load", "%.2f s"),
        ("`umoci unpack` (one merged rootfs, whiteouts applied, mtree)", "umoci", "%.2f s"),
        ("`gzip -dc > /dev/null` of each layer (decompression alone)", "gunzip", "%.2f s"),
    )
    for label, key, cpu_fmt in rows:
        print("| %s | %s | %s | %s | %.0f | %s |" % (
            label, *fmt(results[key]), tar_bytes / mb / med(results[key]),
            cpu_fmt % med(cpu[key]) if cpu_fmt else ""))
    r = paired("load_unpack", "tar")
    print("| **ratio hull unpack / tar** (per round; of the minima: %.2f) | **%.2f** | %.2f | %.2f | | |" % (
        r[3], r[0], r[1], r[2]))
    print()
    print("Per layer, unpack only (median of %d, and the fastest run):" % args.runs)
    print()
    print("| layer | gzip MB | tar MB | entries | hull (in `hull load`) | `tar -xzf` | hull / tar | fastest: hull, tar |")
    print("|---|---|---|---|---|---|---|---|")
    for i, l in enumerate(layers):
        h, t = med(load_layers[i]), med(tar_layers[i])
        print("| %d %s | %.1f | %.1f | %d | %.3f s (%.0f MB/s) | %.3f s (%.0f MB/s) | %.2f | %.3f s, %.3f s |" % (
            i + 1, l["what"], l["size"] / mb, l["tar_size"] / mb, l["entries"],
            h, l["tar_size"] / mb / h, t, l["tar_size"] / mb / t, h / t,
            min(load_layers[i]), min(tar_layers[i])))
    print()
    print("Disk used by the result (du, last run): " + "; ".join(
        "%s %.0f MB" % (k, v / mb) for k, v in sizes.items()) + ".")
    print()
    print("All times (s), in run order:")
    print()
    for key, label in (("hull", "hull pull"), ("skopeo", "skopeo copy"), ("umoci", "umoci unpack"),
                       ("tar", "tar -xzf"), ("load", "hull load"), ("load_unpack", "hull load, unpack part"),
                       ("gunzip", "gzip -dc")):
        print("- %s: %s" % (label, " ".join("%.3f" % t for t in results[key])))


def du(path):
    return int(subprocess.run(["du", "-s", "-B1", path], check=True, capture_output=True, text=True).stdout.split()[0])


if __name__ == "__main__":
    main()
