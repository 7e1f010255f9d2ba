//! Endpoint-mapper hand-offs end to end: the lab's real Samba mapper and
//! impacket/Samba clients (truth.json), and every capture against tshark's
//! EPM dissector (tests/data/epm_tshark.jsonl, made by
//! tests/support/epm_expected.sh).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::Value;

fn lab_scenarios() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(shared_captures().join("lab"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("truth.json").is_file())
        .collect();
    v.sort();
    v
}

fn truth(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap()
}

#[test]
fn lab_handoffs_equal_truth_on_both_taps_with_the_right_outcome() {
    let mut errs = Vec::new();
    let mut total = 0;
    for dir in lab_scenarios() {
        let scenario = dir.file_name().unwrap().to_string_lossy().to_string();
        let t = truth(&dir);
        let handouts = t["epm"]["handouts"].as_array().unwrap();
        for tap in ["client-tap", "server-tap"] {
            let r = analyze_json(&[path_str(&dir.join(format!("{tap}.pcap")))], &[0, 1]);
            let got: Vec<(String, String, u64, String)> = r["handoffs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h["client"].as_str().unwrap().to_string(),
                        h["server"].as_str().unwrap().to_string(),
                        h["port"].as_u64().unwrap(),
                        h["interface"]["uuid"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let want: Vec<(String, String, u64, String)> = handouts
                .iter()
                .map(|h| {
                    (
                        h["client"].as_str().unwrap().to_string(),
                        h["server"].as_str().unwrap().to_string(),
                        h["port"].as_u64().unwrap(),
                        h["interface_uuid"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            if got != want {
                errs.push(format!(
                    "{scenario}/{tap}: handoffs\n  got  {got:?}\n  want {want:?}"
                ));
                continue;
            }
            total += got.len();
            // Outcome per hand-off, from the truth flows that followed it.
            for (h, th) in r["handoffs"].as_array().unwrap().iter().zip(handouts) {
                let frame = &th["frame"];
                let follow: Vec<&Value> = t["flows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|f| &f["epm_map_frame"] == frame)
                    .collect();
                let verdicts: BTreeSet<&str> = follow
                    .iter()
                    .map(|f| f["observed_verdict"].as_str().unwrap())
                    .collect();
                let kind = h["outcome"]["kind"].as_str().unwrap();
                // A later answer for the same endpoint to the same client
                // within 30 s whose own connection got through.
                let superseded = handouts.iter().any(|later| {
                    let dt = later["ts"].as_f64().unwrap() - th["ts"].as_f64().unwrap();
                    later["frame"].as_u64() > frame.as_u64()
                        && dt <= 30.0
                        && later["client"] == th["client"]
                        && later["port"] == th["port"]
                        && t["flows"].as_array().unwrap().iter().any(|f| {
                            f["epm_map_frame"] == later["frame"]
                                && f["observed_verdict"] == "allowed"
                        })
                });
                // No attempt seen, and the tap's capture ended less than a
                // second after the answer: too close to the end to judge.
                let no_attempt = if seconds(&r["inputs"][0]["last_ts"]) - seconds(&h["ts"]) < 1.0 {
                    "capture-ended"
                } else {
                    "no-attempt"
                };
                let want_kind = if follow.is_empty() && superseded {
                    "superseded"
                } else if follow.is_empty() {
                    no_attempt
                } else if verdicts.contains("allowed") {
                    "established"
                } else if tap == "server-tap" {
                    // Blocked before the server's side of the firewall.
                    no_attempt
                } else if verdicts.contains("rejected-tcp-reset") {
                    "reset"
                } else if verdicts.iter().any(|v| v.starts_with("rejected-icmp")) {
                    "icmp-unreachable"
                } else {
                    "syn-unanswered"
                };
                if kind != want_kind {
                    errs.push(format!(
                        "{scenario}/{tap}: hand-off of frame {frame} to port {}: {kind}, truth says {want_kind}",
                        h["port"]
                    ));
                }
                if h["followed"].as_bool().unwrap() != (want_kind == "established") {
                    errs.push(format!(
                        "{scenario}/{tap}: followed flag wrong for frame {frame}"
                    ));
                }
            }
            // Every flow the truth says an EPM answer announced carries that interface.
            let uuid_of: BTreeMap<&str, &str> = handouts
                .iter()
                .map(|h| {
                    (
                        h["interface"].as_str().unwrap(),
                        h["interface_uuid"].as_str().unwrap(),
                    )
                })
                .collect();
            for f in t["flows"].as_array().unwrap() {
                let Some(iface) = f["epm_interface"].as_str() else {
                    continue;
                };
                let ours = r["flows"].as_array().unwrap().iter().find(|g| {
                    g["client_port"] == f["initiator_port"]
                        && g["server_port"] == f["responder_port"]
                });
                let Some(g) = ours else { continue }; // dropped before this tap
                if g["identified_by"] != "epm-handoff"
                    || g["interface"]["uuid"].as_str() != uuid_of.get(iface).copied()
                {
                    errs.push(format!(
                        "{scenario}/{tap}: flow to {} labeled {} by {}, truth {iface}",
                        f["responder_port"], g["interface"], g["identified_by"]
                    ));
                }
            }
        }
    }
    assert!(total >= 40, "{total} hand-offs checked");
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

/// Seconds since midnight of a report timestamp ("2026-11-22T00:01:42.932518Z";
/// every lab capture lies within one day).
fn seconds(ts: &Value) -> f64 {
    let t = ts.as_str().unwrap();
    let clock = &t[11..t.len() - 1];
    let mut parts = clock.split(':').map(|p| p.parse::<f64>().unwrap());
    let (h, m, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    h * 3600.0 + m * 60.0 + s
}

type Tower = (String, String, u64, String);

#[test]
fn every_capture_decodes_the_same_epm_towers_as_tshark() {
    shared_captures();
    let mut oracle_all: BTreeMap<String, BTreeSet<Tower>> = BTreeMap::new();
    let mut oracle_map: BTreeMap<String, BTreeSet<Tower>> = BTreeMap::new();
    let text = std::fs::read_to_string(crate_root().join("tests/data/epm_tshark.jsonl")).unwrap();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let t = (
            v["server"].as_str().unwrap().to_string(),
            v["proto"].as_str().unwrap().to_string(),
            v["port"].as_u64().unwrap(),
            v["uuid"].as_str().unwrap().to_string(),
        );
        let file = v["file"].as_str().unwrap().to_string();
        if v["opnum"] == 3 {
            oracle_map
                .entry(file.clone())
                .or_default()
                .insert(t.clone());
        }
        oracle_all.entry(file).or_default().insert(t);
    }
    let mut errs = Vec::new();
    let mut checked = 0;
    for path in tshark_expected().keys() {
        if path.starts_with("pcaps/") {
            continue;
        }
        let r = analyze_json(&[path], &[0, 1]);
        let tower = |v: &Value| -> Tower {
            (
                v["server"].as_str().unwrap().to_string(),
                v["proto"].as_str().unwrap().to_string(),
                v["port"].as_u64().unwrap(),
                v["interface"]["uuid"].as_str().unwrap_or("").to_string(),
            )
        };
        let endpoints: BTreeSet<Tower> = r["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(tower)
            .collect();
        let mapped: BTreeSet<Tower> = r["handoffs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["operation"] == "ept_map")
            .map(tower)
            .collect();
        let want_all = oracle_all.get(path).cloned().unwrap_or_default();
        let want_map = oracle_map.get(path).cloned().unwrap_or_default();
        checked += want_all.len();
        if endpoints != want_all {
            errs.push(format!(
                "{path}: endpoints\n  ours   {endpoints:?}\n  tshark {want_all:?}"
            ));
        }
        if mapped != want_map {
            errs.push(format!(
                "{path}: ept_map hand-offs\n  ours   {mapped:?}\n  tshark {want_map:?}"
            ));
        }
    }
    assert!(checked >= 100, "{checked} towers compared");
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}
