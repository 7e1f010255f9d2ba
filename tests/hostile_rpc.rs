//! Issue #23: DCE/RPC parsing stays bounded under connections that bind the
//! endpoint mapper and trickle bytes toward PDUs claiming large fragments,
//! and a real ept_map exchange among them still becomes a hand-off.

mod common;

#[path = "support/hostile_rpc.rs"]
mod hostile;

use common::pdus::{epm_bind, epm_bind_ack, ept_map_answer_at, ept_map_nspi};
use common::*;
use std::net::Ipv4Addr;

/// 40,000 connections: the old fixed cap was 256 parsed flows × 64 logical
/// shards = 16,384 at once, first come first served.
const CONNS: u32 = 40_000;
/// The bound of #23 on what DCE/RPC parsing may add.
const BOUND: u64 = 64 << 20;

#[test]
fn trickling_connections_neither_grow_memory_nor_hide_a_real_handoff() {
    let p = tmp_path("hostile-rpc-trickle.pcap");
    let packets = hostile::write(&p, CONNS, 4997, &exchange()).unwrap();
    assert!(packets > u64::from(CONNS) * (6 + hostile::ROUNDS));
    let r = analyze_json(&[path_str(&p)], &[0, 1]);

    // The real client's hand-off is there, and followed.
    let h: Vec<_> = r["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["client"] == hostile::REAL_CLIENT.to_string())
        .collect();
    assert_eq!(h.len(), 1, "the real ept_map exchange became no hand-off");
    assert_eq!(h[0]["port"], 4997);
    assert_eq!(h[0]["followed"], true);
    assert_eq!(h[0]["operation"], "ept_map");

    // Every connection is a flow in the report.
    let s = &r["stats"];
    assert_eq!(s["flows"].as_u64().unwrap(), u64::from(CONNS) + 2);
    let d = &s["dcerpc"];
    // What parsing held, as the product counts it, stayed under the bound
    // (per table peaks summed: an upper bound of the process's).
    let peak = d["bytes_peak"].as_u64().unwrap();
    assert!(peak > 0 && peak <= BOUND, "DCE/RPC held {peak} bytes");
    assert!(peak <= exflow::flow::RPC_BYTES_BUDGET as u64);
    // 65,535-byte claims were refused and counted (those of connections
    // that got a parser: the others are counted in `over_cap`).
    let refused = d["pdus_refused"].as_u64().unwrap();
    assert!(refused > 0 && refused <= u64::from(CONNS / 2));
    assert!(d["over_cap"].as_u64().unwrap() > 0);
    // Slots went from stalled connections to newcomers, and more
    // connections were parsed than the old first-come cap allowed.
    assert!(d["evicted_stalled"].as_u64().unwrap() > 0);
    assert!(d["parsed_flows"].as_u64().unwrap() > 256 * 64);
    eprintln!("dcerpc stats: {d}");
    let _ = std::fs::remove_file(&p);
}

/// The real client's exchange: its ept_map for NSPI answered with port 4997.
fn exchange() -> hostile::Exchange {
    hostile::Exchange {
        bind: epm_bind(),
        bind_ack: epm_bind_ack(),
        request: ept_map_nspi(),
        answer: ept_map_answer_at(Ipv4Addr::UNSPECIFIED, 4997),
    }
}

/// Analyses `attack` on [`CONNS`] connections; the report, once the real
/// client's exchange is known to have become exactly one hand-off.
fn run_attack(name: &str, attack: hostile::Attack) -> serde_json::Value {
    let p = tmp_path(name);
    hostile::write_attack(&p, CONNS, 4997, &exchange(), attack).unwrap();
    let r = analyze_json(&[path_str(&p)], &[0, 1]);
    let _ = std::fs::remove_file(&p);
    let h = r["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["client"] == hostile::REAL_CLIENT.to_string())
        .count();
    assert_eq!(h, 1, "the real ept_map exchange became no hand-off");
    r
}

/// The same with out-of-order bytes that never become in order: each
/// connection's stream reassembler holds them, the table's budget drops the
/// parsers holding most, and the real exchange still becomes a hand-off.
#[test]
fn out_of_order_bytes_never_filling_their_gap_stay_within_the_budget() {
    let r = run_attack("hostile-rpc-gap.pcap", hostile::Attack::Gap);
    let d = &r["stats"]["dcerpc"];
    let peak = d["bytes_peak"].as_u64().unwrap();
    assert!(peak > 0 && peak <= exflow::flow::RPC_BYTES_BUDGET as u64);
    assert!(d["evicted_over_budget"].as_u64().unwrap() > 0);
    assert_eq!(d["pdus_refused"], 0);
}

/// Connections that bind the mapper and then only keep alive hold every
/// parser slot without progress: the real client 30 s in takes the slot of
/// one stalled for more than `PARSER_STALLED_AFTER`, and its hand-off is
/// found (first comers do not keep their slots for ever).
#[test]
fn idle_connections_give_their_parser_slot_to_a_real_client() {
    let r = run_attack("hostile-rpc-idle.pcap", hostile::Attack::Idle);
    let d = &r["stats"]["dcerpc"];
    // 16,384 slots, all taken within the first 2 s; the real client's
    // connection to the mapper took one stalled slot.
    assert_eq!(d["over_cap"].as_u64().unwrap(), u64::from(CONNS) - 256 * 64);
    assert_eq!(d["evicted_stalled"], 1);
    assert_eq!(d["evicted_over_budget"], 0);
}
