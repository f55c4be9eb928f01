//! `udp-echo`: the UDP ends of the networking tests, since busybox has no
//! UDP server.
//!
//! ```text
//! udp-echo serve PORT          answer each datagram with "re:" + datagram
//! udp-echo ask HOST:PORT TEXT  send TEXT until an answer comes (60 s at
//!                              most) and print the answer
//! ```

use std::net::UdpSocket;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const ASK_FOR: Duration = Duration::from_secs(60);
const RETRY_EVERY: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", port] => serve(port),
        ["ask", address, text] => ask(address, text),
        _ => Err("usage: udp-echo serve PORT | udp-echo ask HOST:PORT TEXT".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("udp-echo: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(port: &str) -> Result<(), String> {
    let socket = UdpSocket::bind(format!("0.0.0.0:{port}")).map_err(|e| e.to_string())?;
    let mut buffer = [0; 2048];
    loop {
        let (len, from) = socket.recv_from(&mut buffer).map_err(|e| e.to_string())?;
        let reply = [b"re:".as_slice(), &buffer[..len]].concat();
        socket.send_to(&reply, from).map_err(|e| e.to_string())?;
    }
}

fn ask(address: &str, text: &str) -> Result<(), String> {
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(RETRY_EVERY))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + ASK_FOR;
    let mut buffer = [0; 2048];
    while Instant::now() < deadline {
        // A send may fail while nothing listens yet (ICMP unreachable).
        let _ = socket.send_to(text.as_bytes(), address);
        if let Ok((len, _)) = socket.recv_from(&mut buffer) {
            println!("{}", String::from_utf8_lossy(&buffer[..len]));
            return Ok(());
        }
    }
    Err(format!(
        "no answer from {address} within {}s",
        ASK_FOR.as_secs()
    ))
}
