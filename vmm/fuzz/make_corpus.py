#!/usr/bin/env python3
"""Writes the seed corpus of hull-vmm's fuzz targets (corpus/<target>/):
vsock TX descriptor chains as a guest driver lays them out, valid and
hostile, that the mutations and libFuzzer start from. An input is the
256-byte descriptor table, then the bytes at guest address 0x10000 (see
src/fuzz.rs). Run from this directory; the output is checked in."""

import os
import struct

BUFFERS = 0x10000
NEXT, WRITE, INDIRECT = 1, 2, 4
REQUEST, RW = 1, 5


def desc(addr, length, flags=0, next_=0):
    return struct.pack("<QIHH", addr, length, flags, next_)


def header(op, length=0, src_port=1024, dst_port=1025):
    """A virtio_vsock_hdr from the guest (CID 3) to the host (CID 2)."""
    return struct.pack("<QQIIIHHIII", 3, 2, src_port, dst_port, length, 1, op, 0, 65536, 0)


def chain(descriptors, buffers):
    table = b"".join(descriptors)
    return table.ljust(256, b"\0") + buffers


def write(name, data):
    os.makedirs("corpus/vsock_tx_packet", exist_ok=True)
    with open(f"corpus/vsock_tx_packet/{name}", "wb") as out:
        out.write(data)


write("request", chain([desc(BUFFERS, 44)], header(REQUEST)))
write("rw-one-descriptor", chain([desc(BUFFERS, 49)], header(RW, 5) + b"hello"))
write("rw-two-descriptors", chain([desc(BUFFERS, 44, NEXT, 1), desc(BUFFERS + 0x100, 5)],
                                  header(RW, 5).ljust(0x100, b"\0") + b"hello"))
write("rw-claims-more", chain([desc(BUFFERS, 54)], header(RW, 100) + b"x" * 10))
write("rw-too-large", chain([desc(BUFFERS, 44, NEXT, 1), desc(BUFFERS + 0x100, 0x10000)],
                            header(RW, 0x10001)))
write("loop", chain([desc(BUFFERS, 20, NEXT, 1), desc(BUFFERS + 20, 24, NEXT, 0)], header(REQUEST)))
write("indirect", chain([desc(BUFFERS + 0x200, 32, INDIRECT)],
                        (header(RW, 3).ljust(0x200, b"\0")
                         + desc(BUFFERS, 44, NEXT, 1) + desc(BUFFERS + 0x100, 3)).ljust(0x100, b"\0")))
write("short", chain([desc(BUFFERS, 10)], header(REQUEST)[:10]))
write("device-writable", chain([desc(BUFFERS, 44, WRITE)], header(REQUEST)))

# virtio_fs_requests: a mode byte (bit 0: the share is a subset showing
# hello.txt and sub), then FUSE requests, each its InHeader and body.
(LOOKUP, FORGET, GETATTR, SETATTR, READLINK, MKDIR, UNLINK, RENAME, OPEN, READ, WRITE, STATFS,
 RELEASE, SETXATTR, GETXATTR, LISTXATTR, INIT, OPENDIR, READDIR, RELEASEDIR, CREATE, BATCH_FORGET,
 FALLOCATE, READDIRPLUS, LSEEK) = (1, 2, 3, 4, 5, 9, 10, 12, 14, 15, 16, 17, 18, 21, 22, 23, 26, 27,
                                   28, 29, 35, 42, 43, 44, 46)
ROOT = 1
unique = 0


def fuse(opcode, nodeid=ROOT, body=b"", length=None):
    """One FUSE request: InHeader (len, opcode, unique, nodeid, uid, gid, pid, padding), body."""
    global unique
    unique += 1
    length = 40 + len(body) if length is None else length
    return struct.pack("<IIQQIIII", length, opcode, unique, nodeid, 0, 0, 1, 0) + body


def cstr(name):
    return name.encode() + b"\0"


