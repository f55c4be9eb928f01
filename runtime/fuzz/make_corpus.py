#!/usr/bin/env python3
"""Writes the seed corpus of hull-runtime's fuzz targets (corpus/<target>/):
DNS questions as containers send them to a network's name server, and `-p`,
size and duration values as users write them, valid and hostile, that the
mutations and libFuzzer start from. Run from this directory; the output is
checked in."""

import os
import struct

A, AAAA, ANY, MX = 1, 28, 255, 15


def write(target, name, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/{name}", "wb") as out:
        out.write(data if isinstance(data, bytes) else data.encode())


def name(text):
    """A name as DNS labels."""
    return b"".join(bytes([len(label)]) + label.encode() for label in text.split(".") if label) + b"\0"


def query(ident, qname, qtype, flags=0x0100, opt=False):
    """A question message: header, one question, an EDNS OPT record if asked."""
    header = struct.pack(">HHHHHH", ident, flags, 1, 0, 0, 1 if opt else 0)
    body = name(qname) + struct.pack(">HH", qtype, 1)
    if opt:
        body += b"\0" + struct.pack(">HHIH", 41, 4096, 0, 0)
    return header + body


write("dns_query", "web-a", query(7, "web", A))
write("dns_query", "web-upper-aaaa", query(8, "WEB.", AAAA))
write("dns_query", "alias-any-edns", query(9, "web.alias", ANY, opt=True))
write("dns_query", "upstream-mx", query(10, "example.org", MX))
# A response, which is dropped; a name through a compression pointer
# loop; two questions; a status (opcode 2) query.
write("dns_query", "response", query(11, "web", A, flags=0x8180))
write("dns_query", "pointer-loop", struct.pack(">HHHHHH", 12, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack(">HH", A, 1))
write("dns_query", "two-questions",
      struct.pack(">HHHHHH", 13, 0x0100, 2, 0, 0, 0) + name("web") + struct.pack(">HH", A, 1)
      + b"\xc0\x0c" + struct.pack(">HH", AAAA, 1))
write("dns_query", "status", query(14, "web", A, flags=0x1000))

for i, spec in enumerate(["80", "8080:80", "127.0.0.1:5353:53/udp", "0.0.0.0::443/tcp", "8000-8010:80",
                          ":80", "65535:65536", "1.2.3.4:80:80/sctp", "8000-8002:80-82/udp", "9-8:80"]):
    write("port_spec", str(i), spec)
for i, size in enumerate(["256m", "1G", "131072k", "134217728", "64mb", "17179869184g", " 2 GB ", "12x"]):
    write("size", str(i), size)
for i, duration in enumerate(["30s", "1m30s", "1.5h", "500ms", "10µs", "0", ".5s", "2562047h47m16.854775807s",
                              "1.000000000000000000001ns", "1.5", "1..5s"]):
    write("duration", str(i), duration)
