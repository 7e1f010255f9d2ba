//! Issue #23: ICMP errors quoting flows that never existed, sent as fast as
//! a capture can hold them, create no state (counted in
//! `stats.icmp_unmatched`), and the one quoting a real flow still becomes
//! that flow's evidence.

mod common;

use std::net::Ipv4Addr;

use common::*;
use exflow_testkit::{Frame, Link, PcapWriter};

const T0: u64 = 1_795_305_697_000_000_000;
const ERRORS: u32 = 500_000;

#[test]
fn icmp_errors_quoting_unknown_flows_hold_nothing_and_a_real_one_still_counts() {
    let p = tmp_path("hostile-icmp.pcap");
    let mut w = PcapWriter::create(&p, Link::Ethernet, 65535, false).unwrap();
    let router = Ipv4Addr::new(203, 0, 113, 1);
    let server = Ipv4Addr::new(198, 51, 100, 10);
    let mut t = T0;
    for k in 0..ERRORS {
        // Each quotes a UDP datagram of a flow never seen.
        let client = Ipv4Addr::new(10, (k >> 16) as u8, (k >> 8) as u8, k as u8);
        let quoted = Frame::ethernet()
            .ipv4(client, server)
            .udp(1024 + (k % 60_000) as u16, 135)
            .payload(&[0; 8])
            .build_ip();
        let e = Frame::ethernet()
            .ipv4(router, client)
            .icmp_unreachable(13, &quoted)
            .build();
        w.write_packet(t, &e).unwrap();
        t += 1_000; // 1 µs apart: line rate for 70-byte frames at ~0.5 Gb/s
    }
    let real_client = Ipv4Addr::new(192, 0, 2, 10);
    let d = Frame::ethernet()
        .ipv4(real_client, server)
        .udp(40000, 135)
        .payload(&[0; 8]);
    w.write_packet(t, &d.build()).unwrap();
    let quoted = d.build_ip();
    let e = Frame::ethernet()
        .ipv4(router, real_client)
        .icmp_unreachable(13, &quoted)
        .build();
    w.write_packet(t + 1_000_000, &e).unwrap();
    w.flush().unwrap();
    drop(w);
    let r = analyze_json(&[path_str(&p)], &[0, 1]);
    let s = &r["stats"];
    assert_eq!(s["icmp_unmatched"].as_u64().unwrap(), u64::from(ERRORS));
    assert_eq!(
        s["flows"].as_u64().unwrap(),
        1,
        "an unmatched error made a flow"
    );
    assert_eq!(s["peak_flows_tracked"].as_u64().unwrap(), 1);
    let f = &r["flows"][0];
    assert_eq!(f["client"], "192.0.2.10");
    assert_eq!(f["icmp_error_count"], 1);
    assert_eq!(f["icmp_errors"][0]["code"], 13);
    assert_eq!(f["icmp_errors"][0]["sender"], "203.0.113.1");
    let _ = std::fs::remove_file(&p);
}
