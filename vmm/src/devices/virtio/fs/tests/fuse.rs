//! FUSE messages as the guest kernel would send them, over [`Driver`].

use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};

use fuse_backend_rs::abi::fuse_abi::{
    CreateIn, EntryOut, InHeader, InitIn, InitOut, Opcode, OpenIn, OpenOut, OutHeader, ReadIn,
    SetattrIn, WriteIn, WriteOut,
};
use vm_memory::{ByteValued, Bytes, GuestAddress};

use super::driver::{Desc, Driver, REQUEST};

pub const ROOT: u64 = 1;

/// Room for a reply header plus a page of payload.
const REPLY_CAPACITY: u32 = 4096 + size_of::<OutHeader>() as u32;

static NEXT_UNIQUE: AtomicU64 = AtomicU64::new(1);

/// `name` as a NUL-terminated C string.
pub fn cstr(name: &str) -> Vec<u8> {
    let mut bytes = name.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// A FUSE request: header plus the concatenated `body` parts, with a
/// truthful `len`.
pub fn message(opcode: u32, nodeid: u64, body: &[&[u8]]) -> Vec<u8> {
    let body = body.concat();
    let header = InHeader {
        len: (size_of::<InHeader>() + body.len()) as u32,
        opcode,
        unique: NEXT_UNIQUE.fetch_add(1, Ordering::Relaxed),
        nodeid,
        uid: 0,
        gid: 0,
        pid: 1,
        padding: 0,
    };
    [header.as_slice(), &body].concat()
}

/// What the device wrote back for one request.
pub struct Reply {
    /// The length the device put on the used ring.
    pub used_len: u32,
    /// The first `used_len` bytes of the reply buffer.
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn header(&self) -> OutHeader {
        assert!(
            self.bytes.len() >= size_of::<OutHeader>(),
            "reply of {} bytes has no header",
            self.bytes.len()
        );
        *OutHeader::from_slice(&self.bytes[..size_of::<OutHeader>()]).unwrap()
    }

    /// The errno the request failed with, 0 on success.
    pub fn errno(&self) -> i32 {
        -self.header().error
    }

    /// The reply payload after the header.
    pub fn payload(&self) -> &[u8] {
        let header = self.header();
        assert_eq!(header.error, 0, "request failed");
        assert_eq!(
            header.len, self.used_len,
            "header length disagrees with used length"
        );
        &self.bytes[size_of::<OutHeader>()..]
    }

    /// The payload as a `T`.
    pub fn body<T: ByteValued>(&self) -> T {
        let payload = self.payload();
        *T::from_slice(&payload[..size_of::<T>()]).unwrap()
    }
}

impl Driver {
    /// Sends `msg` on the request queue with a reply buffer of `capacity`
    /// bytes and waits for the reply.
    pub fn call_with_capacity(&mut self, msg: &[u8], capacity: u32) -> Reply {
        let request = self.buffer_with(msg);
        let reply = self.buffer(capacity);
        let head = self.write_chain(
            REQUEST,
            &[
                Desc::readable(request, msg.len() as u32),
                Desc::writable(reply, capacity),
            ],
        );
        self.post(REQUEST, head);
        self.kick(REQUEST);
        let used = self.wait_used(REQUEST, 1).remove(0);
        assert_eq!(used.head, u32::from(head));
        assert!(
            used.len <= capacity,
            "used length {} beyond the buffer",
            used.len
        );
        let mut bytes = vec![0; used.len as usize];
        self.mem()
            .read_slice(&mut bytes, GuestAddress(reply))
            .unwrap();
        Reply {
            used_len: used.len,
            bytes,
        }
    }

    pub fn call(&mut self, opcode: Opcode, nodeid: u64, body: &[&[u8]]) -> Reply {
        self.call_opcode(opcode as u32, nodeid, body)
    }

    /// [`Driver::call`] for opcodes that may have no [`Opcode`] variant.
    pub fn call_opcode(&mut self, opcode: u32, nodeid: u64, body: &[&[u8]]) -> Reply {
        self.call_with_capacity(&message(opcode, nodeid, body), REPLY_CAPACITY)
    }

    pub fn init(&mut self) -> InitOut {
        self.init_with_flags(0)
    }

    /// FUSE_INIT offering the `flags` capabilities.
    pub fn init_with_flags(&mut self, flags: u32) -> InitOut {
        let init = InitIn {
            major: 7,
            minor: 31,
            max_readahead: 0x2_0000,
            flags,
        };
        let out: InitOut = self.call(Opcode::Init, 0, &[init.as_slice()]).body();
        assert_eq!(out.major, 7);
        out
    }

    pub fn lookup(&mut self, parent: u64, name: &str) -> Reply {
        self.call(Opcode::Lookup, parent, &[&cstr(name)])
    }

    /// Looks up `name`, which must exist, and returns its node id.
    pub fn lookup_node(&mut self, parent: u64, name: &str) -> u64 {
        let entry: EntryOut = self.lookup(parent, name).body();
        assert_ne!(entry.nodeid, 0);
        entry.nodeid
    }

    pub fn open(&mut self, node: u64, flags: i32) -> Reply {
        let open = OpenIn {
            flags: flags as u32,
            fuse_flags: 0,
        };
        self.call(Opcode::Open, node, &[open.as_slice()])
    }

    /// Opens `node` read-only, which must succeed, and returns the handle.
    pub fn open_handle(&mut self, node: u64) -> u64 {
        self.open(node, libc::O_RDONLY).body::<OpenOut>().fh
    }

    /// Opens directory `node`, which must succeed, and returns the handle.
    pub fn opendir_handle(&mut self, node: u64) -> u64 {
        let open = OpenIn {
            flags: libc::O_RDONLY as u32,
            fuse_flags: 0,
        };
        self.call(Opcode::Opendir, node, &[open.as_slice()])
            .body::<OpenOut>()
            .fh
    }

    pub fn create(&mut self, parent: u64, name: &str, flags: i32) -> Reply {
        let create = CreateIn {
            flags: (flags | libc::O_CREAT) as u32,
            mode: libc::S_IFREG | 0o644,
            umask: 0o022,
            fuse_flags: 0,
        };
        self.call(Opcode::Create, parent, &[create.as_slice(), &cstr(name)])
    }

    /// Creates `name` in `parent`, which must succeed, and returns its entry
    /// and open handle.
    pub fn create_file(&mut self, parent: u64, name: &str, flags: i32) -> (EntryOut, OpenOut) {
        let created = self.create(parent, name, flags);
        let payload = created.payload();
        let entry = *EntryOut::from_slice(&payload[..size_of::<EntryOut>()]).unwrap();
        let open = *OpenOut::from_slice(&payload[size_of::<EntryOut>()..][..size_of::<OpenOut>()])
            .unwrap();
        (entry, open)
    }

    pub fn write(&mut self, node: u64, fh: u64, offset: u64, data: &[u8]) -> Reply {
        let write = WriteIn {
            fh,
            offset,
            size: data.len() as u32,
            ..Default::default()
        };
        self.call(Opcode::Write, node, &[write.as_slice(), data])
    }

    /// Writes `data`, which must be written whole.
    pub fn write_all(&mut self, node: u64, fh: u64, offset: u64, data: &[u8]) {
        let written: WriteOut = self.write(node, fh, offset, data).body();
        assert_eq!(written.size as usize, data.len());
    }

    pub fn setattr(&mut self, node: u64, setattr: SetattrIn) -> Reply {
        self.call(Opcode::Setattr, node, &[setattr.as_slice()])
    }

    pub fn read(&mut self, node: u64, fh: u64, offset: u64, size: u32) -> Reply {
        let read = ReadIn {
            fh,
            offset,
            size,
            ..Default::default()
        };
        self.call(Opcode::Read, node, &[read.as_slice()])
    }
}
