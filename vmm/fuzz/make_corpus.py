#!/usr/bin/env python3
"""Writes the seed corpus of hull-vmm's fuzz targets (corpus/<target>/):
what a guest driver hands the devices, valid and hostile, that the
mutations and libFuzzer start from. A chain is laid out as the 256-byte
descriptor table, then the bytes at guest address 0x10000 (see
src/fuzz/). Run from this directory; the output is checked in."""

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

# virtio_fs_writable_requests: a mode byte (bit 0: a single-file bind
# showing only hello.txt; else a volume), then FUSE requests.
SYMLINK, MKNOD, LINK, RENAME2 = 6, 8, 13, 45
SETATTR_MODE, SETATTR_SIZE = 1 << 0, 1 << 3
FALLOC_FL_KEEP_SIZE = 1


def setattr_in(valid, mode=0, size=0):
    """fuse_setattr_in: valid, padding, fh, size, lock_owner, atime, mtime, ctime, nsecs, mode, ..."""
    return struct.pack("<IIQQQQQQIIIIIIII", valid, 0, 0, size, 0, 0, 0, 0, 0, 0, 0, mode, 0, 0, 0, 0)


def write_in(fh, offset, data):
    return struct.pack("<QQIIQII", fh, offset, len(data), 0, 0, 0, 0) + data


def fs_writable(name, mode, *requests):
    os.makedirs("corpus/virtio_fs_writable_requests", exist_ok=True)
    with open(f"corpus/virtio_fs_writable_requests/{name}", "wb") as out:
        out.write(bytes([mode]) + b"".join(requests))


# CREATE's node is 2 and its handle 1.
fs_writable("volume-writes", 0, INIT_REQ,
            fuse(CREATE, ROOT, struct.pack("<IIII", os.O_WRONLY, 0o644, 0, 0) + cstr("made")),
            fuse(WRITE, 2, write_in(1, 0, b"owned")), fuse(MKDIR, ROOT, struct.pack("<II", 0o755, 0) + cstr("new")),
            fuse(FALLOCATE, 2, struct.pack("<QQQII", 1, 0, 1 << 40, FALLOC_FL_KEEP_SIZE, 0)),
            fuse(SETXATTR, 2, struct.pack("<II", 2, 0) + cstr("user.x") + b"v\0"),
            fuse(RELEASE, 2, struct.pack("<QIIQ", 1, 0, 0, 0)))
fs_writable("single-file-writes", 1, INIT_REQ, fuse(LOOKUP, body=cstr("hello.txt")),
            fuse(OPEN, 2, struct.pack("<II", os.O_RDWR, 0)), fuse(WRITE, 2, write_in(1, 0, b"owned")),
            fuse(MKDIR, ROOT, struct.pack("<II", 0o755, 0) + cstr("new")),
            fuse(CREATE, ROOT, struct.pack("<IIII", os.O_WRONLY, 0o644, 0, 0) + cstr("made")),
            fuse(LOOKUP, body=cstr("sub")), fuse(SETATTR, ROOT, setattr_in(SETATTR_MODE, 0o777)),
            fuse(UNLINK, ROOT, cstr("hello.txt")),
            fuse(RENAME, ROOT, struct.pack("<Q", ROOT) + cstr("hello.txt") + cstr("moved")),
            fuse(LINK, ROOT, struct.pack("<Q", 2) + cstr("hard")))
fs_writable("escape-by-name", 0, INIT_REQ, fuse(LOOKUP, body=cstr("../beside")),
            fuse(CREATE, ROOT, struct.pack("<IIII", os.O_WRONLY, 0o644, 0, 0) + cstr("../beside/made")),
            fuse(MKDIR, ROOT, struct.pack("<II", 0o755, 0) + cstr("../new")),
            fuse(RENAME, ROOT, struct.pack("<Q", ROOT) + cstr("hello.txt") + cstr("../beside/moved")),
            fuse(MKNOD, ROOT, struct.pack("<IIII", 0o100644, 0, 0, 0) + cstr("../beside/node")),
            fuse(LOOKUP, body=cstr("beside")))
