//! `tcp-flood`: a flood of idle TCP connections, for the tests of what a
//! published port withstands.
//!
//! ```text
//! tcp-flood HOST:PORT COUNT   open COUNT connections at once (each may take
//!                             20 s), print "established=N", then hold
//!                             them all, sending nothing, until killed
//! ```

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match &args[..] {
        [address, count] => address.parse::<SocketAddr>().ok().zip(count.parse().ok()),
        _ => None,
    };
    let Some((address, count)) = parsed else {
        eprintln!("usage: tcp-flood HOST:PORT COUNT");
        return ExitCode::FAILURE;
    };
    let connecting: Vec<_> = (0..count)
        .map(|_| thread::spawn(move || TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)))
        .collect();
    let held: Vec<TcpStream> = connecting
        .into_iter()
        .filter_map(|thread| thread.join().ok()?.ok())
        .collect();
    println!("established={}", held.len());
    let _ = std::io::stdout().flush();
    loop {
        thread::park();
    }
}
