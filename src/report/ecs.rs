//! NDJSON in Elastic Common Schema (ECS) field names, with Suricata EVE's
//! `event_type`, for SIEM pipelines that ingest ECS or EVE without a custom
//! parser: one record per flow (`event.kind` "event") and one per finding
//! (`event.kind` "alert"), in the report's order. Every field name is an
//! ECS field (docs/ecs.md lists them; `tests/report_formats.rs` checks each
//! emitted name against that list), plus EVE's `event_type`; exflow's own
//! words go into `labels` (ECS's place for custom keywords).

use std::io::{self, Write};

use serde_json::{json, Value};

use super::proto_name;
use crate::analysis::Analysis;
use crate::time::rfc3339_micros;

/// The ECS version these names are taken from.
pub const ECS_VERSION: &str = "8.11.0";

fn iana(proto: u8) -> String {
    proto.to_string()
}

/// Writes the flows and findings of `a` as ECS NDJSON.
pub fn write_ecs(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(1 << 18, w);
    let outcomes = a.flow_outcomes();
    for (f, o) in a.flows.iter().zip(outcomes.iter()) {
        let outcome = match o {
            Some(true) => "success",
            Some(false) => "failure",
            None => "unknown",
        };
        let service = a.correlated.label(f).service;
        let v = json!({
            "@timestamp": rfc3339_micros(f.first_ts),
            "ecs": {"version": ECS_VERSION},
            "event_type": "flow",
            "event": {
                "kind": "event",
                "category": ["network"],
                "type": ["connection"],
                "outcome": outcome,
                "module": "exflow",
                "dataset": "exflow.flow",
                "start": rfc3339_micros(f.first_ts),
                "end": rfc3339_micros(f.last_ts),
                "duration": f.last_ts.saturating_sub(f.first_ts),
            },
            "source": {"ip": f.client.to_string(), "port": f.client_port,
                       "packets": f.packets[0], "bytes": f.bytes[0]},
            "destination": {"ip": f.server.to_string(), "port": f.server_port,
                            "packets": f.packets[1], "bytes": f.bytes[1]},
            "network": {
                "transport": proto_name(f.proto),
                "iana_number": iana(f.proto),
                "protocol": service,
                "packets": f.packets[0] + f.packets[1],
                "bytes": f.bytes[0] + f.bytes[1],
            },
            "labels": {"conn_state": f.state.as_str(), "history": f.history.as_str()},
        });
        line(&mut w, &v)?;
    }
    for f in &a.correlated.findings {
        let v = json!({
            "@timestamp": rfc3339_micros(f.first_ts),
            "ecs": {"version": ECS_VERSION},
            "event_type": "alert",
            "event": {
                "kind": "alert",
                "category": ["network"],
                "type": ["connection"],
                "outcome": "failure",
                "module": "exflow",
                "dataset": "exflow.finding",
                "start": rfc3339_micros(f.first_ts),
            },
            "message": f.verdict,
            "rule": {"name": f.kind.as_str()},
            "destination": {"ip": f.server.to_string(), "port": f.port},
            "source": {"ip": f.clients.first().map(|c| c.to_string())},
            "network": {"transport": proto_name(f.proto), "iana_number": iana(f.proto),
                        "protocol": f.service},
            "related": {"ip": f.clients.iter().map(|c| c.to_string()).collect::<Vec<_>>()},
            "labels": {"policy": f.policy.as_str(), "confidence": f.confidence.as_str()},
        });
        let mut v = v;
        if let Some(fix) = &f.fix {
            v["labels"]["fix"] = fix.summary.clone().into();
        }
        line(&mut w, &v)?;
    }
    w.flush()
}

fn line(w: &mut impl Write, v: &Value) -> io::Result<()> {
    serde_json::to_writer(&mut *w, v)?;
    w.write_all(b"\n")
}
