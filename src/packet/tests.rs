//! Decoder tests: every link type, VLAN/QinQ, IPv4 options, IPv6 extension
//! headers, ICMP errors, truncation at every byte, and random input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::packet::LinkType;
use exflow_testkit::{Frame, Link, TcpConversation};

const A4: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);
const B4: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 9);

fn a6() -> Ipv6Addr {
    "2001:db8::1".parse().unwrap()
}
fn b6() -> Ipv6Addr {
    "2001:db8::2:99".parse().unwrap()
}

fn pkt(link: LinkType, frame: &[u8]) -> Packet {
    match decode(link, 7, frame.len() as u32, frame) {
        Ok(Decoded::Packet(p)) => p,
        other => panic!("expected a packet, got {other:?}"),
    }
}

fn tcp(p: &Packet) -> TcpMeta {
    match p.transport {
        Transport::Tcp(t) => t,
        other => panic!("expected TCP, got {other:?}"),
    }
}

fn udp(p: &Packet) -> UdpMeta {
    match p.transport {
        Transport::Udp(u) => u,
        other => panic!("expected UDP, got {other:?}"),
    }
}

fn icmp(p: &Packet) -> IcmpMeta {
    match p.transport {
        Transport::Icmp(i) => i,
        other => panic!("expected ICMP, got {other:?}"),
    }
}

fn payload(frame: &[u8], r: PayloadRef) -> &[u8] {
    &frame[r.offset as usize..(r.offset + r.len) as usize]
}

fn tcp_frame(f: Frame<'_>) -> Vec<u8> {
    f.tcp(40000, 135)
        .flags(tcp_flags::PSH | tcp_flags::ACK)
        .seq(1111)
        .ack(2222)
        .window(512)
        .payload(b"hello exchange")
        .build()
}

fn check_tcp(link: LinkType, frame: &[u8], v6: bool) {
    let p = pkt(link, frame);
    assert_eq!(p.ts, 7);
    assert_eq!(p.wire_len, frame.len() as u32);
    let t = tcp(&p);
    assert_eq!(
        (t.sport, t.dport, t.seq, t.ack, t.window),
        (40000, 135, 1111, 2222, 512)
    );
    assert_eq!(t.flags, tcp_flags::PSH | tcp_flags::ACK);
    assert_eq!(payload(frame, t.payload), b"hello exchange");
    assert_eq!(t.payload.missing, 0);
    if v6 {
        assert_eq!(p.ip.src, IpAddr::V6(a6()));
        assert_eq!(p.ip.dst, IpAddr::V6(b6()));
        assert_eq!(p.ip.ip_id, None);
    } else {
        assert_eq!(p.ip.src, IpAddr::V4(A4));
        assert_eq!(p.ip.dst, IpAddr::V4(B4));
        assert_eq!(p.ip.ip_id, Some(1));
    }
    assert_eq!(p.ip.ttl, 64);
    assert!(!p.ip.reassembled);
    let tuple = p.tuple().unwrap();
    assert_eq!(
        (tuple.proto, tuple.sport, tuple.dport),
        (PROTO_TCP, 40000, 135)
    );
}

#[test]
fn every_link_type_v4_and_v6() {
    for link in Link::ALL {
        let f4 = tcp_frame(Frame::new(link).ipv4(A4, B4));
        check_tcp(LinkType(link.link_type()), &f4, false);
        let f6 = tcp_frame(Frame::new(link).ipv6(a6(), b6()));
        check_tcp(LinkType(link.link_type()), &f6, true);
    }
}

#[test]
fn raw_ip_link_type_aliases() {
    let f4 = tcp_frame(Frame::raw().ipv4(A4, B4));
    let f6 = tcp_frame(Frame::raw().ipv6(a6(), b6()));
    for lt in [12, 14, 101] {
        check_tcp(LinkType(lt), &f4, false);
        check_tcp(LinkType(lt), &f6, true);
    }
    check_tcp(LinkType::IPV4, &f4, false);
    check_tcp(LinkType::IPV6, &f6, true);
    // The dedicated link types insist on their version.
    assert_eq!(decode(LinkType::IPV4, 0, 0, &f6), Err(DecodeError::BadIp));
    assert_eq!(decode(LinkType::IPV6, 0, 0, &f4), Err(DecodeError::BadIp));
    // Raw IP with a bogus version.
    assert_eq!(
        decode(LinkType::RAW, 0, 0, &[0x55; 40]),
        Err(DecodeError::BadIp)
    );
    assert_eq!(
        decode(LinkType::RAW, 0, 0, &[]),
        Err(DecodeError::TruncatedIp)
    );
}

