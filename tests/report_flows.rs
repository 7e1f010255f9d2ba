//! `--flows all|failed|none` (#20): which flow records a JSON or NDJSON
//! report carries. The report is otherwise the same (findings, verdicts,
//! hand-offs, stats.flows), the failed flows are exactly those the verdicts
//! count failed (the text report's list), and `stats.flows_reported` says
//! how many were written.

mod common;

use common::*;
use serde_json::Value;

/// The lab captures with failed attempts among working flows.
const CAPTURES: [&str; 3] = [
    "lab/dyn-drop/client-tap.pcap",
    "lab/dyn-reject-rst/client-tap.pcap",
    "lab/scan-dyn-drop/client-tap.pcap",
];

fn report(path: &str, format: &str, flows: &str) -> String {
    let out = run(&["analyze", path, "--format", format, "--flows", flows]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The text report's count of failed connection attempts.
fn failed_in_text(path: &str) -> usize {
    let text = report(path, "text", "all");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Failed connection attempts: "))
        .expect("the text report counts failed attempts");
    line.trim().parse().unwrap()
}

#[test]
fn flows_selects_the_records_and_nothing_else() {
    for capture in CAPTURES {
        let p = shared_captures().join(capture);
        let path = path_str(&p);
        let all: Value = serde_json::from_str(&report(path, "json", "all")).unwrap();
        let default = run(&["analyze", path, "--format", "json"]);
        assert_eq!(
            String::from_utf8(default.stdout).unwrap(),
            report(path, "json", "all"),
            "--flows all is the default"
        );
        let every: Vec<&Value> = all["flows"].as_array().unwrap().iter().collect();
        let failed = failed_in_text(path);
        assert!(
            failed > 0 && failed < every.len(),
            "{capture}: {failed} of {}",
            every.len()
        );
        for (which, want) in [("failed", failed), ("none", 0)] {
            let r: Value = serde_json::from_str(&report(path, "json", which)).unwrap();
            let flows = r["flows"].as_array().unwrap();
            assert_eq!(flows.len(), want, "{capture} --flows {which}");
            assert_eq!(r["stats"]["flows_reported"], want as u64);
            // Each one is the full report's record, in the same order.
            let mut at = every.iter();
            for f in flows {
                assert!(
                    at.any(|g| *g == f),
                    "{capture}: {f} not in the full report's order"
                );
                assert_ne!(
                    f["state"], "SF",
                    "{capture}: a working flow among failed ones"
                );
            }
            // Everything else is the same.
            for key in ["findings", "verdicts", "handoffs", "endpoints", "inputs"] {
                assert_eq!(r[key], all[key], "{capture} --flows {which}: {key}");
            }
            assert_eq!(r["stats"]["flows"], all["stats"]["flows"]);
            // NDJSON carries the same flow records.
            let nd = report(path, "ndjson", which);
            let records: Vec<Value> = nd
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let nd_flows = records.iter().filter(|r| r["record"] == "flow").count();
            assert_eq!(nd_flows, want, "{capture} ndjson --flows {which}");
            let stats = records.last().unwrap();
            assert_eq!(stats["flows_reported"], want as u64);
        }
    }
}
