//! The frame a connection's first packet would have been, for
//! [`super::applied`] to run through the filters a capture was taken with:
//! a TCP SYN (as Windows sends it: MSS, NOP, window scale, NOP, NOP,
//! SACK-permitted) or a UDP datagram from the client to the server, in one
//! link type. Link-layer details of the real packet are not known: the
//! MAC addresses are made up, there is no VLAN tag, IP ID 1 and TTL 64.
//! Checksums are valid, so a filter on them sees a real packet's.

use std::net::{IpAddr, SocketAddr};

use super::LinkType;
use crate::packet::defrag::ipv4_checksum;
use crate::packet::{tcp_flags, PROTO_TCP, PROTO_UDP};

const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const SYN_OPTIONS: [u8; 12] = [2, 4, 5, 180, 1, 3, 3, 8, 1, 1, 4, 2];
const TTL: u8 = 64;

/// The link type a probe for frames of `link` is built in, and a filter
/// applied to them compiled for: `link` itself, or Ethernet for one the
/// probe cannot frame.
pub(super) fn probe_link(link: LinkType) -> LinkType {
    match link {
        LinkType::ETHERNET | LinkType::LINUX_SLL | LinkType::LINUX_SLL2 => link,
        LinkType::NULL | LinkType::LOOP => link,
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 | LinkType(12) | LinkType(14) => link,
        _ => LinkType::ETHERNET,
    }
}

/// The first packet of a connection `from` a client `to` a server (a UDP
/// datagram for `proto` 17, else a TCP SYN), framed in `link` (one
/// [`probe_link`] returns). Both addresses must be of one family.
pub(super) fn first_packet(link: LinkType, proto: u8, from: SocketAddr, to: SocketAddr) -> Vec<u8> {
    let v6 = to.is_ipv6();
    let ports = [from.port().to_be_bytes(), to.port().to_be_bytes()].concat();
    let (proto, mut seg, csum_at) = if proto == PROTO_UDP {
        // Length 8, checksum.
        (PROTO_UDP, [&ports[..], &[0, 8, 0, 0]].concat(), 6)
    } else {
        // Sequence number 1, no ACK, 32-byte header, SYN, window 64240,
        // checksum, urgent pointer, options.
        let head = [0, 0, 0, 1, 0, 0, 0, 0, 0x80, tcp_flags::SYN, 0xfa, 0xf0];
        (
            PROTO_TCP,
            [&ports[..], &head, &[0; 4], &SYN_OPTIONS].concat(),
            16,
        )
    };
    let (src, dst) = (octets(from.ip()), octets(to.ip()));
    let len = seg.len() as u16;
    // The transport checksum, over the pseudo-header and the segment.
    let pseudo: Vec<u8> = if v6 {
        [
            &src[..],
            &dst,
            &(len as u32).to_be_bytes(),
            &[0, 0, 0, proto],
        ]
        .concat()
    } else {
        [&src[..], &dst, &[0, proto], &len.to_be_bytes()].concat()
    };
    let csum = match ipv4_checksum(&[pseudo, seg.clone()].concat()) {
        0 if proto == PROTO_UDP => 0xffff, // 0 would mean "no checksum"
        c => c,
    };
    seg[csum_at..csum_at + 2].copy_from_slice(&csum.to_be_bytes());

    let mut frame = link_header(link, v6);
    let ip = frame.len();
    if v6 {
        frame.extend_from_slice(&[0x60, 0, 0, 0]);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&[proto, TTL]);
    } else {
        frame.extend_from_slice(&[0x45, 0]);
        frame.extend_from_slice(&(20 + len).to_be_bytes());
        frame.extend_from_slice(&[0, 1, 0, 0, TTL, proto, 0, 0]); // ID 1
    }
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&dst);
    if !v6 {
        let c = ipv4_checksum(&frame[ip..]);
        frame[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
    }
    frame.extend_from_slice(&seg);
    frame
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The link-layer header of an IPv4 (or IPv6) packet.
fn link_header(link: LinkType, v6: bool) -> Vec<u8> {
    let ethertype: &[u8] = if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] };
    let af: u32 = if v6 { 30 } else { 2 };
    match link {
        LinkType::ETHERNET => [&DST_MAC[..], &SRC_MAC, ethertype].concat(),
        // Sent to us, ARPHRD_ETHER, a 6-byte address (padded to 8).
        LinkType::LINUX_SLL => [&[0, 0, 0, 1, 0, 6][..], &SRC_MAC, &[0, 0], ethertype].concat(),
        // Reserved, interface 1, ARPHRD_ETHER, to us, a 6-byte address.
        LinkType::LINUX_SLL2 => [
            ethertype,
            &[0, 0, 0, 0, 0, 1, 0, 1, 0, 6],
            &SRC_MAC,
            &[0, 0],
        ]
        .concat(),
        // BSD loopback: the AF in the capturing host's byte order (taken
        // as this host's, where the filter is compiled); OpenBSD's in
        // network order.
        LinkType::NULL => af.to_ne_bytes().to_vec(),
        LinkType::LOOP => af.to_be_bytes().to_vec(),
        // Raw IP: the other link types probe_link passes.
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use exflow_testkit::{Frame, Link};

    use super::*;

    /// The probe is the frame the test kit's builder makes of the same
    /// packet (the builder exflow used for it before the kit left the
    /// library), byte for byte, in every link type and family.
    #[test]
    fn the_probe_is_the_test_kits_frame_of_the_same_packet() {
        let null = if cfg!(target_endian = "big") {
            Link::NullBigEndian
        } else {
            Link::Null
        };
        let links = [
            (LinkType::ETHERNET, Link::Ethernet),
            (LinkType::LINUX_SLL, Link::Sll),
            (LinkType::LINUX_SLL2, Link::Sll2),
            (LinkType::RAW, Link::Raw),
            (LinkType::IPV4, Link::Raw),
            (LinkType::IPV6, Link::Raw),
            (LinkType(12), Link::Raw),
            (LinkType::NULL, null),
            (LinkType::LOOP, Link::Loop),
        ];
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        let pairs = [
            (sa("192.0.2.10:1040"), sa("198.51.100.10:1029")),
            (sa("[2001:db8::1]:49700"), sa("[2001:db8::2]:135")),
            (sa("0.0.0.0:65535"), sa("198.51.100.10:0")),
            (sa("[::]:1"), sa("[2001:db8::2]:55000")),
        ];
        for (link, kit) in links {
            assert_eq!(probe_link(link), link);
            for (client, server) in pairs {
                let f = Frame::new(kit).ip(client.ip(), server.ip());
                let want = f
                    .clone()
                    .tcp(client.port(), server.port())
                    .flags(tcp_flags::SYN)
                    .seq(1)
                    .window(64240)
                    .tcp_options(&SYN_OPTIONS)
                    .build();
                let got = first_packet(link, PROTO_TCP, client, server);
                assert_eq!(got, want, "{link} {client} {server}");
                let want = f.udp(client.port(), server.port()).build();
                let got = first_packet(link, PROTO_UDP, client, server);
                assert_eq!(got, want, "{link} {client} {server} udp");
            }
        }
        assert_eq!(probe_link(LinkType(147)), LinkType::ETHERNET);
    }
}