#[test]
fn bsd_null_af_values_in_both_orders() {
    let ip4 = Frame::raw().ipv4(A4, B4).udp(1, 2).build_ip();
    let ip6 = Frame::raw().ipv6(a6(), b6()).udp(1, 2).build_ip();
    for af in [2u32, 24, 28, 30] {
        let ip = if af == 2 { &ip4 } else { &ip6 };
        for hdr in [af.to_le_bytes(), af.to_be_bytes()] {
            let mut f = hdr.to_vec();
            f.extend_from_slice(ip);
            let p = pkt(LinkType::NULL, &f);
            assert_eq!(udp(&p).sport, 1);
            let p = pkt(LinkType::LOOP, &f);
            assert_eq!(udp(&p).dport, 2);
        }
    }
    let mut f = 7u32.to_le_bytes().to_vec(); // AF_UNSPEC-ish / something else
    f.extend_from_slice(&ip4);
    assert_eq!(decode(LinkType::NULL, 0, 0, &f), Err(DecodeError::NotIp));
    assert_eq!(
        decode(LinkType::NULL, 0, 0, &[2, 0]),
        Err(DecodeError::TruncatedLink)
    );
    assert_eq!(
        decode(LinkType::LOOP, 0, 0, &[0, 0, 0]),
        Err(DecodeError::TruncatedLink)
    );
}

#[test]
fn vlan_and_qinq() {
    let cases: Vec<Frame<'_>> = vec![
        Frame::ethernet().vlan(10),
        Frame::ethernet().qinq(100, 10),
        Frame::ethernet().vlan_tpid(0x9100, 5).vlan(6),
        Frame::ethernet()
            .vlan_tpid(0x88a8, 1)
            .vlan_tpid(0x88a8, 2)
            .vlan(3)
            .vlan(4),
        Frame::sll().vlan(42),
        Frame::sll2().vlan(42),
        Frame::sll2().qinq(7, 42),
    ];
    for f in cases {
        let lt = LinkType(f.link_type());
        let v4 = tcp_frame(f.clone().ipv4(A4, B4));
        check_tcp(lt, &v4, false);
        let v6 = tcp_frame(f.ipv6(a6(), b6()));
        check_tcp(lt, &v6, true);
    }
}

#[test]
fn too_many_vlan_tags_is_not_ip() {
    let mut f = vec![0u8; 12];
    for _ in 0..=MAX_VLAN_TAGS + 1 {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
    }
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&Frame::raw().ipv4(A4, B4).udp(1, 2).build_ip());
    assert_eq!(
        decode(LinkType::ETHERNET, 0, 0, &f),
        Err(DecodeError::NotIp)
    );
}

#[test]
fn non_ip_and_unsupported() {
    // ARP
    let mut arp = vec![0xff; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    assert_eq!(
        decode(LinkType::ETHERNET, 0, 0, &arp),
        Err(DecodeError::NotIp)
    );
    // LLDP behind a VLAN tag
    let mut lldp = vec![0x01; 12];
    lldp.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x88, 0xcc, 0, 0]);
    assert_eq!(
        decode(LinkType::ETHERNET, 0, 0, &lldp),
        Err(DecodeError::NotIp)
    );
    // 802.3 length field (STP)
    let mut stp = vec![0x01; 12];
    stp.extend_from_slice(&[0x00, 0x26, 0x42, 0x42, 0x03]);
    assert_eq!(
        decode(LinkType::ETHERNET, 0, 0, &stp),
        Err(DecodeError::NotIp)
    );
    // SLL carrying ARP
    let mut sll = vec![0; 14];
    sll.extend_from_slice(&[0x08, 0x06]);
    assert_eq!(
        decode(LinkType::LINUX_SLL, 0, 0, &sll),
        Err(DecodeError::NotIp)
    );
    let mut sll2 = vec![0x08, 0x06];
    sll2.extend_from_slice(&[0; 18]);
    assert_eq!(
        decode(LinkType::LINUX_SLL2, 0, 0, &sll2),
        Err(DecodeError::NotIp)
    );
    for lt in [105u16, 127, 147, 9999] {
        assert_eq!(
            decode(LinkType(lt), 0, 0, &[0x45; 64]),
            Err(DecodeError::UnsupportedLinkType)
        );
    }
    // Every supported link type is accepted by the decoder.
    for lt in 0..=u16::MAX {
        let r = decode(LinkType(lt), 0, 0, &[]);
        assert_eq!(
            r == Err(DecodeError::UnsupportedLinkType),
            !LinkType(lt).is_supported(),
            "link type {lt}"
        );
    }
}

