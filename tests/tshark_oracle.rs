//! exflow against tshark on every real capture: frame counts, and TCP/UDP
//! conversations (endpoints and frames) equal to tshark's streams.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

type Conv = (String, u16, String, u16, u64);

/// Canonical, direction-free conversation key with its frame count.
fn conv(a_ip: &str, a_port: u64, b_ip: &str, b_port: u64, frames: u64) -> Conv {
    let a = (a_ip.to_string(), a_port as u16);
    let b = (b_ip.to_string(), b_port as u16);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    (lo.0, lo.1, hi.0, hi.1, frames)
}

fn tshark_convs(exp: &Value, proto: &str) -> BTreeMap<Conv, usize> {
    let mut m = BTreeMap::new();
    for s in exp[proto].as_array().unwrap() {
        let c = conv(
            s["a"][0].as_str().unwrap(),
            s["a"][1].as_u64().unwrap(),
            s["b"][0].as_str().unwrap(),
            s["b"][1].as_u64().unwrap(),
            s["frames"].as_u64().unwrap(),
        );
        *m.entry(c).or_default() += 1;
    }
    m
}

fn exflow_convs(report: &Value, proto: &str) -> BTreeMap<Conv, usize> {
    let mut m = BTreeMap::new();
    for f in report["flows"].as_array().unwrap() {
        if f["proto"] != proto {
            continue;
        }
        let frames = f["packets"][0].as_u64().unwrap() + f["packets"][1].as_u64().unwrap();
        let c = conv(
            f["client"].as_str().unwrap(),
            f["client_port"].as_u64().unwrap(),
            f["server"].as_str().unwrap(),
            f["server_port"].as_u64().unwrap(),
            frames,
        );
        *m.entry(c).or_default() += 1;
    }
    m
}

#[test]
fn packets_and_conversations_match_tshark_on_every_capture() {
    shared_captures();
    let expected = tshark_expected();
    assert!(
        expected.len() >= 40,
        "expected data covers {} captures",
        expected.len()
    );
    let mut failures = Vec::new();
    for (path, exp) in &expected {
        let report = analyze_json(&[path.as_str()], &[0, 1]);
        let frames = exp["frames"].as_u64().unwrap();
        let packets = report["inputs"][0]["packets"].as_u64().unwrap();
        if packets != frames {
            failures.push(format!("{path}: {packets} packets, tshark {frames} frames"));
        }
        for proto in ["tcp", "udp"] {
            let want = tshark_convs(exp, proto);
            let got = exflow_convs(&report, proto);
            if want != got {
                failures.push(format!(
                    "{path}: {proto} conversations differ\n  tshark: {want:?}\n  exflow: {got:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
