//! The kit read back by tshark: every link type, truncation, VLAN tags,
//! timestamps, pcapng interfaces and fragments.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{samples, Frame, Link, PcapWriter, PcapngWriter};

const A: Ipv4Addr = Ipv4Addr::new(10, 9, 8, 7);
const B: Ipv4Addr = Ipv4Addr::new(10, 9, 8, 6);
const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7);
const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 6);

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("exflow-testkit-{}-{name}", std::process::id()))
}

fn have_tshark() -> bool {
    Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One line per frame, fields tab-separated.
fn tshark(path: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(path);
    for p in [
        "ip.check_checksum:TRUE",
        "tcp.check_checksum:TRUE",
        "udp.check_checksum:TRUE",
    ] {
        cmd.args(["-o", p]);
    }
    cmd.args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

#[test]
fn pcap_every_link_type_read_back_by_tshark() {
    if !have_tshark() {
        eprintln!("tshark not installed; skipping");
        return;
    }
    for (i, link) in [
        Link::Ethernet,
        Link::Sll,
        Link::Sll2,
        Link::Raw,
        Link::Null,
        Link::Loop,
    ]
    .into_iter()
    .enumerate()
    {
        let path = tmp(&format!("link{i}.pcap"));
        let mut w = PcapWriter::create(&path, link, 65535, i % 2 == 0).unwrap();
        let frames = samples(link);
        for (n, f) in frames.iter().enumerate() {
            w.write_packet(1_700_000_000_000_000_000 + n as u64 * 1000, f)
                .unwrap();
        }
        assert_eq!(w.packets(), frames.len() as u64);
        w.into_inner().unwrap();
        let rows = tshark(
            &path,
            &[
                "frame.len",
                "ip.checksum.status",
                "tcp.checksum.status",
                "udp.checksum.status",
                "icmp.checksum.status",
                "icmpv6.checksum.status",
                "tcp.srcport",
                "udp.srcport",
                "ip.ttl",
                "icmp.type",
                "icmpv6.type",
            ],
        );
        assert_eq!(rows.len(), frames.len(), "{link:?}");
        for (row, f) in rows.iter().zip(&frames) {
            assert_eq!(row[0], f.len().to_string(), "{link:?} {row:?}");
            // The first checksum field present for each layer is good (1).
            for c in &row[1..6] {
                assert!(c.is_empty() || c == "1", "{link:?}: bad checksum {row:?}");
            }
        }
        assert_eq!(rows[0][6], "1025");
        assert_eq!(rows[1][8], "3");
        assert_eq!(rows[2][7], "5000");
        assert_eq!(rows[3][9], "3");
        assert_eq!(rows[6][10], "1");
        std::fs::remove_file(&path).ok();
    }
}

#[test]
fn pcap_truncation_vlans_and_timestamps_via_tshark() {
    if !have_tshark() {
        return;
    }
    let path = tmp("trunc.pcap");
    let mut w = PcapWriter::create(&path, Link::Ethernet, 64, true).unwrap();
    let big = Frame::ethernet()
        .vlan(10)
        .ipv4(A, B)
        .udp(1, 2)
        .payload(&[0; 200])
        .build();
    w.write_packet(1_000_000_001_123_456_789, &big).unwrap();
    let qinq = Frame::ethernet().qinq(100, 20).ipv4(A, B).tcp(1, 2).build();
    w.write_packet_truncated(1_000_000_002_000_000_000, &qinq[..40], 1500)
        .unwrap();
    w.into_inner().unwrap();
    let rows = tshark(
        &path,
        &[
            "frame.len",
            "frame.cap_len",
            "vlan.id",
            "frame.time_epoch",
            "ieee8021ad.id",
        ],
    );
    assert_eq!(rows[0][0], big.len().to_string());
    assert_eq!(rows[0][1], "64");
    assert_eq!(rows[0][2], "10");
    assert!(
        rows[0][3].starts_with("1000000001.123456789"),
        "{:?}",
        rows[0]
    );
    assert_eq!(rows[1][0], "1500");
    assert_eq!(rows[1][1], "40");
    // The 802.1ad service tag is dissected separately from the C-tag.
    assert_eq!(rows[1][2], "20");
    assert_eq!(rows[1][4], "100");
    std::fs::remove_file(&path).ok();

    // Microsecond magic drops the nanoseconds.
    let path = tmp("micro.pcap");
    let mut w = PcapWriter::create(&path, Link::Raw, 65535, false).unwrap();
    w.write_packet(5_123_456_789, &Frame::raw().ipv4(A, B).udp(1, 2).build())
        .unwrap();
    w.into_inner().unwrap();
    let rows = tshark(&path, &["frame.time_epoch"]);
    assert!(rows[0][0].starts_with("5.123456000"), "{rows:?}");
    std::fs::remove_file(&path).ok();
}

#[test]
fn pcapng_interfaces_via_tshark() {
    let mut buf = Vec::new();
    {
        let mut w = PcapngWriter::new(&mut buf).unwrap();
        let eth = w.add_interface(Link::Ethernet, 65535, true).unwrap();
        let raw = w.add_interface(Link::Raw, 100, false).unwrap();
        w.write_packet(
            eth,
            1_000_000_000_000_000_007,
            &Frame::ethernet().ipv4(A, B).tcp(1, 2).build(),
        )
        .unwrap();
        w.write_packet(
            raw,
            2_000_000_000_000_001_000,
            &Frame::raw()
                .ipv6(A6, B6)
                .udp(3, 4)
                .payload(&[9; 300])
                .build(),
        )
        .unwrap();
        w.write_packet_truncated(
            raw,
            3_000_000_000_000_000_000,
            &Frame::raw().ipv4(A, B).udp(5, 6).payload(b"x").build(),
            999,
        )
        .unwrap();
        assert!(w.write_packet(7, 0, &[]).is_err());
        w.flush().unwrap();
    }
    assert_eq!(buf.len() % 4, 0);
    if !have_tshark() {
        return;
    }
    let path = tmp("x.pcapng");
    std::fs::write(&path, &buf).unwrap();
    let rows = tshark(
        &path,
        &[
            "frame.interface_id",
            "frame.time_epoch",
            "frame.len",
            "frame.cap_len",
            "tcp.srcport",
            "udp.srcport",
        ],
    );
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][0], "0");
    assert!(rows[0][1].starts_with("1000000000.000000007"), "{rows:?}");
    assert_eq!(rows[0][4], "1");
    assert_eq!(rows[1][0], "1");
    assert!(rows[1][1].starts_with("2000000000.000001"), "{rows:?}");
    assert_eq!(rows[1][3], "100");
    assert_eq!(rows[2][2], "999");
    assert_eq!(rows[2][5], "5");
    std::fs::remove_file(&path).ok();
}