#[test]
fn ipv4_options_and_ethernet_padding() {
    let opts = [0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01]; // router alert + NOPs
    let f = Frame::ethernet()
        .ipv4(A4, B4)
        .ipv4_options(&opts)
        .udp(5353, 53)
        .payload(b"q")
        .eth_pad(true)
        .build();
    assert_eq!(f.len(), 60);
    let p = pkt(LinkType::ETHERNET, &f);
    let u = udp(&p);
    assert_eq!(u.payload.offset, 14 + 28 + 8);
    assert_eq!(payload(&f, u.payload), b"q");
    assert_eq!(u.payload.missing, 0);

    let f = tcp_frame(Frame::ethernet().ipv4(A4, B4).ipv4_options(&[1; 40]));
    check_tcp(LinkType::ETHERNET, &f, false);
    let t = tcp(&pkt(LinkType::ETHERNET, &f));
    assert_eq!(t.payload.offset, 14 + 60 + 20);

    // TCP options are skipped.
    let f = Frame::ethernet()
        .ipv4(A4, B4)
        .tcp(1, 2)
        .tcp_options(&[2, 4, 5, 0xb4, 1, 3, 3, 7])
        .payload(b"xyz")
        .eth_pad(true)
        .build();
    let t = tcp(&pkt(LinkType::ETHERNET, &f));
    assert_eq!(payload(&f, t.payload), b"xyz");
}

#[test]
fn bad_headers() {
    let good = tcp_frame(Frame::raw().ipv4(A4, B4));
    // IHL < 5
    let mut f = good.clone();
    f[0] = 0x44;
    assert_eq!(decode(LinkType::RAW, 0, 0, &f), Err(DecodeError::BadIp));
    // total length < IHL
    let mut f = good.clone();
    f[2..4].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(decode(LinkType::RAW, 0, 0, &f), Err(DecodeError::BadIp));
    // TCP data offset < 5
    let mut f = good.clone();
    f[20 + 12] = 0x40;
    assert_eq!(
        decode(LinkType::RAW, 0, 0, &f),
        Err(DecodeError::BadTransport)
    );
    // TCP data offset beyond the datagram
    let mut f = good.clone();
    f[20 + 12] = 0xf0;
    assert_eq!(
        decode(LinkType::RAW, 0, 0, &f),
        Err(DecodeError::BadTransport)
    );
    // A datagram too short for its TCP header.
    let mut f = good[..30].to_vec();
    f[2..4].copy_from_slice(&30u16.to_be_bytes());
    assert_eq!(
        decode(LinkType::RAW, 0, 0, &f),
        Err(DecodeError::BadTransport)
    );
    // total length 0 (TSO capture): rest of the frame.
    let mut f = good.clone();
    f[2..4].copy_from_slice(&0u16.to_be_bytes());
    let t = tcp(&pkt(LinkType::RAW, &f));
    assert_eq!(payload(&f, t.payload), b"hello exchange");
}

#[test]
fn other_protocols_are_counted_not_parsed() {
    let f = Frame::raw()
        .ipv4(A4, B4)
        .ip_proto(47)
        .payload(&[0; 8])
        .build();
    assert_eq!(pkt(LinkType::RAW, &f).transport, Transport::Other(47));
    let f = Frame::raw()
        .ipv6(a6(), b6())
        .ip_proto(50)
        .payload(&[0; 16])
        .build();
    assert_eq!(pkt(LinkType::RAW, &f).transport, Transport::Other(50));
    let f = Frame::raw()
        .ipv6(a6(), b6())
        .ipv6_ext(60, &[])
        .ip_proto(59)
        .build();
    assert_eq!(pkt(LinkType::RAW, &f).transport, Transport::Other(59));
}

#[test]
fn snaplen_cut_records_missing() {
    let data = [0xabu8; 100];
    let f = Frame::ethernet()
        .ipv4(A4, B4)
        .tcp(1, 2)
        .payload(&data)
        .build();
    let cut = &f[..14 + 20 + 20 + 30];
    let p = decode(LinkType::ETHERNET, 0, f.len() as u32, cut)
        .unwrap()
        .packet()
        .unwrap();
    assert_eq!(p.wire_len, f.len() as u32);
    let t = tcp(&p);
    assert_eq!(
        t.payload,
        PayloadRef {
            offset: 54,
            len: 30,
            missing: 70
        }
    );

    let f = Frame::ethernet()
        .ipv6(a6(), b6())
        .udp(1, 2)
        .payload(&data)
        .build();
    let cut = &f[..14 + 40 + 8 + 10];
    let u = udp(&decode(LinkType::ETHERNET, 0, 0, cut)
        .unwrap()
        .packet()
        .unwrap());
    assert_eq!(
        u.payload,
        PayloadRef {
            offset: 62,
            len: 10,
            missing: 90
        }
    );

    // UDP length shorter than the IP datagram bounds the payload.
    let mut f = Frame::raw().ipv4(A4, B4).udp(1, 2).payload(&data).build();
    f[24..26].copy_from_slice(&20u16.to_be_bytes());
    let u = udp(&pkt(LinkType::RAW, &f));
    assert_eq!(
        u.payload,
        PayloadRef {
            offset: 28,
            len: 12,
            missing: 0
        }
    );
}

