//! JSON and NDJSON output (schema `exflow.report/1`).

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{json, Value};

use super::proto_name;
use crate::capture::InputInfo;
use crate::correlate::{Endpoint, Evidence, Finding, FlowLabel, Handoff, Outcome};
use crate::event::InterfaceId;
use crate::flow::FlowRecord;
use crate::pipeline::{Analysis, Stats};
use crate::proto::catalog;
use crate::proto::rpc_conn::RpcSummary;
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
    interface: Option<Value>,
    handoff: Option<Value>,
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
    rpc: Option<Value>,
    end: &'static str,
}

/// `{"uuid", "version": "major.minor", "name"}` as the contract wants.
pub(crate) fn interface_json(i: &InterfaceId) -> Value {
    json!({
        "uuid": i.uuid.to_string(),
        "version": format!("{}.{}", i.major, i.minor),
        "name": catalog::lookup(&i.uuid).map(|c| c.name).or(
            (i.uuid == crate::proto::dcerpc::UUID_EPM).then_some("endpoint mapper")
        ),
    })
}

fn ms(ns: u64) -> f64 {
    (ns / 1_000) as f64 / 1_000.0
}

fn rpc_json(r: &RpcSummary) -> Value {
    json!({
        "interfaces": r.interfaces.iter().map(|b| {
            let mut v = interface_json(&b.interface);
            v["accepted"] = b.accepted.into();
            v["transfer_syntax"] = (if b.ndr64 { "ndr64" } else { "ndr" }).into();
            v
        }).collect::<Vec<_>>(),
        "auth_type": r.auth_type,
        "auth_level": r.auth_level,
        "encrypted": r.encrypted,
        "pdus": r.pdus,
        "requests": r.requests,
        "faults": r.faults,
        "binds_rejected": r.binds_rejected,
        "epm_answers": r.epm_answers,
        "malformed_pdus": r.malformed,
        "stream_gaps": r.stream_gaps,
        "resyncs": r.resyncs,
        "bytes_skipped": r.bytes_skipped,
    })
}

fn flow_json<'a>(f: &'a FlowRecord, label: &FlowLabel) -> JsonFlow<'a> {
    JsonFlow {
        proto: proto_name(f.proto),
        client: f.client.to_string(),
        client_port: f.client_port,
        server: f.server.to_string(),
        server_port: f.server_port,
        first_ts: rfc3339_micros(f.first_ts),
        last_ts: rfc3339_micros(f.last_ts),
        service: label.service,
        identified_by: label.identified_by,
        interface: label.interface.as_ref().map(interface_json),
        handoff: label.handoff.map(|h| {
            json!({
                "ts": rfc3339_micros(h.ts),
                "client": h.client.to_string(),
                "latency_ms": ms(h.latency),
                "other_client": h.other_client,
            })
        }),
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
        rpc: f.rpc.as_ref().map(rpc_json),
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
struct Flows<'a>(&'a [FlowRecord], &'a [FlowLabel]);

impl Serialize for Flows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().zip(self.1).map(|(f, l)| flow_json(f, l)))
    }
}

fn outcome_json(o: &Outcome) -> Value {
    let mut v = json!({ "kind": o.kind() });
    match o {
        Outcome::Followed {
            latency,
            client_port,
        } => {
            v["latency_ms"] = ms(*latency).into();
            v["client_port"] = (*client_port).into();
        }
        Outcome::SynUnanswered { attempts, syns } => {
            v["attempts"] = (*attempts).into();
            v["syns"] = (*syns).into();
        }
        Outcome::Reset { attempts, ttl } => {
            v["attempts"] = (*attempts).into();
            v["rst_ttl"] = json!(ttl);
        }
        Outcome::IcmpUnreachable {
            sender,
            v6,
            icmp_type,
            code,
        } => {
            v["sender"] = sender.to_string().into();
            v["icmp_version"] = (if *v6 { 6 } else { 4 }).into();
            v["type"] = (*icmp_type).into();
            v["code"] = (*code).into();
        }
        Outcome::ExistingConnection { client_port } => {
            v["client_port"] = (*client_port).into();
        }
        Outcome::NoAttempt | Outcome::UdpUnanswered => {}
    }
    v
}

