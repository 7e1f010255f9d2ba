//! The lab captures (real peers across a real nftables firewall, both taps)
//! against their truth.json: every flow found once per tap it crossed, with
//! the right packet counts per direction, SYN retransmissions, state and ICMP
//! evidence.

mod common;

use common::*;
use serde_json::Value;

fn find_flow<'a>(report: &'a Value, t: &Value) -> Vec<&'a Value> {
    report["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["proto"] == t["proto"]
                && f["client"] == t["initiator"]
                && f["client_port"] == t["initiator_port"]
                && f["server"] == t["responder"]
                && f["server_port"] == t["responder_port"]
        })
        .collect()
}

fn check_tap(scenario: &str, tap: &str, report: &Value, t: &Value, counts: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let id = format!(
        "{scenario}/{tap} {} {}:{} -> {}:{}",
        t["proto"], t["initiator"], t["initiator_port"], t["responder"], t["responder_port"]
    );
    let found = find_flow(report, t);
    if found.len() != 1 {
        errs.push(format!("{id}: found {} flows", found.len()));
        return errs;
    }
    let f = found[0];
    let want = [
        counts["fwd"].as_u64().unwrap(),
        counts["rev"].as_u64().unwrap(),
    ];
    let got = [
        f["packets"][0].as_u64().unwrap(),
        f["packets"][1].as_u64().unwrap(),
    ];
    if want != got {
        errs.push(format!("{id}: packets {got:?}, truth {want:?}"));
    }
    let syn = counts["syn"].as_u64().unwrap();
    if syn > 0 && f["syn_retries"].as_u64().unwrap() != syn - 1 {
        errs.push(format!(
            "{id}: syn_retries {}, truth {} SYNs",
            f["syn_retries"], syn
        ));
    }
    let state = f["state"].as_str().unwrap();
    let verdict = t["observed_verdict"].as_str().unwrap();
    let far = tap != t["near_tap"].as_str().unwrap();
    let want_states: &[&str] = match (t["proto"].as_str().unwrap(), verdict) {
        ("udp", _) => &["udp"],
        (_, "allowed" | "refused-by-host") if far || verdict == "allowed" => {
            if verdict == "refused-by-host" {
                &["REJ"]
            } else {
                &["SF", "S1", "S2", "S3", "RSTO", "RSTR"]
            }
        }
        (_, "dropped" | "rejected-icmp-admin-prohibited" | "rejected-icmp-port-unreachable") => {
            &["S0"]
        }
        (_, "rejected-tcp-reset") => &["REJ"],
        _ => &[],
    };
    if !want_states.is_empty() && !want_states.contains(&state) {
        errs.push(format!(
            "{id}: state {state}, verdict {verdict} wants {want_states:?}"
        ));
    }
    if let Some(icmp) = counts["icmp_errors"].as_array() {
        let got_icmp = f["icmp_errors"].as_array().unwrap();
        let want_n = icmp.len().min(4);
        if got_icmp.len() != want_n || f["icmp_error_count"].as_u64().unwrap() != icmp.len() as u64
        {
            errs.push(format!(
                "{id}: {} ICMP errors (count {}), truth {}",
                got_icmp.len(),
                f["icmp_error_count"],
                icmp.len()
            ));
        }
        for (g, w) in got_icmp.iter().zip(icmp) {
            if g["sender"] != w["from"] || g["code"] != w["code"] || g["type"] != 3 {
                errs.push(format!("{id}: ICMP {g} vs truth {w}"));
            }
        }
    }
    errs
}

#[test]
fn every_lab_flow_matches_truth_on_both_taps() {
    let lab = shared_captures().join("lab");
    let mut scenarios: Vec<_> = std::fs::read_dir(&lab)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("truth.json").is_file())
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 10);
    let mut errs = Vec::new();
    let mut checked = 0;
    for dir in &scenarios {
        let scenario = dir.file_name().unwrap().to_str().unwrap();
        let truth: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap())
                .unwrap();
        for tap in ["client-tap", "server-tap"] {
            let pcap = dir.join(format!("{tap}.pcap"));
            let report = analyze_json(&[path_str(&pcap)], &[0, 1]);
            for t in truth["flows"].as_array().unwrap() {
                let near = t["near_tap"].as_str().unwrap() == tap;
                let counts = if near {
                    &t["near_tap_packets"]
                } else {
                    &t["far_tap_packets"]
                };
                if counts.is_null() {
                    // The firewall dropped it before this tap: it must be absent.
                    if !find_flow(&report, t).is_empty() {
                        errs.push(format!("{scenario}/{tap}: flow {t} should be absent"));
                    }
                    continue;
                }
                checked += 1;
                errs.extend(check_tap(scenario, tap, &report, t, counts));
            }
        }
    }
    assert!(checked > 100, "checked {checked} flow/tap pairs");
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}
