//! Issue #23: endpoint-mapper answers built to hurt the NDR decoder, each on
//! its own connection of one capture: the most towers one answer the
//! framer takes can hold, a tower whose floor count lies (65,535 floors),
//! and NDR conformant arrays claiming 2^32 − 1 towers (NDR 2.0; NDR64's
//! counts are covered by the `epm` fuzz target). The report is finished,
//! each answer is decoded or counted as malformed by the product
//! (`flows[].rpc`), what DCE/RPC parsing held stays small as it counts it
//! (`stats.dcerpc.bytes_peak`), and a real exchange beside them still
//! becomes a hand-off.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::pdus::ept_map_answer_at;
use common::*;
use exflow_testkit::TcpConversation;
use serde_json::Value;

const MS: u64 = 1_000_000;
const T0: u64 = 1_795_305_697_000_000_000;
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 30);
/// Towers in the big answer: ~84 bytes each, so the PDU stays under the
/// 16 KiB the framer buffers (`rpc_conn::MAX_BUFFERED_PDU`).
const TOWERS: u16 = 180;

/// Example 6's answer with its length fields set for `stub_len` stub bytes.
fn set_lengths(b: &mut [u8]) {
    let len = b.len() as u16;
    b[8..10].copy_from_slice(&len.to_le_bytes());
    b[16..20].copy_from_slice(&u32::from(len - 24).to_le_bytes());
}

/// An ept_map answer carrying `n` towers (ports 5000 + k).
fn many_towers(n: u16) -> Vec<u8> {
    let one = ept_map_answer_at(SERVER, 5000);
    // Example 6: handle 0x18..0x2c, num_towers 0x2c, max/offset/actual
    // 0x30..0x3c, one referent 0x3c, the twr_t (lengths 0x40, 0x44; tower
    // 0x48..0x93, padded to 0x94), status 0x94.
    let tower = &one[0x48..0x93];
    let mut b = one[..0x2c].to_vec();
    let n32 = u32::from(n);
    for v in [n32, n32, 0, n32] {
        b.extend(v.to_le_bytes());
    }
    for k in 0..n32 {
        b.extend((3 + k).to_le_bytes());
    }
    for k in 0..n {
        let mut t = tower.to_vec();
        // Floor 4's port (big-endian) at 0x88 - 0x48.
        t[0x40..0x42].copy_from_slice(&(5000 + k).to_be_bytes());
        b.extend((t.len() as u32).to_le_bytes());
        b.extend((t.len() as u32).to_le_bytes());
        b.extend(&t);
        while b.len() % 4 != 0 {
            b.push(0);
        }
    }
    b.extend(0u32.to_le_bytes());
    set_lengths(&mut b);
    b
}

/// The one-tower answer whose tower claims 65,535 floors.
fn lying_floor_count() -> Vec<u8> {
    let mut b = ept_map_answer_at(SERVER, 5999);
    assert_eq!(&b[0x48..0x4a], &[5, 0]);
    b[0x48..0x4a].copy_from_slice(&[0xff, 0xff]);
    b
}

/// The one-tower answer whose array claims 2^32 − 1 towers (num_towers,
/// max_count and actual_count).
fn huge_conformance() -> Vec<u8> {
    let mut b = ept_map_answer_at(SERVER, 5998);
    for at in [0x2c, 0x30, 0x38] {
        b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    }
    b
}

fn client(k: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100 + k))
}

#[test]
fn hostile_epm_answers_are_decoded_or_counted_and_stay_small() {
    let answers = [many_towers(TOWERS), lying_floor_count(), huge_conformance()];
    let real = ept_map_answer_at(SERVER, 4997);
    let mut frames = Vec::new();
    let mut t = T0;
    for (k, answer) in answers.iter().chain([&real]).enumerate() {
        let mut c = TcpConversation::new(client(k as u8), 40000, IpAddr::V4(SERVER), 135);
        for f in epm_request(&mut c) {
            t += MS;
            frames.push((t, f));
        }
        // The answer in MSS-sized segments.
        for seg in answer.chunks(1460) {
            t += MS;
            frames.push((t, c.data_s2c(seg)));
        }
        for f in [c.fin_c(), c.fin_s(), c.ack()] {
            t += MS;
            frames.push((t, f));
        }
    }
    // The real client follows its answer.
    let mut f = TcpConversation::new(client(3), 40001, IpAddr::V4(SERVER), 4997);
    for p in [f.syn(), f.syn_ack(), f.ack()] {
        t += MS;
        frames.push((t, p));
    }
    let p = write_pcap("hostile-epm.pcap", &frames);
    let r = analyze_json(&[&p], &[0, 1]);

    let rpc_of = |k: u8| -> Value {
        r["flows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["client"] == client(k).to_string() && f["server_port"] == 135)
            .unwrap_or_else(|| panic!("no flow of client {k}"))["rpc"]
            .clone()
    };
    let handoffs_of = |k: u8| -> Vec<Value> {
        r["handoffs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["client"] == client(k).to_string())
            .cloned()
            .collect()
    };
    // The big answer is decoded: one hand-off per tower, no more.
    let big = rpc_of(0);
    assert_eq!(big["epm_answers"], 1, "{big}");
    assert_eq!(big["malformed_pdus"], 0, "{big}");
    assert_eq!(handoffs_of(0).len(), usize::from(TOWERS));
    // The lying floor count: refused by the tower parser; nothing handed off.
    let lying = rpc_of(1);
    assert!(handoffs_of(1).is_empty(), "{:?}", handoffs_of(1));
    assert_eq!(lying["malformed_pdus"], 1, "{lying}");
    // 2^32 − 1 towers claimed: never allocated for (the count is checked
    // against the bytes left); the structured decode fails, and the §2.5
    // scan may still find the one real tower in the bytes.
    let huge = rpc_of(2);
    assert_eq!(huge["epm_answers"], 1, "{huge}");
    let h = handoffs_of(2);
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["port"], 5998);
    // The real exchange beside them.
    let h = handoffs_of(3);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["port"], 4997);
    assert_eq!(h[0]["followed"], true);
    // What parsing held, as the product counts it: a few PDUs' worth.
    let d = &r["stats"]["dcerpc"];
    assert_eq!(d["pdus_refused"], 0);
    let peak = d["bytes_peak"].as_u64().unwrap();
    assert!(peak > 0 && peak <= 1 << 20, "DCE/RPC held {peak} bytes");
    assert_eq!(r["stats"]["flows"].as_u64().unwrap(), 5);
}
