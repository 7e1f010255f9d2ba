//! Blocked findings over the lab captures (real Samba, impacket, libsnap7
//! peers across a real nftables firewall): the set of (responder, proto,
//! port) in `blocked` findings equals truth.json's `blocked_ports` — no more,
//! no fewer — from both taps together, and from each single tap equals the
//! part that tap can reveal:
//! * the initiator's tap shows unanswered SYNs, resets and ICMP errors (a
//!   silently dropped one-way UDP stream looks like any one-way stream);
//! * the responder's tap shows hand-offs the endpoint mapper announced and
//!   nobody followed (the dropped SYN itself never reaches it);
//! * a silently dropped one-way UDP stream shows only with both taps.
//!
//! Allowed traffic produces no `blocked` finding (allow-all,
//! rfc1006-allow, udp-notify-allow).

mod common;

use std::collections::BTreeSet;

use common::{analyze_json, path_str, shared_captures};
use serde_json::Value;

type PortKey = (String, String, u64);

fn scenarios() -> Vec<(String, Value)> {
    let lab = shared_captures().join("lab");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&lab).unwrap() {
        let dir = e.unwrap().path();
        let truth = dir.join("truth.json");
        if truth.is_file() {
            let t: Value = serde_json::from_str(&std::fs::read_to_string(&truth).unwrap()).unwrap();
            out.push((dir.file_name().unwrap().to_string_lossy().into_owned(), t));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 10,
        "expected the 10 lab scenarios, found {}",
        out.len()
    );
    out
}

