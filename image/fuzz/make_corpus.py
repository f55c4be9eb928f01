#!/usr/bin/env python3
"""Writes the seed corpus of hull-image's fuzz targets (corpus/<target>/):
small valid and hostile inputs that the mutations and libFuzzer start from.
Run from this directory; the output is checked in."""

import gzip
import hashlib
import io
import json
import os
import tarfile


def tar(members, fmt=tarfile.GNU_FORMAT):
    """A tar of (TarInfo fields, bytes) pairs."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
        for fields, data in members:
            info = tarfile.TarInfo(fields.pop("name"))
            info.mtime = 1_000_000
            for key, value in fields.items():
                setattr(info, key, value)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def d(name):
    return (dict(name=name, type=tarfile.DIRTYPE, mode=0o755), b"")


def f(name, data=b"x", mode=0o644):
    return (dict(name=name, mode=mode), data)


def ln(name, target, kind=tarfile.SYMTYPE):
    return (dict(name=name, type=kind, linkname=target), b"")


def write(target, name, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/{name}", "wb") as out:
        out.write(data)


basic = tar([
    d("etc"), f("etc/hosts", b"127.0.0.1 localhost\n"), f("usr/bin/tool", b"#!/bin/sh\n", mode=0o4755),
    ln("bin", "usr/bin"), ln("etc/hosts.link", "etc/hosts", tarfile.LNKTYPE),
    (dict(name="dev/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666), b""),
    (dict(name="run/pipe", type=tarfile.FIFOTYPE, mode=0o600), b""),
    f("etc/.wh.passwd", b""), d("var/cache"), f("var/cache/.wh..wh..opq", b""),
])
write("layer_unpack", "basic.tar", basic)
write("layer_unpack", "basic.tar.gz", gzip.compress(basic, mtime=0))
write("layer_unpack", "pax.tar", tar([
    (dict(name="d/" + "p" * 200, mode=0o644, pax_headers={"SCHILY.xattr.user.note": "kept"}), b"pax"),
    (dict(name="noted", mode=0o644, pax_headers={"SCHILY.xattr.trusted.overlay.opaque": "y"}), b""),
], tarfile.PAX_FORMAT))
write("layer_unpack", "long_names.tar", tar([
    f("l/" + "n" * 300), ln("l/link", "t" * 300), ln("l/hard", "l/" + "n" * 300, tarfile.LNKTYPE),
]))
write("layer_unpack", "replaced.tar", tar([
    d("x"), d("x/sub"), f("x/sub/inner"), f("x", b"now a file"), f("y"), d("y"), f("y/in"),
    d("z"), ln("z", "/etc"), f("z/evil"),
]))
write("layer_unpack", "escapes.tar", tar([
    f("../outside/evil"), f("/abs/file"), ln("up", "../outside"), f("up/evil"),
    ln("stolen", "../outside/secret", tarfile.LNKTYPE), f(".wh..."),
]))

config_of = lambda diff_ids: json.dumps({
    "architecture": "amd64", "os": "linux", "config": {},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
}).encode()
layer = tar([d("etc"), f("etc/hello", b"hello")])
diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
config = config_of([diff_id])
write("archive_load", "docker.tar", tar([
    f("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["sample:v1"],
                                    "Layers": ["layer.tar"]}]).encode()),
    f("config.json", config), f("layer.tar", layer),
]))
write("archive_load", "wrong_diff_id.tar", tar([
    f("manifest.json", json.dumps([{"Config": "c.json", "RepoTags": ["x:y"], "Layers": ["l.tar"]}]).encode()),
    f("c.json", config_of(["sha256:" + "0" * 64])), f("l.tar", layer),
]))
blob = lambda data: ("sha256:" + hashlib.sha256(data).hexdigest(), data)
layer_gz = gzip.compress(layer, mtime=0)
(layer_digest, _), (config_digest, _) = blob(layer_gz), blob(config)
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
               "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest,
                "size": len(layer_gz)}],
}).encode()
manifest_digest, _ = blob(manifest)
index = json.dumps({"schemaVersion": 2, "manifests": [{
    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
    "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}).encode()
write("archive_load", "oci_layout.tar", tar([
    f("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), f("index.json", index),
    *[f("blobs/sha256/" + digest[7:], data)
      for digest, data in (blob(layer_gz), blob(config), blob(manifest))],
]))

for i, text in enumerate([
    "alpine", "me/app:v1", "localhost:5000/a/b@sha256:" + "a" * 64, "docker.io/library/busybox:latest",
    "[::1]:5000/x:y", "Bad/Name", "a:b:c", "host:5000/app:v1@sha256:" + "b" * 64, "x" * 300,
]):
    write("reference", f"{i}", text.encode())
for i, text in enumerate(["sha256:" + "c" * 64, "sha256:abc", "sha512:" + "d" * 128, "sha256:" + "E" * 64]):
    write("digest", f"{i}", text.encode())
