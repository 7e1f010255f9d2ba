//! Issue #23: 1,000,000 IPv4 first fragments that are never completed stay
//! within the defragmenter's caps (counted), and a datagram completed after
//! them is still reassembled.

mod common;

use std::net::Ipv4Addr;

use common::*;
use exflow_testkit::{Frame, Link, PcapWriter};

const T0: u64 = 1_795_305_697_000_000_000;
const FRAGMENTS: u32 = 1_000_000;

#[test]
fn a_million_fragments_never_completed_stay_capped_and_a_real_datagram_still_reassembles() {
    let p = tmp_path("hostile-fragments.pcap");
    let mut w = PcapWriter::create(&p, Link::Ethernet, 65535, false).unwrap();
    let payload = [0x42u8; 64];
    let server = Ipv4Addr::new(198, 51, 100, 10);
    let mut t = T0;
    for k in 0..FRAGMENTS {
        // Distinct (source, id) per datagram: each is a new reassembly.
        let src = Ipv4Addr::new(10, (k >> 16) as u8, (k >> 8) as u8, k as u8);
        let frags = Frame::ethernet()
            .ipv4(src, server)
            .ip_id(k as u16)
            .udp(40000, 53)
            .payload(&payload)
            .build_fragments(2);
        w.write_packet(t, &frags[0]).unwrap();
        t += 1_000;
    }
    let real = Frame::ethernet()
        .ipv4(Ipv4Addr::new(192, 0, 2, 10), server)
        .ip_id(7)
        .udp(40001, 53)
        .payload(&payload)
        .build_fragments(2);
    for f in &real {
        w.write_packet(t, f).unwrap();
        t += 1_000;
    }
    w.flush().unwrap();
    drop(w);
    let r = analyze_json(&[path_str(&p)], &[0, 1]);
    let f = &r["stats"]["fragments"];
    assert_eq!(
        f["fragments_seen"].as_u64().unwrap(),
        u64::from(FRAGMENTS) + 2
    );
    assert_eq!(f["datagrams_reassembled"].as_u64().unwrap(), 1);
    // Far more incomplete datagrams than the defragmenter holds: most were
    // dropped to make room, and counted.
    assert!(f["dropped_cap"].as_u64().unwrap() > u64::from(FRAGMENTS) / 2);
    let real_flow = r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["client"] == "192.0.2.10" && x["server_port"] == 53);
    assert!(real_flow, "the completed datagram made no flow");
    let _ = std::fs::remove_file(&p);
}
