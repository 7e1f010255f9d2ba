//! The report contract (docs/report-contract.md) as JSON Schemas generated
//! from the record types of `src/report/schema.rs`:
//!
//! * docs/report.schema.json, the JSON report (`analyze --format json`);
//! * docs/record.schema.json, one NDJSON record (`--format ndjson`) or
//!   live stream record (`exflow live`).
//!
//! The files are checked in; this test regenerates them and fails when
//! they differ from the types. To update them after changing a record:
//! `EXFLOW_UPDATE_SCHEMA=1 cargo test --release --test schema`.
//!
//! Then every report of every capture (../shared/captures, lab and public,
//! and pcaps/; one input and two taps) is validated against them, with
//! every object closed (`additionalProperties: false` added where the
//! types list the properties): the output must be exactly the types,
//! including the rows the byte writer writes by hand.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// The generated schema as its file holds it.
fn pretty(schema: &schemars::Schema) -> String {
    let mut s = serde_json::to_string_pretty(schema).unwrap();
    s.push('\n');
    s
}

fn generated() -> [(&'static str, String); 2] {
    [
        (
            "report.schema.json",
            pretty(&exflow::report::report_schema()),
        ),
        (
            "record.schema.json",
            pretty(&exflow::report::record_schema()),
        ),
    ]
}

#[test]
fn checked_in_schemas_are_generated_from_the_types() {
    let update = std::env::var_os("EXFLOW_UPDATE_SCHEMA").is_some();
    for (name, text) in generated() {
        let path = crate_root().join("docs").join(name);
        if update {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "{} is not what the record types generate: run \
             EXFLOW_UPDATE_SCHEMA=1 cargo test --release --test schema \
             and commit it (with docs/report-contract.md updated)",
            path.display()
        );
    }
}

/// `schema` with every object that lists its properties closed.
fn closed(mut schema: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if m.contains_key("properties") && !m.contains_key("additionalProperties") {
                    m.insert("additionalProperties".into(), Value::Bool(false));
                }
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut schema);
    schema
}

/// The two schemas, compiled (closed).
struct Validator {
    schemas: boon::Schemas,
    report: boon::SchemaIndex,
    record: boon::SchemaIndex,
}

impl Validator {
    fn new() -> Validator {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        let mut index = Vec::new();
        for (name, text) in generated() {
            let url = format!("urn:exflow:{name}");
            let value = closed(serde_json::from_str(&text).unwrap());
            compiler.add_resource(&url, value).unwrap();
            index.push(compiler.compile(&url, &mut schemas).unwrap());
        }
        Validator {
            schemas,
            report: index[0],
            record: index[1],
        }
    }

    fn check(&self, what: &str, v: &Value, index: boon::SchemaIndex) {
        if let Err(e) = self.schemas.validate(v, index) {
            panic!("{what} does not match the schema: {e:#}");
        }
    }
}

/// Every capture: lab, public, pcaps/.
fn captures() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".pcap") || n.ends_with(".cap"))
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&shared_captures(), &mut out);
    walk(&crate_root().join("pcaps"), &mut out);
    out.sort();
    assert!(out.len() > 40, "found only {} captures", out.len());
    out
}

/// `exflow analyze -f FORMAT ARGS`'s output (exit 0, 1 or 3).
fn analyze(format: &str, args: &[&str]) -> String {
    let mut all = vec!["analyze", "--format", format];
    all.extend_from_slice(args);
    let out = run(&all);
    assert!(
        matches!(out.status.code(), Some(0 | 1 | 3)),
        "exflow {all:?}: {}",
        stderr(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The JSON report and every NDJSON record of `args` validate.
fn validate(v: &Validator, what: &str, args: &[&str]) -> usize {
    let report: Value = serde_json::from_str(&analyze("json", args)).unwrap();
    v.check(&format!("{what}: the JSON report"), &report, v.report);
    let ndjson = analyze("ndjson", args);
    let mut lines = 0;
    for (k, line) in ndjson.lines().enumerate() {
        let record: Value = serde_json::from_str(line).unwrap();
        v.check(&format!("{what}: NDJSON line {}", k + 1), &record, v.record);
        lines += 1;
    }
    lines
}

#[test]
fn every_report_of_every_capture_matches_the_schema() {
    let v = Validator::new();
    let mut records = 0;
    let paths = captures();
    for p in &paths {
        let path = path_str(p);
        records += validate(&v, path, &[path]);
    }
    // Two taps: each lab scenario's client and server captures.
    let lab = shared_captures().join("lab");
    let mut two_tap = 0;
    for d in std::fs::read_dir(&lab).unwrap().flatten() {
        let files: Vec<PathBuf> = std::fs::read_dir(d.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        let pick = |role: &str| {
            files
                .iter()
                .filter(|f| path_str(f).contains(role) && path_str(f).contains(".pcap"))
                .min()
                .cloned()
        };
        if let (Some(i), Some(o)) = (pick("client"), pick("server")) {
            let args = ["--inside", path_str(&i), "--outside", path_str(&o)];
            records += validate(&v, &format!("two taps {}", d.path().display()), &args);
            two_tap += 1;
        }
    }
    assert!(two_tap > 5, "only {two_tap} two-tap scenarios");
    assert!(records > 1000, "only {records} NDJSON records validated");
    // Reports that carry fewer flows (`--flows`), with stats.flows_reported.
    for p in paths.iter().filter(|p| path_str(p).contains("/lab/")) {
        for which in ["failed", "none"] {
            let path = path_str(p);
            validate(
                &v,
                &format!("{path} --flows {which}"),
                &[path, "--flows", which],
            );
        }
    }
}

#[test]
fn the_validator_refuses_what_the_types_do_not_write() {
    let v = Validator::new();
    let path = path_str(&captures()[0]).to_string();
    let report: Value = serde_json::from_str(&analyze("json", &[&path])).unwrap();
    v.check("the report", &report, v.report);
    let refused = |what: &str, change: &dyn Fn(&mut Value)| {
        let mut bad = report.clone();
        change(&mut bad);
        assert!(
            v.schemas.validate(&bad, v.report).is_err(),
            "a report with {what} passed"
        );
    };
    refused("a field no type has", &|r| {
        r["stats"]["not_in_the_contract"] = 1.into();
    });
    refused("a required field missing", &|r| {
        r["stats"].as_object_mut().unwrap().remove("packets");
    });
    refused("a string for a number", &|r| {
        r["stats"]["flows"] = "1".into()
    });
    refused("no schema name", &|r| {
        r.as_object_mut().unwrap().remove("schema");
    });
}
