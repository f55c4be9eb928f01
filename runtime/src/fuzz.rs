//! Fuzz targets for what hostile containers and users hand the runtime:
//! each a plain `fn(&[u8])` that must not panic whatever the bytes, and
//! asserts what must hold of any input.
//!
//! They run two ways: `cargo test -p hull-runtime` on the checked-in
//! corpus (`runtime/fuzz/corpus/<target>/`) and a bounded number of
//! mutations of it, and under libFuzzer for long runs from the
//! `runtime/fuzz` crate (not part of the workspace; see
//! `runtime/fuzz/README.md`), which enables this module with the
//! `fuzzing` feature.

use std::net::Ipv4Addr;

use hickory_proto::op::{Message, MessageType, ResponseCode};

use crate::network::dns::{reply, Reply};
use crate::units::{parse_duration, parse_memory_mib, parse_size_bytes};
use crate::PortRequest;

/// The names the `dns_query` target's directory knows.
fn directory(name: &str) -> Option<Ipv4Addr> {
    match name {
        "web" | "web.alias" | "0123456789ab" => Some(Ipv4Addr::new(10, 88, 0, 2)),
        _ => None,
    }
}

/// Answers `data` as the network's name server answers a datagram from a
/// container: only a question gets a reply, an answer from the directory
/// is a response to that question (its id, its questions, at most one
/// record), and a forwarded question fails, if it must, as SERVFAIL with
/// its id.
pub fn dns_query(data: &[u8]) {
    let reply = reply(data, &directory);
    if matches!(reply, Reply::Drop) {
        return;
    }
    let question = Message::from_vec(data).expect("only a message is answered");
    assert_eq!(question.metadata.message_type, MessageType::Query);
    match reply {
        Reply::Drop => unreachable!(),
        Reply::Local(bytes) => {
            let response = Message::from_vec(&bytes).expect("an answer parses");
            assert_eq!(response.metadata.message_type, MessageType::Response);
            assert_eq!(response.metadata.id, question.metadata.id);
            assert_eq!(response.queries, question.queries);
            assert!(response.answers.len() <= 1, "{response:?}");
        }
        Reply::Forward { failure } => {
            // Relayed replies are matched on the question's id.
            assert!(data.len() >= 2);
            let failure = Message::from_vec(&failure).expect("a SERVFAIL parses");
            assert_eq!(failure.metadata.id, question.metadata.id);
            assert_eq!(failure.metadata.response_code, ResponseCode::ServFail);
        }
    }
}

/// Parses `data` as a `-p` value: each parsed request publishes a
/// container port other than 0 on a host port or range of them in order,
/// and written out in full it parses to the same.
pub fn port_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(requests) = PortRequest::parse(text) else {
        return;
    };
    assert!(!requests.is_empty());
    for request in &requests {
        assert_ne!(request.container_port, 0);
        assert!(request.host_port <= request.last_host_port);
        let full = format!(
            "{}:{}-{}:{}/{}",
            request.host_ip,
            request.host_port,
            request.last_host_port,
            request.container_port,
            request.protocol
        );
        if request.host_port != 0 {
            assert_eq!(PortRequest::parse(&full).expect(&full), [*request]);
        }
    }
    assert_eq!(
        PortRequest::exposed(text).is_ok(),
        matches!(requests[..], [one] if one.host_port == 0 && one.host_ip.is_unspecified())
    );
}

/// Parses `data` as a size (`--shm-size`, `--memory`): a parsed size is
/// the same number of bytes written plainly, and a guest memory size is
/// its whole MiB when there are at least 64.
pub fn size(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let memory = parse_memory_mib(text);
    match parse_size_bytes(text) {
        Ok(bytes) => {
            assert_eq!(parse_size_bytes(&bytes.to_string()), Ok(bytes));
            match bytes >> 20 {
                mib if mib >= 64 => assert_eq!(memory, Ok(mib)),
                _ => assert!(memory.is_err()),
            }
        }
        Err(_) => assert!(memory.is_err()),
    }
}

