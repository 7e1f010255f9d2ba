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

/// What every record has: its time, the ECS version, EVE's `event_type`
/// and the `event` object (`kind` "event" for a flow, "alert" for a
/// finding).
fn base(ts: crate::Ts, event_type: &str, outcome: &str) -> Value {
    let (kind, dataset) = match event_type {
        "flow" => ("event", "exflow.flow"),
        _ => ("alert", "exflow.finding"),
    };
    json!({
        "@timestamp": rfc3339_micros(ts),
        "ecs": {"version": ECS_VERSION},
        "event_type": event_type,
        "event": {
            "kind": kind,
            "category": ["network"],
            "type": ["connection"],
            "outcome": outcome,
            "module": "exflow",
            "dataset": dataset,
            "start": rfc3339_micros(ts),
        },
    })
}

/// `more`'s fields added to `v` (an object), and `more["event"]`'s to its
/// `event`.
fn with(mut v: Value, more: Value) -> Value {
    if let (Value::Object(to), Value::Object(from)) = (&mut v, more) {
        for (k, x) in from {
            match (to.get_mut(&k), x) {
                (Some(Value::Object(inner)), Value::Object(add)) => inner.extend(add),
                (_, x) => {
                    to.insert(k, x);
                }
            }
        }
    }
    v
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
        let more = json!({
            "event": {
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
        line(&mut w, &with(base(f.first_ts, "flow", outcome), more))?;
    }
    for f in &a.correlated.findings {
        let more = json!({
            "message": f.verdict,
            "rule": {"name": f.kind.as_str()},
            "destination": {"ip": f.server.to_string(), "port": f.port},
            "source": {"ip": f.clients.first().map(|c| c.to_string())},
            "network": {"transport": proto_name(f.proto), "iana_number": iana(f.proto),
                        "protocol": f.service},
            "related": {"ip": f.clients.iter().map(|c| c.to_string()).collect::<Vec<_>>()},
            "labels": {"policy": f.policy.as_str(), "confidence": f.confidence.as_str()},
        });
        let mut v = with(base(f.first_ts, "alert", "failure"), more);
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