#[test]
fn fragments_reassemble_in_tshark() {
    if !have_tshark() {
        return;
    }
    let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let path = tmp("frag.pcap");
    let mut w = PcapWriter::create(&path, Link::Ethernet, 65535, false).unwrap();
    for (i, f) in Frame::ethernet()
        .ipv4(A, B)
        .ip_id(99)
        .udp(1000, 2000)
        .payload(&data)
        .build_fragments(3)
        .iter()
        .enumerate()
    {
        w.write_packet(i as u64 * 1000, f).unwrap();
    }
    for (i, f) in Frame::ethernet()
        .ipv6(A6, B6)
        .ip_id(99)
        .udp(1000, 2000)
        .payload(&data)
        .build_fragments(3)
        .iter()
        .enumerate()
    {
        w.write_packet(10_000 + i as u64 * 1000, f).unwrap();
    }
    w.into_inner().unwrap();
    let rows = tshark(&path, &["udp.length", "udp.checksum.status"]);
    let full: Vec<_> = rows.iter().filter(|r| !r[0].is_empty()).collect();
    assert_eq!(full.len(), 2, "{rows:?}");
    for r in full {
        assert_eq!(r[0], "3008");
        assert_eq!(r[1], "1");
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn build_into_reuses_the_buffer() {
    let mut buf = Vec::with_capacity(256);
    let f = Frame::ethernet().ipv4(A, B).udp(1, 2).payload(b"abc");
    f.build_into(&mut buf);
    let first = buf.clone();
    buf.clear();
    f.build_into(&mut buf);
    assert_eq!(buf, first);
    assert_eq!(first, f.build());
    // wrap() around a built datagram equals build().
    assert_eq!(Frame::ethernet().wrap(&f.build_ip()), first);
}
