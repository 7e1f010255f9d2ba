//! Floods of #23, shared by `tests/hostile_fragments.rs`,
//! `tests/hostile_icmp.rs` and `benches/hostile_floods.rs`: first fragments
//! never completed, and ICMP errors quoting flows that never existed, each
//! followed by the real thing (a datagram completed, an error quoting a
//! real flow).

use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use exflow_testkit::{Frame, Link, PcapWriter};

const T0: u64 = 1_795_305_697_000_000_000;
pub const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub const REAL_CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

fn flooder(k: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, (k >> 16) as u8, (k >> 8) as u8, k as u8)
}

/// `n` IPv4 first fragments of UDP datagrams to port 53, each a new
/// reassembly (distinct source and id), 1 µs apart; then a datagram from
/// [`REAL_CLIENT`] in two fragments, both sent.
pub fn write_fragments(path: &Path, n: u32) -> io::Result<()> {
    let mut w = PcapWriter::create(path, Link::Ethernet, 65535, false)?;
    let payload = [0x42u8; 64];
    let mut t = T0;
    for k in 0..n {
        let frags = Frame::ethernet()
            .ipv4(flooder(k), SERVER)
            .ip_id(k as u16)
            .udp(40000, 53)
            .payload(&payload)
            .build_fragments(2);
        w.write_packet(t, &frags[0])?;
        t += 1_000;
    }
    let real = Frame::ethernet()
        .ipv4(REAL_CLIENT, SERVER)
        .ip_id(7)
        .udp(40001, 53)
        .payload(&payload)
        .build_fragments(2);
    for f in &real {
        w.write_packet(t, f)?;
        t += 1_000;
    }
    w.flush()
}

/// `n` ICMP unreachables (code 13) from [`ROUTER`], each quoting a UDP
/// datagram to port 135 of a flow never seen, 1 µs apart (line rate for
/// 70-byte frames at ~0.5 Gb/s); then a datagram from [`REAL_CLIENT`] and,
/// 1 s later, an error quoting it.
pub fn write_icmp(path: &Path, n: u32) -> io::Result<()> {
    let mut w = PcapWriter::create(path, Link::Ethernet, 65535, false)?;
    let mut t = T0;
    for k in 0..n {
        let quoted = Frame::ethernet()
            .ipv4(flooder(k), SERVER)
            .udp(1024 + (k % 60_000) as u16, 135)
            .payload(&[0; 8])
            .build_ip();
        let e = Frame::ethernet()
            .ipv4(ROUTER, flooder(k))
            .icmp_unreachable(13, &quoted)
            .build();
        w.write_packet(t, &e)?;
        t += 1_000;
    }
    let d = Frame::ethernet()
        .ipv4(REAL_CLIENT, SERVER)
        .udp(40000, 135)
        .payload(&[0; 8]);
    w.write_packet(t, &d.build())?;
    let e = Frame::ethernet()
        .ipv4(ROUTER, REAL_CLIENT)
        .icmp_unreachable(13, &d.build_ip())
        .build();
    w.write_packet(t + 1_000_000, &e)?;
    w.flush()
}
