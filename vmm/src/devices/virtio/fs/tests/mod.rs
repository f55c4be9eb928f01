//! Device tests without KVM: a mock driver posts FUSE requests on
//! virtio-queue mock split queues and the real worker thread serves them.

mod config;
mod driver;
mod fuse;
mod large_requests;
mod malformed;
mod notify;
mod read_only;
mod serve;
mod single_file;
mod subset;
mod volume;

use std::path::Path;

/// The file every fixture shares, and its contents.
const HELLO: &str = "hello.txt";
const HELLO_CONTENTS: &[u8] = b"hello from the host\n";

/// A shared directory: `hello.txt`, and `sub/` holding `inner`.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(dir.path());
    dir
}

fn write_fixture(root: &Path) {
    std::fs::write(root.join(HELLO), HELLO_CONTENTS).unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/inner"), b"inner").unwrap();
}
