#!/usr/bin/env python3
"""Builds the test image of the pull benchmark (issue 3) as an OCI image
layout, deterministically: the same recipe, busybox and zlib give the same
bytes, so bench/pull.sh caches the result under a hash of this file.

    bench/pull_image.py BUSYBOX_ROOTFS OUT_DIR

OUT_DIR gets `layout/` (oci-layout, index.json tagged `v1`, blobs/sha256)
and `info.json` (per layer: digest, diff_id, compressed and tar sizes,
entry count, what it holds). Five gzip layers, ~200 MB of tar in all:

1. base: the busybox rootfs of scripts/make-busybox-rootfs (~400 symlinks);
2. small: 20,000 text files of 100 B - 4 KiB in 400 directories, and a
   few hard links (metadata-bound: one create/write/chown/utime per file);
3. random: three 20 MiB files of pseudo-random bytes (incompressible);
4. text: two 32 MiB log-like text files (gzip shrinks them ~4x);
5. changes: whiteouts of 1,000 small files and of one random file, an
   opaque directory with new files in it, 200 rewritten small files and an
   8 MiB file.
"""
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import stat
import sys
import tarfile

MTIME = 1_700_000_000  # every entry's mtime: fixed, so tars are reproducible
SEED = 3  # issue 3
MIB = 1 << 20

WORDS = (
    "the quick brown fox jumps over lazy dog container image layer registry "
    "manifest digest blob pull push unpack overlay whiteout kernel virtio "
    "error warning info debug request response status 200 404 500 GET PUT "
    "user root bin usr lib share etc var tmp log cache config json yaml"
).split()


def text_pool(rng, size):
    """`size` bytes of log-like text: compressible, like source or logs."""
    out = io.StringIO()
    n = 0
    line_no = 0
    while n < size:
        line_no += 1
        line = "%08d %s: %s\n" % (
            line_no,
            rng.choice(("INFO", "WARN", "DEBUG", "ERROR")),
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))),
        )
        out.write(line)
        n += len(line)
    return out.getvalue().encode()[:size]


class Layer:
    """A tar stream written to a temporary file, entry by entry."""

    def __init__(self, path):
        self.path = path
        self.out = open(path, "wb")
        self.tar = tarfile.open(fileobj=self.out, mode="w", format=tarfile.PAX_FORMAT)
        self.entries = 0

    def _info(self, name, kind, mode):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.mtime = MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        self.entries += 1
        return info

    def dir(self, name, mode=0o755):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode))

    def file(self, name, data, mode=0o644):
        info = self._info(name, tarfile.REGTYPE, mode)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))

    def symlink(self, name, target):
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)

    def hardlink(self, name, target):
        info = self._info(name, tarfile.LNKTYPE, 0o644)
        info.linkname = target
        self.tar.addfile(info)

    def close(self):
        self.tar.close()
        self.out.close()