fs_writable("grow-and-chmod", 0, INIT_REQ, fuse(SETATTR, ROOT, setattr_in(SETATTR_MODE, 0o700)),
            fuse(LOOKUP, body=cstr("hello.txt")), fuse(SETATTR, 2, setattr_in(SETATTR_SIZE, size=1 << 40)),
            fuse(OPEN, 2, struct.pack("<II", os.O_RDWR, 0)),
            fuse(FALLOCATE, 2, struct.pack("<QQQII", 1, 1 << 30, 1 << 40, 0, 0)),
            fuse(WRITE, 2, write_in(1, (1 << 40) - 5, b"tail!")),
            fuse(SYMLINK, ROOT, cstr("link") + cstr("../beside/canary")), fuse(LOOKUP, body=cstr("link")),
            fuse(OPEN, 3, struct.pack("<II", os.O_RDWR, 0)))
fs_writable("single-file-hostile", 1, INIT_REQ, fuse(LOOKUP, body=cstr("..")),
            fuse(OPENDIR, ROOT, struct.pack("<II", 0, 0)), fuse(READDIRPLUS, ROOT, read_in(1, 0, 4096)),
            fuse(SETXATTR, ROOT, struct.pack("<II", 2, 0) + cstr("user.x") + b"v\0"),
            fuse(LOOKUP, body=cstr("hello.txt")),
            fuse(RENAME2, ROOT, struct.pack("<QII", ROOT, 2, 0) + cstr("hello.txt") + cstr("sub")),
            fuse(SETATTR, 3, setattr_in(SETATTR_SIZE, size=0)))

# virtio_blk_requests: a mode byte (bit 0: read-only disk), then a chain
# laid out as for vsock_tx_packet.
# WRITE is FUSE's opcode from here on; a device-writable descriptor's flag:
DESC_WRITE = 2
BLK_IN, BLK_OUT, BLK_FLUSH, BLK_GET_ID, BLK_DISCARD, BLK_WRITE_ZEROES = 0, 1, 4, 8, 11, 13


def blk_header(kind, sector=0):
    return struct.pack("<IIQ", kind, 0, sector)


def blk(name, mode, descriptors, buffers):
    os.makedirs("corpus/virtio_blk_requests", exist_ok=True)
    with open(f"corpus/virtio_blk_requests/{name}", "wb") as out:
        out.write(bytes([mode]) + chain(descriptors, buffers))


def data_request(kind, sector, data_flags, data=b""):
    """Header at 0x10000, 512 bytes of data at 0x10010, status at 0x10210."""
    return ([desc(BUFFERS, 16, NEXT, 1), desc(BUFFERS + 0x10, 512, data_flags | NEXT, 2),
             desc(BUFFERS + 0x210, 1, DESC_WRITE)],
            blk_header(kind, sector) + data)


blk("read-first-sector", 0, *data_request(BLK_IN, 0, DESC_WRITE))
blk("write-second-sector", 0, *data_request(BLK_OUT, 1, 0, b"\xa5" * 512))
blk("write-past-the-end", 0, *data_request(BLK_OUT, 128, 0))
blk("write-read-only", 1, *data_request(BLK_OUT, 1, 0))
blk("read-sector-overflow", 0, *data_request(BLK_IN, 0xffffffffffffffff, DESC_WRITE))
blk("discard-first-sector", 0, [desc(BUFFERS, 16, NEXT, 1), desc(BUFFERS + 0x10, 16, NEXT, 2),
                                desc(BUFFERS + 0x20, 1, DESC_WRITE)],
    blk_header(BLK_DISCARD) + struct.pack("<QII", 0, 1, 0))
blk("write-zeroes-past-the-end", 0, [desc(BUFFERS, 16, NEXT, 1), desc(BUFFERS + 0x10, 32, NEXT, 2),
                                     desc(BUFFERS + 0x30, 1, DESC_WRITE)],
    blk_header(BLK_WRITE_ZEROES) + struct.pack("<QII", 0, 1, 1) + struct.pack("<QII", 127, 2, 1))