/// Cut a frame at every byte: the right error, or a partial result.
fn truncation_sweep(link: LinkType, f: &[u8], link_len: usize, ip_len: usize, l4_len: usize) {
    let full_payload = f.len() - link_len - ip_len - l4_len;
    for cut in 0..=f.len() {
        let r = decode(link, 0, f.len() as u32, &f[..cut]);
        if cut < link_len {
            assert_eq!(r, Err(DecodeError::TruncatedLink), "cut {cut}");
        } else if cut < link_len + ip_len {
            assert_eq!(r, Err(DecodeError::TruncatedIp), "cut {cut}");
        } else if cut < link_len + ip_len + l4_len {
            assert_eq!(r, Err(DecodeError::TruncatedTransport), "cut {cut}");
        } else {
            let p = r.unwrap().packet().unwrap();
            let pl = p.payload().unwrap();
            let have = cut - link_len - ip_len - l4_len;
            assert_eq!(pl.len as usize, have, "cut {cut}");
            assert_eq!(pl.missing as usize, full_payload - have, "cut {cut}");
        }
    }
}

#[test]
fn truncation_at_every_byte() {
    let data: Vec<u8> = (0..50).collect();
    let f = Frame::ethernet()
        .ipv4(A4, B4)
        .tcp(1, 2)
        .payload(&data)
        .build();
    truncation_sweep(LinkType::ETHERNET, &f, 14, 20, 20);
    let f = Frame::ethernet()
        .qinq(1, 2)
        .ipv4(A4, B4)
        .ipv4_options(&[1; 8])
        .tcp(1, 2)
        .tcp_options(&[1; 12])
        .payload(&data)
        .build();
    truncation_sweep(LinkType::ETHERNET, &f, 22, 28, 32);
    let f = Frame::sll2()
        .ipv6(a6(), b6())
        .ipv6_ext(0, &[0; 6])
        .tcp(1, 2)
        .payload(&data)
        .build();
    truncation_sweep(LinkType::LINUX_SLL2, &f, 20, 48, 20);
    let f = Frame::sll().ipv4(A4, B4).udp(1, 2).payload(&data).build();
    truncation_sweep(LinkType::LINUX_SLL, &f, 16, 20, 8);
    let f = Frame::null()
        .ipv6(a6(), b6())
        .udp(1, 2)
        .payload(&data)
        .build();
    truncation_sweep(LinkType::NULL, &f, 4, 40, 8);
}

