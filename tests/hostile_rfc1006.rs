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

#[path = "support/hostile_rfc1006.rs"]
mod rfc1006;

use common::pdus;
use common::*;
use hostile::{Attack, ROUNDS, TRICKLE};
use rfc1006::REAL_CLIENT;
use serde_json::Value;

/// More connections than the 16,384 parser slots (256 × 64 tables).
const CONNS: u32 = 20_000;

/// Runs the attack; returns `stats.rfc1006` and how many flows carry an
/// RFC 1006 summary.
fn run(name: &str, attack: Attack) -> (Value, usize) {
    let p = tmp_path(name);
    rfc1006::write(&p, CONNS, attack, false).unwrap();
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
    let labelled = r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["app"]["rfc1006"].is_object())
        .count();
    (s, labelled)
}

#[test]
fn lying_tpkt_lengths_hold_only_their_heads_within_the_budget() {
    let (s, _) = run("hostile-rfc1006-length.pcap", Attack::Trickle);
    // Every parsed connection's lying DT was cut once its head was in,
    // and the rest of the trickle passed over unbuffered.
    let cut = s["tpkts_cut"].as_u64().unwrap();
    assert!(cut > 0);
    let passed = s["bytes_passed"].as_u64().unwrap();
    assert!(passed > 0 && passed <= cut * (ROUNDS * TRICKLE as u64));
    assert_eq!(s["holes_given_up"], 0);
}

/// Connections that open and then only keep alive hold every parser slot
/// and make no progress: the real connection 30 s in takes the slot of one
/// stalled for more than `PARSER_STALLED_AFTER`, and the connections that
/// had a parser keep what it learnt (their CR/CC) in the report.
#[test]
fn idle_connections_give_their_parser_slot_to_a_newcomer() {
    let (s, labelled) = run("hostile-rfc1006-idle.pcap", Attack::Idle);
    // 16,384 slots, all taken by attackers within the first 2 s: the rest
    // went without, and the real connection evicted a stalled one.
    assert_eq!(s["over_cap"].as_u64().unwrap(), u64::from(CONNS) - 256 * 64);
    assert_eq!(s["evicted_stalled"], 1);
    assert_eq!(s["parsed_flows"].as_u64().unwrap(), 256 * 64 + 1);
    assert_eq!(s["evicted_over_budget"], 0);
    // The evicted connection kept its CR/CC summary: every parsed flow has
    // one.
    assert_eq!(labelled, 256 * 64 + 1);
}

#[test]
fn out_of_order_bytes_never_filling_their_gap_stay_within_the_budget() {
    let (s, _) = run("hostile-rfc1006-gap.pcap", Attack::Gap);
    // The tables' budgets made the connections holding most give up on
    // their holes.
    assert!(s["holes_given_up"].as_u64().unwrap() > 0);
    assert_eq!(s["tpkts_cut"], 0);
}
