//! Issue #23 for RFC 1006 (TPKT/COTP, TCP 102): connections that open a
//! transport connection, then send a TPKT whose length claims 65,535 bytes
//! and trickle bytes of it (a length that lies), or leave a hole and send
//! out-of-order bytes that never become in order. What RFC 1006 parsing
//! holds stays under its budget as the product counts it, what was cut and
//! passed over is counted, the report is finished, and a real S7
//! connection among them is still parsed (accepted, classified).

mod common;

// The attack timeline (opening, trickle rounds, the real client in the
// middle) is the DCE/RPC one's; only the bytes differ.
#[allow(dead_code)]
#[path = "support/hostile_rpc.rs"]
mod hostile;

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use common::pdus::hex;
use common::*;
use exflow_testkit::{Link, PcapWriter, TcpConversation};
use hostile::{write_timeline, Attack, ROUNDS, TRICKLE};
use serde_json::Value;

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
const REAL_CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);
/// More connections than the 16,384 parser slots (256 × 64 tables).
const CONNS: u32 = 20_000;

/// protocols.md §5 (lab rfc1006-allow): CR and its CC, TSAPs 0x0100 →
/// 0x0102, TPDU size 1024; an S7 setup in a DT.
const CR: &str = "03 00 00 16 11 e0 00 00 00 01 00 c0 01 0a c1 02 01 00 c2 02 01 02";
const CC: &str = "03 00 00 16 11 d0 00 01 00 02 00 c0 01 0a c1 02 01 00 c2 02 01 02";
const DT_S7_SETUP: &str =
    "03 00 00 19 02 f0 80 32 01 00 00 00 00 00 08 00 00 f0 00 00 01 00 01 01 e0";

fn attacker(k: u32) -> TcpConversation {
    let host = 1 + k / 50_000;
    let a = Ipv4Addr::new(10, (host >> 8) as u8, host as u8, 2);
    let port = 1024 + (k % 50_000) as u16;
    TcpConversation::new(IpAddr::V4(a), port, IpAddr::V4(SERVER), 102)
}

/// `Attack::Trickle`: a DT whose TPKT length claims 65,535 bytes, then a
/// trickle of it. `Attack::Gap`: a one-byte hole, then the trickle out of
/// order behind it. The real S7 connection comes 30 s in.
fn write(path: &Path, attack: Attack) -> io::Result<()> {
    let mut w = PcapWriter::create(path, Link::Ethernet, 65535, false)?;
    let (cr, cc) = (hex(CR), hex(CC));
    let mut convs: Vec<TcpConversation> = (0..CONNS).map(attacker).collect();
    let opening = |c: &mut TcpConversation| {
        vec![
            c.syn(),
            c.syn_ack(),
            c.ack(),
            c.data_c2s(&cr),
            c.data_s2c(&cc),
        ]
    };
    let real = || {
        let mut c = TcpConversation::new(IpAddr::V4(REAL_CLIENT), 40000, IpAddr::V4(SERVER), 102);
        let mut frames = opening(&mut c);
        frames.extend([c.data_c2s(&hex(DT_S7_SETUP)), c.fin_c(), c.fin_s(), c.ack()]);
        frames
    };
    let lying = hex("03 00 ff ff 02 f0 80");
    write_timeline(
        &mut w,
        &mut convs,
        attack,
        |_, c| (opening(c), lying.clone()),
        real,
    )?;
    w.flush()
}

fn run(name: &str, attack: Attack) -> Value {
    let p = tmp_path(name);
    write(&p, attack).unwrap();
    let r = analyze_json(&[path_str(&p)], &[0, 1]);
    let _ = std::fs::remove_file(&p);
    // A finished report: every connection is a flow.
    assert_eq!(r["stats"]["flows"].as_u64().unwrap(), u64::from(CONNS) + 1);
    // The real connection still got a parser: accepted, S7.
    let real: Vec<&Value> = r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["client"] == REAL_CLIENT.to_string())
        .collect();
    assert_eq!(real.len(), 1);
    let app = &real[0]["app"]["rfc1006"];
    assert_eq!(app["outcome"]["state"], "accepted", "{}", real[0]);
    assert_eq!(app["application"], "s7comm", "{}", real[0]);
    let s = r["stats"]["rfc1006"].clone();
    eprintln!("rfc1006 stats: {s}");
    let peak = s["bytes_peak"].as_u64().unwrap();
    assert!(
        peak > 0 && peak <= exflow::flow::RFC1006_BYTES_BUDGET as u64,
        "RFC 1006 held {peak} bytes"
    );
    assert!(s["parsed_flows"].as_u64().unwrap() > 0);
    s
}

#[test]
fn lying_tpkt_lengths_hold_only_their_heads_within_the_budget() {
    let s = run("hostile-rfc1006-length.pcap", Attack::Trickle);
    // Every parsed connection's lying DT was cut once its head was in,
    // and the rest of the trickle passed over unbuffered.
    let cut = s["tpkts_cut"].as_u64().unwrap();
    assert!(cut > 0);
    let passed = s["bytes_passed"].as_u64().unwrap();
    assert!(passed > 0 && passed <= cut * (ROUNDS * TRICKLE as u64));
    assert_eq!(s["holes_given_up"], 0);
}

#[test]
fn out_of_order_bytes_never_filling_their_gap_stay_within_the_budget() {
    let s = run("hostile-rfc1006-gap.pcap", Attack::Gap);
    // The tables' budgets made the connections holding most give up on
    // their holes.
    assert!(s["holes_given_up"].as_u64().unwrap() > 0);
    assert_eq!(s["tpkts_cut"], 0);
}