blk("get-id", 0, [desc(BUFFERS, 16, NEXT, 1), desc(BUFFERS + 0x10, 20, DESC_WRITE | NEXT, 2),
                  desc(BUFFERS + 0x30, 1, DESC_WRITE)], blk_header(BLK_GET_ID))
blk("flush", 0, [desc(BUFFERS, 16, NEXT, 1), desc(BUFFERS + 0x10, 1, DESC_WRITE)], blk_header(BLK_FLUSH))
blk("unknown-type", 0, [desc(BUFFERS, 16, NEXT, 1), desc(BUFFERS + 0x10, 1, DESC_WRITE)], blk_header(99))
blk("indirect-read", 0, [desc(BUFFERS + 0x400, 48, INDIRECT)],
    (blk_header(BLK_IN, 3).ljust(0x400, b"\0") + desc(BUFFERS, 16, NEXT, 1)
     + desc(BUFFERS + 0x10, 512, DESC_WRITE | NEXT, 2) + desc(BUFFERS + 0x210, 1, DESC_WRITE)))
blk("status-read-only", 0, [desc(BUFFERS, 16, NEXT, 1), desc(BUFFERS + 0x10, 1)], blk_header(BLK_FLUSH))

# virtio_net_tx: a TX chain laid out as for vsock_tx_packet; a frame is a
# 12-byte vnet header, then the Ethernet frame.
VNET_HDR = struct.pack("<BBHHHHH", 0, 0, 0, 0, 0, 0, 0)
ETHERNET = bytes(range(60))


def net_tx(name, descriptors, buffers):
    os.makedirs("corpus/virtio_net_tx", exist_ok=True)
    with open(f"corpus/virtio_net_tx/{name}", "wb") as out:
        out.write(chain(descriptors, buffers))


net_tx("one-descriptor", [desc(BUFFERS, 72)], VNET_HDR + ETHERNET)
net_tx("two-descriptors", [desc(BUFFERS, 12, NEXT, 1), desc(BUFFERS + 0x100, 60)],
       VNET_HDR.ljust(0x100, b"\0") + ETHERNET)
net_tx("largest", [desc(BUFFERS, 65562)], VNET_HDR)
net_tx("too-long", [desc(BUFFERS, 65562, NEXT, 1), desc(BUFFERS, 1)], VNET_HDR)
net_tx("header-only-short", [desc(BUFFERS, 11)], VNET_HDR)
net_tx("device-writable", [desc(BUFFERS, 72, DESC_WRITE)], VNET_HDR + ETHERNET)
net_tx("outside-memory", [desc(BUFFERS, 12, NEXT, 1), desc(0x2fff0, 0x20)], VNET_HDR)
net_tx("indirect", [desc(BUFFERS + 0x200, 32, INDIRECT)],
       (VNET_HDR.ljust(0x200, b"\0") + desc(BUFFERS, 12, NEXT, 1) + desc(BUFFERS + 0x100, 60)))

# virtio_net_rx: a mode byte (bit 0: mergeable buffers), the frame's
# length (u32), the number of chains offered and their heads, then a
# descriptor table and buffers as for vsock_tx_packet.


def net_rx(name, mode, frame_len, heads, descriptors, buffers=b""):
    os.makedirs("corpus/virtio_net_rx", exist_ok=True)
    with open(f"corpus/virtio_net_rx/{name}", "wb") as out:
        out.write(bytes([mode]) + struct.pack("<IB", frame_len, len(heads)) + bytes(heads)
                  + chain(descriptors, buffers))


