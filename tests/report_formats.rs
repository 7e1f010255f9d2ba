//! CSV and Zeek conn.log reports (#21 point 3): every row is one of the
//! JSON report's records, with the same values, in the same order.

mod common;

use common::*;
use serde_json::Value;

const CAPTURES: [&str; 3] = [
    "lab/dyn-drop/client-tap.pcap",
    "lab/scan-dyn-drop/client-tap.pcap",
    "lab/rfc1006-allow/server-tap.pcap",
];

fn out(args: &[&str]) -> String {
    let o = run(args);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// RFC 4180 rows: CRLF line ends, quoted cells with doubled quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut cell, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut cell)),
            ('\r', false) => {
                assert_eq!(chars.next(), Some('\n'), "CRLF");
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            _ => cell.push(c),
        }
    }
    assert!(
        row.is_empty() && cell.is_empty(),
        "the last row ends with CRLF"
    );
    rows
}

#[test]
fn csv_tables_hold_the_reports_records() {
    for capture in CAPTURES {
        let p = shared_captures().join(capture);
        let path = path_str(&p);
        let json: Value = serde_json::from_str(&out(&["analyze", path, "-f", "json"])).unwrap();
        for (table, records, keys) in [
            (
                "findings",
                "findings",
                vec!["kind", "server", "port", "service"],
            ),
            (
                "verdicts",
                "verdicts",
                vec!["client_group", "server", "service", "port", "verdict"],
            ),
            (
                "flows",
                "flows",
                vec!["client", "client_port", "server", "server_port", "state"],
            ),
        ] {
            let rows = parse_csv(&out(&["analyze", path, "-f", "csv", "--csv", table]));
            let header = &rows[0];
            let want = json[records].as_array().unwrap();
            assert_eq!(rows.len() - 1, want.len(), "{capture} {table}");
            for (row, rec) in rows[1..].iter().zip(want) {
                assert_eq!(row.len(), header.len());
                for k in &keys {
                    let at = header.iter().position(|h| h == k).unwrap();
                    let v = match &rec[*k] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    assert_eq!(row[at], v, "{capture} {table} {k}");
                }
            }
        }
    }
}

#[test]
fn zeek_conn_log_has_zeeks_header_and_one_row_per_flow() {
    for capture in CAPTURES {
        let p = shared_captures().join(capture);
        let path = path_str(&p);
        let json: Value = serde_json::from_str(&out(&["analyze", path, "-f", "json"])).unwrap();
        let log = out(&["analyze", path, "-f", "zeek"]);
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines[0], "#separator \\x09");
        assert_eq!(lines[1], "#set_separator\t,");
        assert_eq!(lines[4], "#path\tconn");
        let fields: Vec<&str> = lines[6]
            .strip_prefix("#fields\t")
            .unwrap()
            .split('\t')
            .collect();
        let types: Vec<&str> = lines[7]
            .strip_prefix("#types\t")
            .unwrap()
            .split('\t')
            .collect();
        assert_eq!(fields.len(), types.len());
        assert_eq!(
            &fields[..6],
            [
                "ts",
                "uid",
                "id.orig_h",
                "id.orig_p",
                "id.resp_h",
                "id.resp_p"
            ]
        );
        assert!(lines.last().unwrap().starts_with("#close\t"));
        let rows: Vec<Vec<&str>> = lines
            .iter()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').collect())
            .collect();
        let flows = json["flows"].as_array().unwrap();
        assert_eq!(rows.len(), flows.len(), "{capture}");
        let col = |name: &str| fields.iter().position(|f| *f == name).unwrap();
        let mut uids = std::collections::HashSet::new();
        for (r, f) in rows.iter().zip(flows) {
            assert_eq!(r.len(), fields.len());
            assert!(r[col("ts")].parse::<f64>().is_ok());
            let uid = r[col("uid")];
            assert!(uid.len() == 18 && uid.starts_with('C'), "{uid}");
            assert!(uids.insert(uid.to_string()), "uid {uid} twice");
            assert_eq!(r[col("id.orig_h")], f["client"].as_str().unwrap());
            assert_eq!(r[col("id.resp_p")], f["server_port"].to_string());
            assert_eq!(r[col("conn_state")], f["state"].as_str().unwrap());
            assert_eq!(r[col("history")], f["history"].as_str().unwrap());
            assert_eq!(r[col("orig_pkts")], f["packets"][0].to_string());
        }
    }
}

/// The dotted names of every leaf of `v` (arrays are leaves, as in ECS).
fn names(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                names(x, &name, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn ecs_records_use_only_the_documented_ecs_names() {
    let doc = std::fs::read_to_string(crate_root().join("docs/ecs.md")).unwrap();
    // The table's first column, and EVE's event_type.
    let mut known: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    known.push("event_type".into());
    assert!(known.len() > 20, "{known:?}");
    let allowed = |n: &str| {
        known
            .iter()
            .any(|k| k == n || (k.ends_with(".*") && n.starts_with(&k[..k.len() - 1])))
    };
    for capture in CAPTURES {
        let p = shared_captures().join(capture);
        let path = path_str(&p);
        let json: Value = serde_json::from_str(&out(&["analyze", path, "-f", "json"])).unwrap();
        let text = out(&["analyze", path, "-f", "ecs"]);
        let records: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let flows = records.iter().filter(|r| r["event_type"] == "flow").count();
        let alerts = records
            .iter()
            .filter(|r| r["event_type"] == "alert")
            .count();
        assert_eq!(flows, json["flows"].as_array().unwrap().len(), "{capture}");
        assert_eq!(
            alerts,
            json["findings"].as_array().unwrap().len(),
            "{capture}"
        );
        for r in &records {
            let mut found = Vec::new();
            names(r, "", &mut found);
            for n in found {
                assert!(allowed(&n), "{capture}: {n} is not in docs/ecs.md");
            }
            assert_eq!(r["ecs"]["version"], exflow::report::ECS_VERSION);
            let outcome = r["event"]["outcome"].as_str().unwrap();
            assert!(["success", "failure", "unknown"].contains(&outcome));
        }
        // A flow's outcome is the verdicts' judgement: its failed flows are
        // those --flows failed reports.
        let failed: Value =
            serde_json::from_str(&out(&["analyze", path, "-f", "json", "--flows", "failed"]))
                .unwrap();
        let ecs_failed = records
            .iter()
            .filter(|r| r["event_type"] == "flow" && r["event"]["outcome"] == "failure")
            .count();
        assert_eq!(
            ecs_failed,
            failed["flows"].as_array().unwrap().len(),
            "{capture}"
        );
    }
}
