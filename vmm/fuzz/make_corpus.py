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