net_rx("one-buffer", 0, 100, [0], [desc(BUFFERS, 2048, DESC_WRITE)])
net_rx("mergeable", 1, 100, [0, 1], [desc(BUFFERS, 64, DESC_WRITE), desc(BUFFERS + 0x800, 64, DESC_WRITE)])
net_rx("unusable", 0, 100, [0, 1], [desc(BUFFERS, 64), desc(BUFFERS + 0x800, 2048, DESC_WRITE)])
net_rx("mergeable-waits", 1, 1000, [0], [desc(BUFFERS, 64, DESC_WRITE)])
net_rx("too-small-dropped", 0, 65562, [0], [desc(BUFFERS, 2048, DESC_WRITE)])
net_rx("chained-buffers", 0, 3000, [0], [desc(BUFFERS, 12, DESC_WRITE | NEXT, 1),
                                         desc(BUFFERS + 0x100, 1000, DESC_WRITE | NEXT, 2),
                                         desc(BUFFERS + 0x1000, 0x10000, DESC_WRITE)])
net_rx("bad-heads", 1, 200, [200, 16, 0], [desc(0x2ff00, 0x200, DESC_WRITE)])
net_rx("runt-frame", 0, 11, [0], [desc(BUFFERS, 2048, DESC_WRITE)])

# virtio_mmio_registers: operations of 8 bytes: kind (0 write register,
# 1 read, 2 write of `size` bytes, 3 write guest memory), size, offset
# (u16), value (u32), against a virtio-blk device's MMIO window.
(MAGIC, VERSION, DEVICE_ID, DEVICE_FEATURES, DEVICE_FEATURES_SEL, DRIVER_FEATURES,
 DRIVER_FEATURES_SEL, QUEUE_SEL, QUEUE_NUM_MAX, QUEUE_NUM, QUEUE_READY, QUEUE_NOTIFY,
 INTERRUPT_STATUS, INTERRUPT_ACK, STATUS, QUEUE_DESC_LOW, QUEUE_DESC_HIGH, QUEUE_AVAIL_LOW,
 QUEUE_USED_LOW, CONFIG) = (0x0, 0x4, 0x8, 0x10, 0x14, 0x20, 0x24, 0x30, 0x34, 0x38, 0x44, 0x50,
                            0x60, 0x64, 0x70, 0x80, 0x84, 0x90, 0xa0, 0x100)
ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK = 1, 2, 8, 4


def op(kind, offset, value=0, size=4):
    return struct.pack("<BBHI", kind, size, offset, value)


def reg_write(offset, value):
    return op(0, offset, value)


def reg_read(offset, size=4):
    return op(1, offset, 0, size)


def memory(addr, data):
    """Guest memory writes of `data`, a u32 at a time."""
    data = data.ljust((len(data) + 3) // 4 * 4, b"\0")
    return b"".join(op(3, addr + i, struct.unpack_from("<I", data, i)[0]) for i in range(0, len(data), 4))


def negotiate(high_features=1, low_features=0):
    return (reg_read(MAGIC) + reg_read(VERSION) + reg_read(DEVICE_ID)
            + reg_write(STATUS, ACKNOWLEDGE) + reg_write(STATUS, ACKNOWLEDGE | DRIVER)
            + reg_write(DEVICE_FEATURES_SEL, 1) + reg_read(DEVICE_FEATURES)
            + reg_write(DRIVER_FEATURES_SEL, 1) + reg_write(DRIVER_FEATURES, high_features)
            + reg_write(DRIVER_FEATURES_SEL, 0) + reg_write(DRIVER_FEATURES, low_features)
            + reg_write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK) + reg_read(STATUS))


def queue_setup(desc_high=0, size=16):
    return (reg_write(QUEUE_SEL, 0) + reg_read(QUEUE_NUM_MAX) + reg_write(QUEUE_NUM, size)
            + reg_write(QUEUE_DESC_LOW, 0) + reg_write(QUEUE_DESC_HIGH, desc_high)
            + reg_write(QUEUE_AVAIL_LOW, 0x1000) + reg_write(QUEUE_USED_LOW, 0x2000)
            + reg_write(QUEUE_READY, 1))