pub(crate) fn handoff_json(h: &Handoff) -> Value {
    json!({
        "ts": rfc3339_micros(h.ts),
        "client": h.client.to_string(),
        "server": h.server.to_string(),
        "proto": h.transport.as_str(),
        "port": h.port,
        "interface": interface_json(&h.interface),
        "service": crate::correlate::interface_service(&h.interface),
        "operation": h.operation.as_str(),
        "mapper": h.mapper.to_string(),
        "followed": h.outcome.followed(),
        "outcome": outcome_json(&h.outcome),
        "window_cut_by_capture_end": h.window_cut,
    })
}

pub(crate) fn endpoint_json(e: &Endpoint) -> Value {
    json!({
        "server": e.server.to_string(),
        "proto": e.transport.as_str(),
        "port": e.port,
        "interface": e.interface.as_ref().map(interface_json),
        "annotation": e.annotation,
        "first_ts": rfc3339_micros(e.first_ts),
    })
}

pub(crate) fn finding_json(f: &Finding) -> Value {
    let name = f
        .interface
        .as_ref()
        .and_then(|i| catalog::lookup(&i.uuid))
        .map(|c| c.name.to_string())
        .or_else(|| f.interface.map(|i| i.uuid.to_string()))
        .unwrap_or_else(|| "the requested interface".into());
    json!({
        "kind": f.kind,
        "proto": proto_name(f.proto),
        "server": f.server.to_string(),
        "port": f.port,
        "service": f.service,
        "interface": f.interface.as_ref().map(interface_json),
        "clients": f.clients.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "first_ts": rfc3339_micros(f.first_ts),
        "evidence": f.evidence.iter().map(|e| match e {
            Evidence::EpmNotRegistered { ts, client, operation, status } => json!({
                "type": "epm-not-registered",
                "ts": rfc3339_micros(*ts),
                "client": client.to_string(),
                "operation": operation.as_str(),
                "status": format!("0x{status:08x}"),
            }),
        }).collect::<Vec<_>>(),
        "policy": "unspecified",
        "fix": {
            "summary": format!(
                "{} is not registered with the endpoint mapper on {}: start the service that provides it there, or point the clients at a server that runs it",
                name, f.server
            ),
        },
    })
}

#[derive(Serialize)]
struct Report<'a> {
    schema: &'static str,
    inputs: Vec<Value>,
    stats: Value,
    handoffs: Vec<Value>,
    endpoints: Vec<Value>,
    flows: Flows<'a>,
    findings: Vec<Value>,
}

/// Writes the whole report as one pretty-printed JSON object.
pub fn write_json(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    let report = Report {
        schema: SCHEMA,
        inputs: a.inputs.iter().map(input_json).collect(),
        stats: stats_json(&a.stats, a.flows.len()),
        handoffs: a.correlated.handoffs.iter().map(handoff_json).collect(),
        endpoints: a.correlated.endpoints.iter().map(endpoint_json).collect(),
        flows: Flows(&a.flows, &a.correlated.labels),
        findings: a.correlated.findings.iter().map(finding_json).collect(),
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
    let c = &a.correlated;
    let records = c
        .handoffs
        .iter()
        .map(|h| ("handoff", handoff_json(h)))
        .chain(c.endpoints.iter().map(|e| ("endpoint", endpoint_json(e))));
    for (kind, mut v) in records {
        v["record"] = kind.into();
        writeln!(w, "{}", v)?;
    }
    for (f, l) in a.flows.iter().zip(&c.labels) {
        let mut v = serde_json::to_value(flow_json(f, l))?;
        v["record"] = "flow".into();
        writeln!(w, "{}", v)?;
    }
    for f in &c.findings {
        let mut v = finding_json(f);
        v["record"] = "finding".into();
        writeln!(w, "{}", v)?;
    }
    let mut v = stats_json(&a.stats, a.flows.len());
    v["record"] = "stats".into();
    v["schema"] = SCHEMA.into();
    writeln!(w, "{}", v)
}
