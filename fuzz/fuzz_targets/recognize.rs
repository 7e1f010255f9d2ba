//! The payload recognizers: the first bytes of each side of a TCP
//! connection (`recognize_tcp`), and the first datagram of each side of a
//! UDP flow with its ports, mostly well-known ones (`recognize_udp`), the
//! input cut in two at a place it names; and the RPC proxy request line
//! (`parse_proxy_request`, #24). No panic on any input.
#![no_main]
use exflow::proto::recognize::{recognize_tcp, recognize_udp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let split = usize::from(data[0]).min(data.len() - 5);
    let ports = [data[1], data[2], data[3], data[4]];
    let rest = &data[5..];
    let (a, b) = rest.split_at(split.min(rest.len()));
    let _ = recognize_tcp(a, b);
    let _ = recognize_tcp(b, a);
    let _ = recognize_tcp(rest, &[]);
    let _ = recognize_tcp(&[], rest);
    let _ = exflow::proto::rpch::parse_proxy_request(rest);
    // Ports: mostly the well-known ones the UDP recognizers look for.
    let port = |x: u8, y: u8| match x % 4 {
        0 => [53, 88, 123, 137, 138, 389, 464, 135][usize::from(y % 8)],
        _ => u16::from_le_bytes([x, y]),
    };
    let _ = recognize_udp(a, b, port(ports[0], ports[1]), port(ports[2], ports[3]));
});