# A write of sector 1: header at 0x3000, data at 0x3010, status at 0x3210.
WRITE_REQUEST = (memory(0, desc(0x3000, 16, NEXT, 1) + desc(0x3010, 512, NEXT, 2) + desc(0x3210, 1, DESC_WRITE))
                 + memory(0x3000, blk_header(BLK_OUT, 1)) + memory(0x3010, b"\x5a" * 64)
                 + memory(0x1000, struct.pack("<HHH", 0, 1, 0)))
START = reg_write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)


def mmio(name, *ops):
    os.makedirs("corpus/virtio_mmio_registers", exist_ok=True)
    with open(f"corpus/virtio_mmio_registers/{name}", "wb") as out:
        out.write(b"".join(ops))


mmio("start-and-notify", negotiate(), queue_setup(), WRITE_REQUEST, START, reg_write(QUEUE_NOTIFY, 0),
     reg_read(INTERRUPT_STATUS), reg_write(INTERRUPT_ACK, 1), reg_read(CONFIG, 8), reg_read(STATUS))
mmio("queue-outside-memory", negotiate(), queue_setup(desc_high=1), START)
mmio("reset-and-start-again", negotiate(), queue_setup(), START, reg_write(STATUS, 0), negotiate(),
     queue_setup(), START, reg_write(QUEUE_NOTIFY, 0))
mmio("features-refused", negotiate(high_features=0xffffffff, low_features=0xffffffff), queue_setup(), START)
mmio("bogus-queue-sizes", negotiate(), reg_write(QUEUE_SEL, 0), reg_write(QUEUE_NUM, 3),
     reg_write(QUEUE_NUM, 0), reg_write(QUEUE_NUM, 0xffff), reg_write(QUEUE_SEL, 7),
     reg_write(QUEUE_NUM, 16), reg_write(QUEUE_READY, 1), reg_read(QUEUE_NUM_MAX), START)
mmio("odd-accesses", reg_read(MAGIC, 1), reg_read(MAGIC, 8), op(2, STATUS, 0x0f0f0f0f, 2),
     op(2, QUEUE_NOTIFY, 0, 8), reg_read(CONFIG - 2, 4), reg_read(0xfffc), op(2, 0xffff, 1, 8),
     reg_read(CONFIG + 0x3c, 8), reg_write(QUEUE_NOTIFY, 0xffffffff), reg_read(0x0fc))
mmio("notify-before-start", queue_setup(), WRITE_REQUEST, reg_write(QUEUE_NOTIFY, 0), START,
     reg_write(QUEUE_NOTIFY, 0))

# vsock_muxer_sequences: operations, each a kind byte and its arguments
# (see src/fuzz/vsock_muxer.rs). Guest ports are 5000 + 0..3; host ports
# are picked as 0: 1024, 1: 1025 (both listened on), 2: 1026 (not), 3 and
# up: the host-initiated local ports from 2^30.
(V_INVALID, V_REQUEST, V_RESPONSE, V_RST, V_SHUTDOWN, V_RW, V_CREDIT_UPDATE,
 V_CREDIT_REQUEST) = range(8)
WRONG_SRC_CID, WRONG_DST_CID, RAW_PORTS, FILLER = 1, 2, 4, 8
LOCAL_PORT, SEQPACKET, SHUTDOWN_SEND = 3, 0x80 | 2, 2


def guest(op, guest_port=0, host_port=0, data=b"", shape=0, type_=0, flags=0, buf_alloc=4096,
          fwd_cnt=0, length=None, raw_ports=(0, 0)):
    """Operation 0: a packet from the guest; an RW's payload is `data`, or
    `length` bytes of filler with FILLER in the shape."""
    length = len(data) if length is None else length
    fields = (bytes([0, shape, host_port << 2 | guest_port, op, type_, flags])
              + struct.pack("<IIH", buf_alloc, fwd_cnt, length))
    ports = struct.pack("<II", *raw_ports) if shape & RAW_PORTS else b""
    return fields + ports + (data if op == V_RW and not shape & FILLER else b"")


def connect(guest_port):
    """Operation 1: a host client writing `CONNECT <5000 + guest_port>\\n`."""
    return bytes([1, guest_port])