#[test]
fn ipv6_extension_headers() {
    // hop-by-hop, destination options, routing, destination options
    let f = tcp_frame(
        Frame::ethernet()
            .ipv6(a6(), b6())
            .ipv6_ext(0, &[1, 4, 0, 0, 0, 0])
            .ipv6_ext(60, &[1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .ipv6_ext(43, &[0, 0, 0, 0, 0, 0])
            .ipv6_ext(60, &[]),
    );
    check_tcp(LinkType::ETHERNET, &f, true);
    let t = tcp(&pkt(LinkType::ETHERNET, &f));
    assert_eq!(t.payload.offset, 14 + 40 + 8 + 16 + 8 + 8 + 20);

    // An atomic fragment (offset 0, M = 0) is just skipped.
    let mut ip = Frame::raw()
        .ipv6(a6(), b6())
        .udp(7, 8)
        .payload(b"atomic")
        .build_ip();
    let dgram = exflow_testkit::ipv6_fragment(&ip, 0, 1000, false, 77);
    let p = pkt(LinkType::RAW, &dgram);
    assert_eq!(payload(&dgram, udp(&p).payload), b"atomic");

    // AH (next header 51): length in 4-byte units + 2.
    let mut ah = ip[..40].to_vec();
    ah[6] = 51;
    ah.extend_from_slice(&[
        17, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    ah.extend_from_slice(&ip[40..]);
    let plen = (ah.len() - 40) as u16;
    ah[4..6].copy_from_slice(&plen.to_be_bytes());
    let p = pkt(LinkType::RAW, &ah);
    assert_eq!(payload(&ah, udp(&p).payload), b"atomic");

    // An extension header running past the payload length is bad.
    ip[6] = 0;
    ip[41] = 200;
    assert_eq!(
        decode(LinkType::RAW, 0, 0, &ip),
        Err(DecodeError::BadIpv6Extension)
    );

    // A chain longer than the limit.
    let mut long = Frame::raw().ipv6(a6(), b6());
    for _ in 0..=MAX_IPV6_EXT_HEADERS {
        long = long.ipv6_ext(60, &[]);
    }
    let f = long.udp(1, 2).build();
    assert_eq!(
        decode(LinkType::RAW, 0, 0, &f),
        Err(DecodeError::BadIpv6Extension)
    );

    // Jumbogram: payload length 0 with hop-by-hop → rest of frame.
    let mut j = Frame::raw()
        .ipv6(a6(), b6())
        .ipv6_ext(0, &[0xc2, 4, 0, 0, 0, 0])
        .udp(1, 2)
        .payload(b"jumbo")
        .build();
    j[4..6].copy_from_slice(&[0, 0]);
    let u = udp(&pkt(LinkType::RAW, &j));
    assert_eq!(payload(&j, u.payload), b"jumbo");
}

fn check_quote(
    frame: &[u8],
    v6: bool,
    icmp_type: u8,
    code: u8,
    orig: &FiveTuple,
    seq: Option<u32>,
) {
    let p = pkt(LinkType::ETHERNET, frame);
    let i = icmp(&p);
    assert_eq!((i.v6, i.icmp_type, i.code), (v6, icmp_type, code));
    let q = i.quoted.expect("quoted flow");
    assert_eq!(&q.tuple, orig);
    assert_eq!(q.tcp_seq, seq);
    assert!(p.tuple().is_none());
}

#[test]
fn icmpv4_errors_quote_tcp_and_udp() {
    let router = Ipv4Addr::new(172, 16, 0, 1);
    let orig_tcp = Frame::raw()
        .ipv4(A4, B4)
        .tcp(50000, 443)
        .seq(0xdeadbeef)
        .flags(tcp_flags::SYN)
        .build_ip();
    let orig_udp = Frame::raw()
        .ipv4(A4, B4)
        .udp(5000, 53)
        .payload(b"query")
        .build_ip();
    let t_tuple = FiveTuple {
        proto: PROTO_TCP,
        src: A4.into(),
        dst: B4.into(),
        sport: 50000,
        dport: 443,
    };
    let u_tuple = FiveTuple {
        proto: PROTO_UDP,
        src: A4.into(),
        dst: B4.into(),
        sport: 5000,
        dport: 53,
    };
    for (ty, code) in [(3u8, 13u8), (3, 3), (3, 1), (4, 0), (11, 0), (12, 0)] {
        for quote_len in [28usize, orig_tcp.len()] {
            let f = Frame::ethernet()
                .ipv4(router, A4)
                .icmp_error(ty, code, &orig_tcp[..quote_len])
                .build();
            check_quote(&f, false, ty, code, &t_tuple, Some(0xdeadbeef));
        }
        let f = Frame::ethernet()
            .ipv4(router, A4)
            .icmp_error(ty, code, &orig_udp)
            .build();
        check_quote(&f, false, ty, code, &u_tuple, None);
        // Quote cut after the ports: tuple yes, sequence no.
        let f = Frame::ethernet()
            .ipv4(router, A4)
            .icmp_error(ty, code, &orig_tcp[..24])
            .build();
        check_quote(&f, false, ty, code, &t_tuple, None);
    }
    // dest-unreachable through the dedicated helper.
    let f = Frame::ethernet()
        .ipv4(router, A4)
        .icmp_unreachable(10, &orig_tcp[..28])
        .build();
    check_quote(&f, false, 3, 10, &t_tuple, Some(0xdeadbeef));
}

#[test]
fn icmpv6_errors_quote_tcp_and_udp() {
    let router: Ipv6Addr = "2001:db8:ffff::1".parse().unwrap();
    let orig_tcp = Frame::raw()
        .ipv6(a6(), b6())
        .tcp(50000, 443)
        .seq(77)
        .build_ip();
    let orig_udp = Frame::raw()
        .ipv6(a6(), b6())
        .ipv6_ext(60, &[])
        .udp(5000, 53)
        .build_ip();
    let t_tuple = FiveTuple {
        proto: PROTO_TCP,
        src: a6().into(),
        dst: b6().into(),
        sport: 50000,
        dport: 443,
    };
    let u_tuple = FiveTuple {
        proto: PROTO_UDP,
        src: a6().into(),
        dst: b6().into(),
        sport: 5000,
        dport: 53,
    };
    for (ty, code) in [(1u8, 4u8), (1, 1), (2, 0), (3, 0), (4, 1)] {
        let f = Frame::ethernet()
            .ipv6(router, a6())
            .icmp_error(ty, code, &orig_tcp)
            .build();
        check_quote(&f, true, ty, code, &t_tuple, Some(77));
        let f = Frame::ethernet()
            .ipv6(router, a6())
            .icmp_error(ty, code, &orig_udp)
            .build();
        check_quote(&f, true, ty, code, &u_tuple, None);
    }
    let f = Frame::ethernet()
        .ipv6(router, a6())
        .icmp_unreachable(1, &orig_tcp)
        .build();
    check_quote(&f, true, 1, 1, &t_tuple, Some(77));
}

#[test]
fn garbage_quotes_do_not_fail_the_packet() {
    let router = Ipv4Addr::new(172, 16, 0, 1);
    let orig = Frame::raw().ipv4(A4, B4).tcp(1, 2).build_ip();
    let mut nonfirst = orig.clone();
    nonfirst[6..8].copy_from_slice(&0x0010u16.to_be_bytes());
    let mut bad_ihl = orig.clone();
    bad_ihl[0] = 0x43;
    let icmp_quote = Frame::raw().ipv4(A4, B4).icmp(8, 0, [0; 4], &[]).build_ip();
    let quotes: Vec<&[u8]> = vec![
        &[],
        &orig[..10],
        &orig[..21],
        &[0xff; 40],
        &nonfirst,
        &bad_ihl,
        &icmp_quote,
    ];
    for q in quotes {
        let f = Frame::raw().ipv4(router, A4).icmp_unreachable(3, q).build();
        let i = icmp(&pkt(LinkType::RAW, &f));
        assert_eq!(i.quoted, None);
        assert_eq!((i.icmp_type, i.code), (3, 3));
    }
    // Not an error type: no quote even with a valid-looking body.
    let f = Frame::raw()
        .ipv4(router, A4)
        .icmp(8, 0, [0, 1, 0, 1], &orig)
        .build();
    assert_eq!(icmp(&pkt(LinkType::RAW, &f)).quoted, None);
    let f = Frame::raw()
        .ipv6(a6(), b6())
        .icmp(128, 0, [0; 4], &orig)
        .build();
    let i = icmp(&pkt(LinkType::RAW, &f));
    assert!(i.v6 && i.quoted.is_none());
    // Truncated ICMP header.
    let f = Frame::raw()
        .ipv4(router, A4)
        .icmp_unreachable(3, &[])
        .build();
    assert_eq!(
        decode(LinkType::RAW, 0, 100, &f[..25]),
        Err(DecodeError::TruncatedTransport)
    );
}

#[test]
fn fragments_are_returned_as_fragments() {
    let data = [7u8; 64];
    let frames = Frame::ethernet()
        .ipv4(A4, B4)
        .ip_id(0x4242)
        .udp(1, 2)
        .payload(&data)
        .build_fragments(3);
    assert_eq!(frames.len(), 3);
    let mut offsets = vec![];
    for f in &frames {
        let frag = decode(LinkType::ETHERNET, 1, f.len() as u32, f)
            .unwrap()
            .fragment()
            .unwrap();
        assert!(!frag.v6);
        assert_eq!(frag.id, 0x4242);
        assert_eq!(frag.proto, PROTO_UDP);
        assert_eq!(frag.header.len(), 20);
        offsets.push((frag.offset, frag.more, frag.data.len()));
    }
    assert_eq!(
        offsets,
        vec![(0, true, 24), (24, true, 24), (48, false, 24)]
    );

    let frames = Frame::sll()
        .ipv6(a6(), b6())
        .ipv6_ext(0, &[1, 4, 0, 0, 0, 0])
        .ip_id(9)
        .tcp(1, 2)
        .payload(&data)
        .build_fragments(2);
    let frag = decode(LinkType::LINUX_SLL, 1, 0, &frames[1])
        .unwrap()
        .fragment()
        .unwrap();
    assert!(frag.v6 && !frag.more);
    assert_eq!((frag.id, frag.proto, frag.offset), (9, PROTO_TCP, 48));
    assert_eq!(frag.header.len(), 48);
    assert_eq!(frag.next_header_at, 40);
}

#[test]
fn agrees_with_etherparse() {
    let mut conv = TcpConversation::new(A4.into(), 50123, B4.into(), 445);
    let frames = vec![
        conv.syn(),
        conv.syn_ack(),
        conv.ack(),
        conv.data_c2s(b"negotiate"),
        conv.data_s2c(b"response!!"),
        conv.fin_c(),
        conv.rst_s(),
    ];
    for f in frames {
        let ours = tcp(&pkt(LinkType::ETHERNET, &f));
        let theirs = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::TransportSlice::Tcp(t)) = theirs.transport else {
            panic!()
        };
        assert_eq!(
            (ours.sport, ours.dport, ours.seq, ours.ack, ours.window),
            (
                t.source_port(),
                t.destination_port(),
                t.sequence_number(),
                t.acknowledgment_number(),
                t.window_size()
            )
        );
        assert_eq!(payload(&f, ours.payload), t.payload());
    }
}

fn link_types() -> impl Strategy<Value = LinkType> {
    prop_oneof![
        Just(LinkType::NULL),
        Just(LinkType::ETHERNET),
        Just(LinkType::RAW),
        Just(LinkType(12)),
        Just(LinkType(14)),
        Just(LinkType::LOOP),
        Just(LinkType::LINUX_SLL),
        Just(LinkType::IPV4),
        Just(LinkType::IPV6),
        Just(LinkType::LINUX_SLL2),
        any::<u16>().prop_map(LinkType),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(link in link_types(), bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let r = decode(link, 0, bytes.len() as u32, &bytes);
        if let Ok(Decoded::Packet(p)) = r {
            if let Some(pl) = p.payload() {
                prop_assert!((pl.offset + pl.len) as usize <= bytes.len());
            }
        }
        let _ = decode_ip(0, 0, &bytes);
        let _ = quoted_flow(&bytes);
    }

    /// Random mutations of valid frames reach deeper than random bytes.
    #[test]
    fn mutated_frames_never_panic(
        which in 0usize..8,
        muts in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8),
        cut in any::<u16>(),
    ) {
        let orig = Frame::raw().ipv4(A4, B4).tcp(1, 2).seq(5).build_ip();
        let orig6 = Frame::raw().ipv6(a6(), b6()).udp(1, 2).build_ip();
        let base = match which {
            0 => tcp_frame(Frame::ethernet().qinq(1, 2).ipv4(A4, B4).ipv4_options(&[1; 4])),
            1 => tcp_frame(Frame::sll2().ipv6(a6(), b6()).ipv6_ext(0, &[0; 6]).ipv6_ext(43, &[0; 6])),
            2 => Frame::sll().ipv4(A4, B4).icmp_unreachable(3, &orig).build(),
            3 => Frame::null().ipv6(a6(), b6()).icmp_unreachable(4, &orig6).build(),
            4 => Frame::ethernet().ipv4(A4, B4).udp(1, 2).payload(&[0; 40]).build_fragments(2).remove(0),
            5 => Frame::ethernet().ipv6(a6(), b6()).udp(1, 2).payload(&[0; 40]).build_fragments(2).remove(1),
            6 => Frame::loopback().ipv6(a6(), b6()).ipv6_ext(60, &[0; 14]).tcp(1, 2).build(),
            _ => Frame::raw().ipv4(A4, B4).udp(1, 2).payload(b"x").build(),
        };
        let lt = [LinkType::ETHERNET, LinkType::LINUX_SLL2, LinkType::LINUX_SLL, LinkType::NULL, LinkType::ETHERNET, LinkType::ETHERNET, LinkType::LOOP, LinkType::RAW][which];
        let mut f = base;
        for (at, v) in muts {
            let n = f.len();
            f[at as usize % n] = v;
        }
        let cut = (cut as usize) % (f.len() + 1);
        let r = decode(lt, 0, f.len() as u32, &f[..cut]);
        if let Ok(Decoded::Packet(p)) = r {
            if let Some(pl) = p.payload() {
                prop_assert!((pl.offset + pl.len) as usize <= cut);
            }
        }
    }
}

/// `cargo test --release -- --ignored --nocapture throughput` prints rates.
#[test]
#[ignore]
fn throughput() {
    use std::time::Instant;
    let frames: Vec<Vec<u8>> = (0..1024u32)
        .map(|i| {
            let f = Frame::ethernet();
            let f = if i % 4 == 0 { f.vlan(10) } else { f };
            if i % 3 == 0 {
                f.ipv6(a6(), b6())
                    .udp(1000 + i as u16, 53)
                    .payload(&[0; 64])
                    .build()
            } else {
                f.ipv4(A4, B4)
                    .tcp(1000 + i as u16, 445)
                    .seq(i)
                    .payload(&[0; 100])
                    .build()
            }
        })
        .collect();
    let n = 20_000_000usize;
    let start = Instant::now();
    let mut acc = 0u64;
    for i in 0..n {
        let f = &frames[i & 1023];
        if let Ok(Decoded::Packet(p)) = decode(LinkType::ETHERNET, i as u64, f.len() as u32, f) {
            acc = acc.wrapping_add(p.payload().map_or(0, |p| p.len as u64));
        }
    }
    let dt = start.elapsed();
    eprintln!(
        "decode: {:.1} Mpps (acc {acc})",
        n as f64 / dt.as_secs_f64() / 1e6
    );

    let start = Instant::now();
    let mut w = exflow_testkit::PcapWriter::new(
        std::io::BufWriter::new(std::io::sink()),
        Link::Ethernet,
        65535,
        true,
    )
    .unwrap();
    let mut buf = Vec::with_capacity(256);
    let m = 5_000_000u32;
    for i in 0..m {
        buf.clear();
        Frame::ethernet()
            .ipv4(A4, B4)
            .tcp(40000, 135)
            .seq(i)
            .payload(&[0; 100])
            .build_into(&mut buf);
        w.write_packet(i as u64 * 1000, &buf).unwrap();
    }
    let dt = start.elapsed();
    eprintln!("synth+write: {:.1} Mpps", m as f64 / dt.as_secs_f64() / 1e6);
}

// The test kit's frames, checked here against etherparse and exflow's own
// decoder (the kit does not depend on exflow).

/// Verifies every checksum in an IP datagram with etherparse.
fn etherparse_checksums_ok(ip: &[u8]) {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let s = SlicedPacket::from_ip(ip).expect("etherparse slices it");
    match s.net.expect("net layer") {
        NetSlice::Ipv4(v4) => {
            let h = v4.header().to_header();
            assert_eq!(h.calc_header_checksum(), h.header_checksum);
            match s.transport.expect("transport") {
                TransportSlice::Tcp(t) => assert_eq!(
                    t.calc_checksum_ipv4(h.source, h.destination).unwrap(),
                    t.checksum()
                ),
                TransportSlice::Udp(u) => assert_eq!(
                    u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap(),
                    u.checksum()
                ),
                TransportSlice::Icmpv4(i) => {
                    assert_eq!(i.icmp_type().calc_checksum(i.payload()), i.checksum())
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        NetSlice::Ipv6(v6) => {
            let h = v6.header().to_header();
            match s.transport.expect("transport") {
                TransportSlice::Tcp(t) => {
                    assert_eq!(
                        t.calc_checksum_ipv6(h.source, h.destination).unwrap(),
                        t.checksum()
                    )
                }
                TransportSlice::Udp(u) => assert_eq!(
                    u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap(),
                    u.checksum()
                ),
                TransportSlice::Icmpv6(i) => assert_eq!(
                    i.icmp_type()
                        .calc_checksum(h.source, h.destination, i.payload())
                        .unwrap(),
                    i.checksum()
                ),
                other => panic!("unexpected {other:?}"),
            }
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn every_builder_has_valid_checksums_per_etherparse() {
    for link in Link::ALL {
        for f in exflow_testkit::samples(link) {
            // Strip the link layer with our decoder's view of it.
            let hdr = match link {
                Link::Ethernet => 14,
                Link::Sll => 16,
                Link::Sll2 => 20,
                Link::Raw => 0,
                _ => 4,
            };
            etherparse_checksums_ok(&f[hdr..]);
            assert!(matches!(
                decode(LinkType(link.link_type()), 0, f.len() as u32, &f),
                Ok(Decoded::Packet(_))
            ));
        }
    }
    let f = Frame::ethernet().vlan(5).ipv4(A4, B4).udp(1, 2).build();
    etherparse_checksums_ok(&f[18..]);
    let f = Frame::ethernet()
        .qinq(5, 6)
        .ipv6(a6(), b6())
        .tcp(1, 2)
        .build();
    etherparse_checksums_ok(&f[22..]);
    // etherparse agrees about VLAN framing.
    let s = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
    assert_eq!(s.vlan_ids().len(), 2);
}

#[test]
fn tcp_conversation_tracks_sequence_numbers() {
    let mut c = TcpConversation::with_isn(A4.into(), 50000, B4.into(), 445, 100, 9000);
    let seg = |f: &[u8]| match decode(LinkType::ETHERNET, 0, 0, f).unwrap() {
        Decoded::Packet(p) => match p.transport {
            Transport::Tcp(t) => (p.ip.src, t.seq, t.ack, t.flags, t.payload.len),
            _ => panic!(),
        },
        _ => panic!(),
    };
    use tcp_flags::*;
    let (ca, sa) = (IpAddr::V4(A4), IpAddr::V4(B4));
    assert_eq!(seg(&c.syn()), (ca, 100, 0, SYN, 0));
    assert_eq!(seg(&c.syn_ack()), (sa, 9000, 101, SYN | ACK, 0));
    assert_eq!(seg(&c.ack()), (ca, 101, 9001, ACK, 0));
    assert_eq!(seg(&c.data_c2s(b"hello")), (ca, 101, 9001, PSH | ACK, 5));
    assert_eq!(seg(&c.data_s2c(b"hi")), (sa, 9001, 106, PSH | ACK, 2));
    assert_eq!(seg(&c.ack()), (ca, 106, 9003, ACK, 0));
    assert_eq!(seg(&c.fin_c()), (ca, 106, 9003, FIN | ACK, 0));
    assert_eq!(seg(&c.ack_s()), (sa, 9003, 107, ACK, 0));
    assert_eq!(seg(&c.fin_s()), (sa, 9003, 107, FIN | ACK, 0));
    assert_eq!(seg(&c.ack()), (ca, 107, 9004, ACK, 0));
    assert_eq!(seg(&c.rst_c()), (ca, 107, 9004, RST | ACK, 0));
    assert_eq!(seg(&c.rst_s()), (sa, 9004, 107, RST | ACK, 0));
    // A4 forged reset with a different TTL, via the customizable builder.
    let forged = c.s2c().ttl(250).flags(RST).build();
    let p = decode(LinkType::ETHERNET, 0, 0, &forged)
        .unwrap()
        .packet()
        .unwrap();
    assert_eq!(p.ip.ttl, 250);
    // Sequence numbers wrap.
    let mut w = TcpConversation::with_isn(A4.into(), 1, B4.into(), 2, u32::MAX, 0).link(Link::Raw);
    w.syn();
    assert_eq!(seg_raw(&w.data_c2s(b"x")), 0);
    assert_eq!(w.next_c, 1);
}

fn seg_raw(f: &[u8]) -> u32 {
    match decode(LinkType::RAW, 0, 0, f)
        .unwrap()
        .packet()
        .unwrap()
        .transport
    {
        Transport::Tcp(t) => t.seq,
        _ => panic!(),
    }
}