def add_tree(layer, root):
    """The directory `root` as layer content, sorted, owned by root."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir != ".":
            layer.dir(rel_dir, stat.S_IMODE(os.lstat(dirpath).st_mode))
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            path = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                layer.symlink(rel, os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    layer.file(rel, f.read(), stat.S_IMODE(st.st_mode))
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]


SMALL_DIRS = 400
SMALL_FILES = 20_000


def small_name(i):
    return "usr/share/bench/small/d%02d/e%02d/f%05d.txt" % (i % 20, (i // 20) % 20, i)


def build_layers(rootfs, tmp):
    rng = random.Random(SEED)
    pool = text_pool(rng, 4 * MIB)

    def text(size):
        start = rng.randrange(0, len(pool) - size)
        return pool[start : start + size]

    layers = []

    base = Layer(os.path.join(tmp, "1.tar"))
    add_tree(base, rootfs)
    base.close()
    layers.append((base, "base: busybox rootfs"))

    small = Layer(os.path.join(tmp, "2.tar"))
    for d in ("usr", "usr/share", "usr/share/bench", "usr/share/bench/small"):
        small.dir(d)
    for a in range(20):
        small.dir("usr/share/bench/small/d%02d" % a)
        for b in range(20):
            small.dir("usr/share/bench/small/d%02d/e%02d" % (a, b))
    by_dir = sorted(range(SMALL_FILES), key=small_name)
    for i in by_dir:
        small.file(small_name(i), text(rng.randint(100, 4096)))
    for i in range(0, 50):
        small.hardlink("usr/share/bench/small/link%02d.txt" % i, small_name(i * 7))
    small.close()
    layers.append((small, "small: 20,000 files of 100 B - 4 KiB, 420 dirs, 50 hard links"))

    rand = Layer(os.path.join(tmp, "3.tar"))
    rand.dir("opt")
    rand.dir("opt/bench")
    for i in range(3):
        rand.file("opt/bench/random-%d.bin" % i, rng.randbytes(20 * MIB))
    rand.close()
    layers.append((rand, "random: 3 x 20 MiB pseudo-random (incompressible)"))

    txt = Layer(os.path.join(tmp, "4.tar"))
    txt.dir("var")
    txt.dir("var/log")
    for i in range(2):
        txt.file("var/log/bench-%d.log" % i, text_pool(rng, 32 * MIB))
    txt.close()
    layers.append((txt, "text: 2 x 32 MiB log-like text (compressible)"))

    changes = Layer(os.path.join(tmp, "5.tar"))
    for d in ("usr", "usr/share", "usr/share/bench", "usr/share/bench/small", "opt", "opt/bench"):
        changes.dir(d)
    changes.file("opt/bench/.wh.random-2.bin", b"")
    changes.file("opt/bench/medium.bin", rng.randbytes(4 * MIB) + text_pool(rng, 4 * MIB))
    # d19/ is replaced wholesale: opaque, then 100 new files.
    changes.dir("usr/share/bench/small/d19")
    changes.file("usr/share/bench/small/d19/.wh..wh..opq", b"")
    for i in range(100):
        changes.file("usr/share/bench/small/d19/new%03d.txt" % i, text(rng.randint(100, 4096)))
    touched = sorted(rng.sample([i for i in range(SMALL_FILES) if i % 20 != 19], 1200), key=small_name)
    dirs_done = set()
    for n, i in enumerate(touched):
        name = small_name(i)
        parent = os.path.dirname(name)
        for p in (os.path.dirname(parent), parent):
            if p not in dirs_done:
                changes.dir(p)
                dirs_done.add(p)
        if n % 6 == 0:  # 200 rewritten
            changes.file(name, text(rng.randint(100, 4096)))
        else:  # 1,000 deleted
            changes.file(os.path.join(parent, ".wh." + os.path.basename(name)), b"")
    changes.close()
    layers.append((changes, "changes: 1,001 whiteouts, 1 opaque dir (+100 files), 200 rewrites, 8 MiB file"))
    return layers


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


def write_blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return digest


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def main():
    rootfs, out = sys.argv[1], sys.argv[2]
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    blobs = os.path.join(tmp, "layout", "blobs", "sha256")
    os.makedirs(blobs)
    info = []
    for layer, what in build_layers(rootfs, tmp):
        gz_path = layer.path + ".gz"
        with open(layer.path, "rb") as src, open(gz_path, "wb") as dst:
            with gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=dst, mtime=0) as gz:
                shutil.copyfileobj(src, gz, MIB)
        digest = sha256_file(gz_path)
        info.append(
            {
                "digest": "sha256:" + digest,
                "diff_id": "sha256:" + sha256_file(layer.path),
                "size": os.path.getsize(gz_path),
                "tar_size": os.path.getsize(layer.path),
                "entries": layer.entries,
                "what": what,
            }
        )
        os.rename(gz_path, os.path.join(blobs, digest))
        os.unlink(layer.path)
    config = canonical(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2023-11-14T22:13:20Z",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in info]},
            "history": [{"created": "2023-11-14T22:13:20Z", "created_by": l["what"]} for l in info],
        }
    )
    config_digest = write_blob(blobs, config)
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": l["digest"],
                    "size": l["size"],
                }
                for l in info
            ],
        }
    )
    manifest_digest = write_blob(blobs, manifest)
    layout = os.path.join(tmp, "layout")
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(layout, "index.json"), "wb") as f:
        f.write(
            canonical(
                {
                    "schemaVersion": 2,
                    "manifests": [
                        {
                            "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": "sha256:" + manifest_digest,
                            "size": len(manifest),
                            "annotations": {"org.opencontainers.image.ref.name": "v1"},
                        }
                    ],
                }
            )
        )
    with open(os.path.join(tmp, "info.json"), "w") as f:
        json.dump({"manifest": "sha256:" + manifest_digest, "layers": info}, f, indent=1)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)


if __name__ == "__main__":
    main()