def raw_line(data):
    return bytes([1, 0xc0 | len(data)]) + data


ACCEPT, EVENTS, DEADLINES = bytes([2]), bytes([5]), bytes([6])


def host_write(stream, data):
    return bytes([3, stream]) + struct.pack("<H", len(data)) + data


def host_read(stream):
    return bytes([4, stream])


def host_shutdown(stream):
    return bytes([4, 0x40 | stream])


def host_drop(stream):
    return bytes([4, 0x80 | stream])


def drain(size=4096):
    return bytes([7]) + struct.pack("<H", size)


def muxer(name, *ops):
    os.makedirs("corpus/vsock_muxer_sequences", exist_ok=True)
    with open(f"corpus/vsock_muxer_sequences/{name}", "wb") as out:
        out.write(b"".join(ops))


muxer("guest-connects-and-relays", guest(V_REQUEST), drain(), ACCEPT,
      guest(V_RW, data=b"hello from the guest"), host_read(0), host_write(0, b"hello from the host"),
      EVENTS, drain(8), guest(V_CREDIT_UPDATE, fwd_cnt=19), guest(V_CREDIT_REQUEST, fwd_cnt=19), drain(),
      guest(V_SHUTDOWN, flags=SHUTDOWN_SEND, fwd_cnt=19), host_read(0), host_shutdown(0), EVENTS, drain(),
      guest(V_RST, fwd_cnt=19), drain())
muxer("host-connects", connect(1), EVENTS, EVENTS, drain(),
      guest(V_RESPONSE, 1, LOCAL_PORT, buf_alloc=65536), host_read(0), host_write(0, b"ping"), EVENTS,
      drain(), guest(V_RW, 1, LOCAL_PORT, b"pong", fwd_cnt=4), host_read(0))
muxer("past-the-limit", guest(V_REQUEST, 1, 2), *(guest(V_REQUEST, port) for port in range(4)),
      guest(V_REQUEST, 0, 1), connect(0), EVENTS, EVENTS, host_read(0), drain())
muxer("bad-cids-and-types", guest(V_REQUEST, shape=WRONG_SRC_CID), guest(V_REQUEST, shape=WRONG_DST_CID),
      guest(V_REQUEST, 1, type_=SEQPACKET), guest(V_INVALID, 2), guest(V_RST, type_=SEQPACKET),
      guest(V_REQUEST, shape=RAW_PORTS, raw_ports=(7, 0xffffffff)), guest(V_REQUEST, 3), drain(),
      guest(V_RW, 3, data=b"x", type_=SEQPACKET), drain())
# Four full packets leave 4 bytes of the 256 KiB the host grants.
muxer("credit-overrun", guest(V_REQUEST, buf_alloc=0), drain(),
      *(guest(V_RW, shape=FILLER, length=65535) for _ in range(4)), guest(V_RW, data=b"12345"), drain())
# More than the host stream's buffer takes: the rest waits in the muxer
# until the host reads; 64 KiB read earns the guest a CREDIT_UPDATE.
muxer("guest-fills-the-host", guest(V_REQUEST), drain(), ACCEPT,
      *(guest(V_RW, shape=FILLER, length=65535) for _ in range(4)),
      *(host_read(0) + EVENTS for _ in range(8)), drain())
muxer("zero-credit-window", guest(V_REQUEST, buf_alloc=0), drain(), ACCEPT, host_write(0, b"wait for it"),
      EVENTS, drain(), guest(V_CREDIT_UPDATE, buf_alloc=4096), drain())
muxer("connect-times-out", connect(2), EVENTS, EVENTS, drain(), DEADLINES, drain(), host_read(0))
muxer("client-gone", connect(0), EVENTS, EVENTS, drain(), host_drop(0), guest(V_RESPONSE, 0, LOCAL_PORT))
muxer("bad-connect-lines", raw_line(b"CONNECT x\n"), raw_line(b"A" * 40), raw_line(b"CONNECT 5000"),
      raw_line(b"\xff\xfe\n"), EVENTS, EVENTS, drain())