fn blocked(report: &Value) -> BTreeSet<PortKey> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "blocked")
        .map(|f| {
            (
                f["server"].as_str().unwrap().to_string(),
                f["proto"].as_str().unwrap().to_string(),
                f["port"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn key(b: &Value) -> PortKey {
    (
        b["responder"].as_str().unwrap().to_string(),
        b["proto"].as_str().unwrap().to_string(),
        b["port"].as_u64().unwrap(),
    )
}

/// The tap on the initiator's side (clients 192.0.2.0/24 sit behind the
/// client tap, the server 198.51.100.10 behind the server tap).
fn initiator_tap(b: &Value) -> &'static str {
    if b["initiator"].as_str().unwrap().starts_with("192.0.2.") {
        "client-tap"
    } else {
        "server-tap"
    }
}

/// What one tap can reveal of a blocked port.
fn revealed_by(b: &Value, tap: &str) -> bool {
    let how = b["how"].as_str().unwrap();
    let one_way_udp_drop = b["proto"] == "udp" && how == "dropped";
    if tap == initiator_tap(b) {
        !one_way_udp_drop
    } else {
        // The responder's side sees only the endpoint mapper's answer.
        b["epm_learned"] == true
    }
}

fn dir_of(name: &str) -> std::path::PathBuf {
    shared_captures().join("lab").join(name)
}

#[test]
fn both_taps_reveal_exactly_the_blocked_ports() {
    for (name, truth) in scenarios() {
        let dir = dir_of(&name);
        let inside = dir.join("client-tap.pcap");
        let outside = dir.join("server-tap.pcap");
        let expected: BTreeSet<PortKey> = truth["blocked_ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(key)
            .collect();
        let r = analyze_json(
            &[
                "--inside",
                path_str(&inside),
                "--outside",
                path_str(&outside),
            ],
            &[0, 1],
        );
        assert_eq!(
            blocked(&r),
            expected,
            "{name}: blocked ports from both taps"
        );
        // The taps share one clock in the lab: the estimate must say so
        // (within the firewall's forwarding delay).
        let offset = r["taps"]["clock_offset_us"].as_i64().unwrap();
        assert!(offset.abs() < 1_000, "{name}: clock offset {offset} µs");
    }
}

#[test]
fn each_tap_reveals_its_part() {
    for (name, truth) in scenarios() {
        for tap in ["client-tap", "server-tap"] {
            let file = dir_of(&name).join(format!("{tap}.pcap"));
            let expected: BTreeSet<PortKey> = truth["blocked_ports"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|b| revealed_by(b, tap))
                .map(key)
                .collect();
            let r = analyze_json(&[path_str(&file)], &[0, 1]);
            assert_eq!(blocked(&r), expected, "{name} {tap}: blocked ports");
        }
    }
}

/// The evidence names what the firewall did, as truth.json's `how` says.
#[test]
fn evidence_matches_how_the_firewall_blocked() {
    for (name, truth) in scenarios() {
        let r = analyze_json(
            &[
                path_str(&dir_of(&name).join("client-tap.pcap")),
                "--threads",
                "1",
            ],
            &[0, 1],
        );
        let r_server = analyze_json(&[path_str(&dir_of(&name).join("server-tap.pcap"))], &[0, 1]);
        for b in truth["blocked_ports"].as_array().unwrap() {
            let tap = initiator_tap(b);
            let report = if tap == "client-tap" { &r } else { &r_server };
            let how = b["how"].as_str().unwrap();
            let f = report["findings"].as_array().unwrap().iter().find(|f| {
                f["kind"] == "blocked" && f["port"] == b["port"] && f["proto"] == b["proto"]
            });
            let Some(f) = f else {
                assert!(
                    b["proto"] == "udp" && how == "dropped",
                    "{name}: no finding for {b}"
                );
                continue;
            };
            let types: BTreeSet<&str> = f["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["type"].as_str().unwrap())
                .collect();
            let want = match how {
                "dropped" => "syn-unanswered",
                "rejected-tcp-reset" => "rst",
                "rejected-icmp-admin-prohibited" | "rejected-icmp-port-unreachable" => {
                    "icmp-unreachable"
                }
                other => panic!("{name}: unexpected how {other}"),
            };
            assert!(
                types.contains(want),
                "{name}: {how} should give {want}, got {types:?}"
            );
            for e in f["evidence"].as_array().unwrap() {
                match e["type"].as_str().unwrap() {
                    "rst" => {
                        // The firewall's reset, told from the host's own by
                        // TTL: the host's SYN-ACKs arrive one hop further.
                        assert_eq!(e["forged"], true, "{name}: {e}");
                        assert_eq!(e["confidence"], "high", "{name}: {e}");
                    }
                    "icmp-unreachable" => {
                        assert_eq!(e["meaning"], "administratively-prohibited", "{name}: {e}");
                        let fw = truth["hosts"]["firewall"].as_array().unwrap();
                        assert!(fw.contains(&e["sender"]), "{name}: ICMP sender {e}");
                    }
                    "syn-unanswered" => assert!(e["syns"].as_u64().unwrap() >= 2, "{name}: {e}"),
                    _ => {}
                }
            }
            // Every blocked finding comes with a rule to add.
            let nft = f["fix"]["nftables"][0].as_str().unwrap();
            assert!(
                nft.contains(&format!("dport {}", b["port"])),
                "{name}: {nft}"
            );
            if b["epm_learned"] == true {
                // A dynamic RPC port: the fix also names the value that pins it
                // when the KB documents one (netlogon, drsuapi; not dnsserver).
                let iface = b["epm_interfaces"][0].as_str().unwrap();
                if iface != "dnsserver" {
                    assert!(
                        !f["fix"]["pin"].as_array().unwrap().is_empty(),
                        "{name}: pin for {iface}"
                    );
                }
            }
        }
    }
}

/// From the server's side, the blocked dynamic ports are known only from
/// the hand-offs nobody followed: the evidence says so.
#[test]
fn server_tap_evidence_is_the_unfollowed_handoff() {
    for (name, truth) in scenarios() {
        let learned: Vec<&Value> = truth["blocked_ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["epm_learned"] == true)
            .collect();
        if learned.is_empty() {
            continue;
        }
        let r = analyze_json(&[path_str(&dir_of(&name).join("server-tap.pcap"))], &[0, 1]);
        for b in learned {
            let f = r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["kind"] == "blocked" && f["port"] == b["port"])
                .unwrap_or_else(|| panic!("{name}: no finding for {b}"));
            assert!(
                f["evidence"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|e| e["type"] == "handoff-unfulfilled"),
                "{name}: {f}"
            );
        }
    }
}

/// Two-tap reports are byte-identical whatever --threads is.
#[test]
fn two_tap_reports_do_not_depend_on_threads() {
    for (name, _) in scenarios() {
        let dir = dir_of(&name);
        let inside = dir.join("client-tap.pcap");
        let outside = dir.join("server-tap.pcap");
        let run_with = |threads: &str| {
            let out = common::run(&[
                "analyze",
                "--format",
                "json",
                "--threads",
                threads,
                "--inside",
                path_str(&inside),
                "--outside",
                path_str(&outside),
            ]);
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{name}: {}",
                common::stderr(&out)
            );
            out.stdout
        };
        let one = run_with("1");
        for t in ["2", "5"] {
            assert!(
                run_with(t) == one,
                "{name}: --threads {t} differs from --threads 1"
            );
        }
    }
}