/// Parses `data` as a Go duration (`--health-interval`): a parsed one is
/// the same in nanoseconds.
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(duration) = parse_duration(text) {
        let nanos = format!("{}ns", duration.as_nanos());
        assert_eq!(parse_duration(&nanos), Ok(duration), "{text:?}");
    }
}

#[cfg(test)]
mod tests {
    use hull_fuzz_corpus::mutation;
    use rand::rngs::StdRng;
    use rand::Rng;

    use super::*;

    /// Mutations of each corpus file run per target: bounded, and the
    /// same on every run (a fixed seed).
    const MUTATIONS: usize = 512;

    /// Bytes that mean something to these parsers: separators, digits,
    /// unit letters, the first byte of `µ`, DNS label lengths and a
    /// compression pointer.
    const SPECIAL: [u8; 12] = [
        0, b':', b'/', b'.', b'-', b'0', b'9', b'm', 0xc2, 0x3f, 0xc0, 0xff,
    ];

    /// The corpus of `target`, file name and bytes, sorted by name.
    fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
        hull_fuzz_corpus::corpus(env!("CARGO_MANIFEST_DIR"), target)
    }

    /// `input` changed the way fuzzers change inputs: bytes flipped, set
    /// to or inserted as special values, a big-endian u16 (a DNS count or
    /// id) rewritten, a range repeated, or the input cut short.
    fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
        mutation::in_rounds(rng, input, |rng, out, at| {
            let special = mutation::pick(rng, &SPECIAL);
            match rng.gen_range(0..6) {
                0 => mutation::flip_bit(rng, out, at),
                1 => out[at] = special,
                2 => out.insert(at, special),
                3 => {
                    let value = mutation::pick(rng, &[0u16, 1, 2, 0xff, 0xffff]);
                    mutation::overwrite(out, at, &value.to_be_bytes());
                }
                4 => mutation::repeat_range(rng, out, at, usize::MAX),
                _ => out.truncate(at),
            }
        })
    }

    /// Runs `target` on its corpus and on mutations of it.
    fn run(name: &str, target: fn(&[u8])) {
        hull_fuzz_corpus::run(env!("CARGO_MANIFEST_DIR"), name, target, MUTATIONS, mutate);
    }

    /// The seeds reach each branch of the targets: answered, forwarded and
    /// dropped questions; parsed and refused values.
    #[test]
    fn seeds_reach_every_outcome() {
        let replies: Vec<_> = corpus("dns_query")
            .into_iter()
            .map(|(file, input)| (file, reply(&input, &directory)))
            .collect();
        let reply = |name: &str| &replies.iter().find(|(file, _)| file == name).expect(name).1;
        assert!(matches!(reply("web-a"), Reply::Local(_)));
        assert!(matches!(reply("web-upper-aaaa"), Reply::Local(_)));
        assert!(matches!(reply("alias-any-edns"), Reply::Local(_)));
        assert!(matches!(reply("upstream-mx"), Reply::Forward { .. }));
        assert!(matches!(reply("two-questions"), Reply::Forward { .. }));
        assert!(matches!(reply("response"), Reply::Drop));
        assert!(matches!(reply("pointer-loop"), Reply::Drop));

        let outcomes = |target: &str, parses: fn(&str) -> bool| -> (usize, usize) {
            let inputs = corpus(target);
            let parsed = inputs
                .iter()
                .filter(|(_, input)| parses(std::str::from_utf8(input).expect("text")))
                .count();
            (parsed, inputs.len() - parsed)
        };
        assert_eq!(
            outcomes("port_spec", |s| PortRequest::parse(s).is_ok()),
            (6, 4)
        );
        assert_eq!(outcomes("size", |s| parse_size_bytes(s).is_ok()), (5, 3));
        assert_eq!(outcomes("duration", |s| parse_duration(s).is_ok()), (9, 2));
    }

    #[test]
    fn dns_query_corpus_and_mutations() {
        run("dns_query", dns_query);
    }

    #[test]
    fn port_spec_corpus_and_mutations() {
        run("port_spec", port_spec);
    }

    #[test]
    fn size_corpus_and_mutations() {
        run("size", size);
    }

    #[test]
    fn duration_corpus_and_mutations() {
        run("duration", duration);
    }
}
