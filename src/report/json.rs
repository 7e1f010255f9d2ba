//! JSON and NDJSON output (schema `exflow.report/1`).

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{json, Value};

use super::{flow_service, proto_name};
use crate::capture::InputInfo;
use crate::flow::FlowRecord;
use crate::pipeline::{Analysis, Stats};
use crate::time::rfc3339_micros;

pub const SCHEMA: &str = "exflow.report/1";

#[derive(Serialize)]
struct JsonFlow<'a> {
    proto: &'static str,
    client: String,
    client_port: u16,
    server: String,
    server_port: u16,
    first_ts: String,
    last_ts: String,
    service: &'static str,
    identified_by: &'static str,
    state: &'static str,
    history: &'a str,
    syn_retries: u32,
    syn_gaps_ms: Vec<f64>,
    packets: [u64; 2],
    bytes: [u64; 2],
    payload_bytes: [u64; 2],
    responder_ttl: Option<u8>,
    responder_ip_id: Option<u16>,
    icmp_errors: Vec<Value>,
    icmp_error_count: u32,
    end: &'static str,
}

fn flow_json(f: &FlowRecord) -> JsonFlow<'_> {
    let (service, identified_by) = flow_service(f);
    JsonFlow {
        proto: proto_name(f.proto),
        client: f.client.to_string(),
        client_port: f.client_port,
        server: f.server.to_string(),
        server_port: f.server_port,
        first_ts: rfc3339_micros(f.first_ts),
        last_ts: rfc3339_micros(f.last_ts),
        service,
        identified_by,
        state: f.state.as_str(),
        history: &f.history,
        syn_retries: f.syn_retries,
        syn_gaps_ms: f.syn_gaps_us.iter().map(|g| *g as f64 / 1000.0).collect(),
        packets: f.packets,
        bytes: f.bytes,
        payload_bytes: f.payload_bytes,
        responder_ttl: f.responder_ttl,
        responder_ip_id: f.responder_ip_id,
        icmp_errors: f
            .icmp
            .iter()
            .map(|e| {
                json!({
                    "ts": rfc3339_micros(e.ts),
                    "sender": e.sender.to_string(),
                    "icmp_version": if e.v6 { 6 } else { 4 },
                    "type": e.icmp_type,
                    "code": e.code,
                    "quotes_originator": e.quotes_originator,
                })
            })
            .collect(),
        icmp_error_count: f.icmp_count,
        end: match f.end {
            crate::flow::FlowEnd::EndOfCapture => "end-of-capture",
            crate::flow::FlowEnd::IdleTimeout => "idle-timeout",
            crate::flow::FlowEnd::Evicted => "evicted",
            crate::flow::FlowEnd::Reused => "reused",
        },
    }
}

fn input_json(i: &InputInfo) -> Value {
    json!({
        "path": i.path,
        "format": i.format,
        "link_type": i.link_types.first().map(|l| l.name()).unwrap_or_else(|| "none".into()),
        "link_types": i.link_types.iter().map(|l| l.name()).collect::<Vec<_>>(),
        "packets": i.packets,
        "packets_matched": i.packets_matched,
        "bytes": i.bytes,
        "first_ts": i.first_ts.map(rfc3339_micros),
        "last_ts": i.last_ts.map(rfc3339_micros),
        "snaplen_truncated": i.snaplen_truncated,
        "complete": i.problem.is_none(),
        "problem": i.problem.as_ref().map(|p| json!({"offset": p.offset, "message": p.message})),
    })
}

fn stats_json(s: &Stats, flows: usize) -> Value {
    json!({
        "packets": s.packets,
        "bytes": s.bytes,
        "flows": flows,
        "decode_errors": s.decode_errors,
        "tcp_packets": s.tcp_packets,
        "udp_packets": s.udp_packets,
        "icmp_packets": s.icmp_packets,
        "other_ip_packets": s.other_ip_packets,
        "snaplen_truncated": s.snaplen_truncated,
        "fragments": serde_json::to_value(s.fragments).unwrap_or(Value::Null),
        "flows_timed_out": s.flow.flows_timed_out,
        "flows_evicted": s.flow.flows_evicted,
        "flows_reused": s.flow.flows_reused,
        "peak_flows_tracked": s.flow.peak_tracked,
        "icmp_unmatched": s.flow.icmp_unmatched,
    })
}

/// Serializes flows lazily, one at a time, so a large report is streamed
/// to the writer instead of being built in memory first.
struct Flows<'a>(&'a [FlowRecord]);

impl Serialize for Flows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(flow_json))
    }
}

#[derive(Serialize)]
struct Report<'a> {
    schema: &'static str,
    inputs: Vec<Value>,
    stats: Value,
    handoffs: [Value; 0],
    endpoints: [Value; 0],
    flows: Flows<'a>,
    findings: [Value; 0],
}

/// Writes the whole report as one pretty-printed JSON object.
pub fn write_json(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    let report = Report {
        schema: SCHEMA,
        inputs: a.inputs.iter().map(input_json).collect(),
        stats: stats_json(&a.stats, a.flows.len()),
        handoffs: [],
        endpoints: [],
        flows: Flows(&a.flows),
        findings: [],
    };
    serde_json::to_writer_pretty(&mut *w, &report)?;
    writeln!(w)
}

/// Writes one JSON record per line, each with a `"record"` field.
pub fn write_ndjson(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    for i in &a.inputs {
        let mut v = input_json(i);
        v["record"] = "input".into();
        writeln!(w, "{}", v)?;
    }
    for f in &a.flows {
        let mut v = serde_json::to_value(flow_json(f))?;
        v["record"] = "flow".into();
        writeln!(w, "{}", v)?;
    }
    let mut v = stats_json(&a.stats, a.flows.len());
    v["record"] = "stats".into();
    v["schema"] = SCHEMA.into();
    writeln!(w, "{}", v)
}