INIT_REQ = fuse(INIT, body=struct.pack("<IIII", 7, 31, 0x20000, 0).ljust(64, b"\0"))
GETATTR_IN = struct.pack("<IIQ", 0, 0, 0)


def read_in(fh, offset, size):
    return struct.pack("<QQIIQII", fh, offset, size, 0, 0, 0, 0)


def fs_write(name, mode, *requests):
    os.makedirs("corpus/virtio_fs_requests", exist_ok=True)
    with open(f"corpus/virtio_fs_requests/{name}", "wb") as out:
        out.write(bytes([mode]) + b"".join(requests))


# Node 2 is the first looked up, handle 1 the first opened (the
# passthrough numbers them in order).
fs_write("read-a-file", 0, INIT_REQ, fuse(LOOKUP, body=cstr("hello.txt")), fuse(GETATTR, 2, GETATTR_IN),
         fuse(OPEN, 2, struct.pack("<II", os.O_RDONLY, 0)), fuse(READ, 2, read_in(1, 0, 4096)),
         fuse(LSEEK, 2, struct.pack("<QQII", 1, 0, 3, 0)), fuse(RELEASE, 2, struct.pack("<QIIQ", 1, 0, 0, 0)),
         fuse(FORGET, 2, struct.pack("<Q", 1)))
fs_write("list-a-subset", 1, INIT_REQ, fuse(LOOKUP, body=cstr("etc")), fuse(LOOKUP, body=cstr("sub")),
         fuse(OPENDIR, ROOT, struct.pack("<II", 0, 0)), fuse(READDIRPLUS, ROOT, read_in(1, 0, 4096)),
         fuse(READDIR, ROOT, read_in(1, 0, 65536)), fuse(RELEASEDIR, ROOT, struct.pack("<QIIQ", 1, 0, 0, 0)),
         fuse(STATFS))
fs_write("writes-refused", 0, INIT_REQ, fuse(LOOKUP, body=cstr("hello.txt")),
         fuse(OPEN, 2, struct.pack("<II", os.O_RDWR | os.O_TRUNC, 0)),
         fuse(WRITE, 2, struct.pack("<QQIIQII", 1, 0, 5, 0, 0, 0, 0) + b"owned"),
         fuse(SETATTR, 2, struct.pack("<IIQQQQQQIIIIIIII", 1 << 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
         fuse(MKDIR, ROOT, struct.pack("<II", 0o755, 0) + cstr("new")), fuse(UNLINK, ROOT, cstr("hello.txt")),
         fuse(RENAME, ROOT, struct.pack("<Q", ROOT) + cstr("sub") + cstr("moved")),
         fuse(CREATE, ROOT, struct.pack("<IIII", os.O_WRONLY, 0o644, 0, 0) + cstr("made")),
         fuse(FALLOCATE, 2, struct.pack("<QQQII", 1, 0, 1 << 40, 0, 0)),
         fuse(SETXATTR, 2, struct.pack("<II", 2, 0) + cstr("user.x") + b"v\0"))
fs_write("xattrs", 0, INIT_REQ, fuse(GETXATTR, ROOT, struct.pack("<II", 0xffffffff, 0) + cstr("user.x")),
         fuse(LISTXATTR, ROOT, struct.pack("<II", 0xffffffff, 0)), fuse(READLINK, ROOT))
fs_write("lying-lengths", 0, INIT_REQ, fuse(GETATTR, ROOT, GETATTR_IN, length=4096),
         fuse(LOOKUP, body=cstr("hello.txt"), length=20))
fs_write("no-init", 0, fuse(GETATTR, ROOT, GETATTR_IN), fuse(LOOKUP, body=cstr("sub")))
fs_write("batch-forget", 1, INIT_REQ, fuse(BATCH_FORGET, ROOT, struct.pack("<II", 0xffffffff, 0)
                                       + struct.pack("<QQ", 2, 1)))
