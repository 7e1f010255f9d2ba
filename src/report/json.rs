//! JSON and NDJSON output (schema `exflow.report/1`).

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{json, Value};

use super::proto_name;
use super::records::{write_flow, write_verdict, LineExtras};
use crate::analysis::Analysis;
use crate::capture::InputInfo;
use crate::correlate::{Correlated, Endpoint, Handoff, Outcome};
use crate::event::InterfaceId;
use crate::flow::FlowRecord;
use crate::kb;
use crate::pipeline::Stats;
use crate::taps::TapReport;
use crate::taps::TapView;
use crate::time::{rfc3339_micros, Rfc3339};
use crate::verdict::{Evidence, Finding, Fix, FixSources, SourceChoice};

pub const SCHEMA: &str = "exflow.report/1";

/// `{"uuid", "version": "major.minor", "name"}` as the contract wants.
pub(crate) fn interface_json(i: &InterfaceId) -> Value {
    json!({
        "uuid": i.uuid.to_string(),
        "version": format!("{}.{}", i.major, i.minor),
        "name": interface_name(i),
    })
}

pub(super) fn interface_name(i: &InterfaceId) -> Option<&'static str> {
    kb::interface(&i.uuid)
        .map(|c| c.name)
        .or((i.uuid == crate::proto::dcerpc::UUID_EPM).then_some("endpoint mapper"))
}

// Flows, their interfaces, hand-offs and RPC summaries are rendered per
// flow, so they are serialized straight from typed views rather than built
// as `Value` maps (one allocation per key and value, then freed): the
// output is the same bytes, the keys in `Value`'s (sorted) order.

/// A value written through its `Display`, without an intermediate `String`.
struct Shown<T>(T);

impl<T: std::fmt::Display> Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// `major.minor`.
struct Version(u16, u16);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// [`interface_json`] as a typed view.
#[derive(Serialize)]
struct JsonInterface<'a> {
    name: Option<&'static str>,
    uuid: Shown<&'a crate::proto::dcerpc::Uuid>,
    version: Shown<Version>,
}

impl<'a> JsonInterface<'a> {
    fn new(i: &'a InterfaceId) -> Self {
        JsonInterface {
            name: interface_name(i),
            uuid: Shown(&i.uuid),
            version: Shown(Version(i.major, i.minor)),
        }
    }
}

pub(super) fn ms(ns: u64) -> f64 {
    (ns / 1_000) as f64 / 1_000.0
}

/// The inputs; in a two-tap analysis each says which tap it is.
fn inputs_json(a: &Analysis) -> Vec<Value> {
    let inside = a.taps.as_ref().map_or(0, |t| t.inside_inputs.len());
    a.inputs
        .iter()
        .enumerate()
        .map(|(k, i)| {
            let mut v = input_json(i);
            if a.taps.is_some() {
                v["tap"] = (if k < inside { "inside" } else { "outside" }).into();
            }
            v
        })
        .collect()
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

fn stats_json(s: &Stats, flows: usize, inputs: &[InputInfo]) -> Value {
    let mut v = json!({
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
        "flows_not_retained": s.flows_not_retained,
        "flows_reused": s.flow.flows_reused,
        "peak_flows_tracked": s.flow.peak_tracked,
        "icmp_unmatched": s.flow.icmp_unmatched,
        "scan_probes_untracked": s.scan_probes_untracked,
        // What DCE/RPC parsing refused or dropped to stay bounded (#23).
        "dcerpc": {
            "parsed_flows": s.flow.app.rpc_flows,
            "over_cap": s.flow.app.rpc_over_cap,
            "evicted_stalled": s.flow.app.rpc_evicted_stalled,
            "evicted_over_budget": s.flow.app.rpc_evicted_over_budget,
            "pdus_refused": s.flow.app.rpc_pdus_refused,
            "bytes_peak": s.flow.app.rpc_bytes_peak,
        },
        // The same for RFC 1006 (TPKT/COTP) parsing.
        "rfc1006": {
            "parsed_flows": s.flow.app.rfc1006_flows,
            "tpkts_cut": s.flow.app.rfc1006_tpkts_cut,
            "bytes_passed": s.flow.app.rfc1006_bytes_passed,
            "holes_given_up": s.flow.app.rfc1006_holes_given_up,
            "evicted_over_budget": s.flow.app.rfc1006_evicted_over_budget,
            "bytes_peak": s.flow.app.rfc1006_bytes_peak,
        },
    });
    // Live captures only (files have no such counters, and their report
    // stays as it was).
    if inputs.iter().any(|i| i.kernel_drops.is_some()) {
        let sum = |f: fn(&InputInfo) -> Option<u64>| inputs.iter().filter_map(f).sum::<u64>();
        v["kernel_drops"] = sum(|i| i.kernel_drops).into();
        v["interface_drops"] = sum(|i| i.interface_drops).into();
    }
    v
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
        Outcome::NoAttempt
        | Outcome::CaptureEnded
        | Outcome::UdpUnanswered
        | Outcome::Superseded
        | Outcome::NotCaptured => {}
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
        "matched": matched(h),
        "matched_address": h.follow_up_at.map(|a| a.to_string()),
        "followed": h.outcome.followed(),
        "outcome": outcome_json(&h.outcome),
        "window_cut_by_capture_end": h.window_cut,
    })
}

/// Which of the hand-off's addresses the connection its outcome is about
/// went to: `tower-address` (its `server`: the tower's address, the
/// mapper's when the tower says 0.0.0.0) or `mapper-address` (the address
/// the client reached the mapper on, another one: IPv6, NAT, a virtual IP;
/// #22). `None` when no connection was seen.
fn matched(h: &Handoff) -> Option<&'static str> {
    h.follow_up_at.map(|_| {
        if h.matched_mapper_address() {
            "mapper-address"
        } else {
            "tower-address"
        }
    })
}

/// [`handoff_json`] as a typed view, for the JSON report (same bytes).
#[derive(Serialize)]
struct JsonHandoff<'a> {
    client: std::net::IpAddr,
    followed: bool,
    interface: JsonInterface<'a>,
    mapper: std::net::IpAddr,
    matched: Option<&'static str>,
    matched_address: Option<std::net::IpAddr>,
    operation: &'static str,
    outcome: Value,
    port: u16,
    proto: &'static str,
    server: std::net::IpAddr,
    service: &'static str,
    ts: Rfc3339,
    window_cut_by_capture_end: bool,
}

impl<'a> JsonHandoff<'a> {
    fn new(h: &'a Handoff) -> Self {
        JsonHandoff {
            client: h.client,
            followed: h.outcome.followed(),
            interface: JsonInterface::new(&h.interface),
            mapper: h.mapper,
            matched: matched(h),
            matched_address: h.follow_up_at,
            operation: h.operation.as_str(),
            outcome: outcome_json(&h.outcome),
            port: h.port,
            proto: h.transport.as_str(),
            server: h.server,
            service: crate::correlate::interface_service(&h.interface),
            ts: Rfc3339(h.ts),
            window_cut_by_capture_end: h.window_cut,
        }
    }
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

pub(crate) fn evidence_json(e: &Evidence) -> Value {
    let mut v = match e {
        Evidence::EpmNotRegistered {
            client,
            operation,
            status,
            ..
        } => json!({
            "client": client.to_string(),
            "operation": operation.as_str(),
            "status": format!("0x{status:08x}"),
        }),
        Evidence::SynUnanswered {
            client,
            client_port,
            syns,
            gaps_us,
            ..
        } => json!({
            "client": client.to_string(),
            "client_port": client_port,
            "syns": syns,
            "retransmissions": syns.saturating_sub(1),
            "gaps_ms": gaps_us.iter().map(|g| *g as f64 / 1000.0).collect::<Vec<_>>(),
        }),
        Evidence::Rst {
            client,
            client_port,
            ttl,
            ip_id,
            host_ttls,
            host_ip_id_zero,
            forged,
            confidence,
            reason,
            ..
        } => json!({
            "client": client.to_string(),
            "client_port": client_port,
            "ttl": ttl,
            "ip_id": ip_id,
            "host_ttls": host_ttls,
            "host_ip_id": host_ip_id_zero.map(|z| if z { "zero" } else { "counter" }),
            "forged": forged,
            "sender": match forged {
                Some(true) => "a device on the path (firewall)",
                Some(false) => "the host",
                None => "unknown",
            },
            "confidence": confidence.as_str(),
            "reason": reason,
        }),
        Evidence::IcmpUnreachable {
            client,
            client_port,
            sender,
            v6,
            icmp_type,
            code,
            meaning,
            ..
        } => json!({
            "client": client.to_string(),
            "client_port": client_port,
            "sender": sender.to_string(),
            "icmp_version": if *v6 { 6 } else { 4 },
            "icmp_type": icmp_type,
            "code": code,
            "meaning": meaning.as_str(),
        }),
        Evidence::HandoffUnfulfilled {
            client,
            mapper,
            interface,
            operation,
            ..
        } => json!({
            "client": client.to_string(),
            "mapper": mapper.to_string(),
            "interface": interface_json(interface),
            "operation": operation.as_str(),
        }),
        Evidence::CotpRefused {
            client,
            client_port,
            reason,
            ..
        } => json!({
            "client": client.to_string(),
            "client_port": client_port,
            "reason": reason,
        }),
        Evidence::UdpUnanswered {
            client,
            client_port,
            datagrams,
            ..
        } => json!({
            "client": client.to_string(),
            "client_port": client_port,
            "datagrams": datagrams,
        }),
        Evidence::DroppedBetweenTaps {
            client,
            client_port,
            direction,
            seen_on,
            missing_on,
            packets,
            ..
        } => json!({
            "client": client.to_string(),
            "client_port": client_port,
            "direction": direction,
            "seen_on": seen_on.as_str(),
            "missing_on": missing_on.as_str(),
            "packets": packets,
        }),
        Evidence::DataUnanswered {
            client,
            client_port,
            direction,
            idle_gap_ms,
            retransmissions,
            retransmitted_bytes,
            span_us,
            reset,
            ..
        } => json!({
            "client": client.to_string(),
            "client_port": client_port,
            "direction": direction,
            "idle_gap_s": *idle_gap_ms as f64 / 1000.0,
            "retransmissions": retransmissions,
            "retransmitted_bytes": retransmitted_bytes,
            "span_ms": *span_us as f64 / 1000.0,
            "reset": reset.as_deref().map(evidence_json),
        }),
        Evidence::Established {
            client,
            connections,
            ..
        } => json!({
            "client": client.to_string(),
            "connections": connections,
        }),
        Evidence::Probes {
            last_ts,
            sources,
            sources_total,
            targets,
            targets_total,
            ports,
            ports_total,
            probes,
            unanswered,
            reset,
            icmp,
            ..
        } => json!({
            "last_ts": rfc3339_micros(*last_ts),
            "sources": sources.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "sources_total": sources_total,
            "targets": targets.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "targets_total": targets_total,
            "ports": ports,
            "ports_total": ports_total,
            "probes": probes,
            "unanswered": unanswered,
            "reset": reset,
            "icmp_errors": icmp,
        }),
    };
    v["type"] = e.type_name().into();
    v["ts"] = rfc3339_micros(e.ts()).into();
    v["confidence"] = e.confidence().as_str().into();
    v
}

fn fix_json(f: &Fix) -> Value {
    let mut v = json!({
        "summary": f.summary,
        "nftables": f.nftables,
        "iptables": f.iptables,
        "pin": f.pin.iter().map(|p| json!({
            "service": p.service,
            "component": p.component,
            "registry_key": p.key,
            "value": p.value,
            "type": p.kind,
            "format": p.data,
            "exchange": p.exchange,
            "on": p.on,
            "restart": p.restart,
            "notes": p.notes,
            "article": p.article,
        })).collect::<Vec<_>>(),
        "port_advice": f.port_advice,
        "restrict_range": f.range,
        "note": f.note,
        "sources": f.sources.as_ref().map(sources_json),
    });
    // Only on killed-after-idle fixes: other reports stay as they were.
    if let Some(k) = &f.keepalive {
        v["keepalive"] = json!({
            "registry_key": k.key,
            "value": k.value,
            "type": k.kind,
            "format": k.data,
            "set_to_ms": k.set_to_ms,
            "default": k.default,
            "advice": k.advice,
            "article": k.article,
        });
    }
    v
}

/// Whom a fix's rules name and what they stand for (`added_addresses` a
/// number: exact up to 2^64, approximate beyond, where only IPv6 prefixes
/// wider than a /64 reach).
fn sources_json(s: &FixSources) -> Value {
    json!({
        "blocks": s.blocks,
        "by": s.choice.as_str(),
        "group": match &s.choice {
            SourceChoice::PolicyGroup(g) => Some(g.as_str()),
            _ => None,
        },
        "clients": s.clients,
        "exact_blocks": s.exact_blocks,
        "added_addresses": match u64::try_from(s.added_addresses) {
            Ok(n) => json!(n),
            Err(_) => json!(s.added_addresses as f64),
        },
    })
}

pub(crate) fn finding_json(f: &Finding) -> Value {
    let mut v = json!({
        "kind": f.kind,
        "proto": proto_name(f.proto),
        "server": f.server.to_string(),
        "port": f.port,
        "service": f.service,
        "services": f.services,
        "interface": f.interface.as_ref().map(interface_json),
        "clients": f.clients.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "first_ts": rfc3339_micros(f.first_ts),
        "confidence": f.confidence.as_str(),
        "evidence": f.evidence.iter().map(evidence_json).collect::<Vec<_>>(),
        "policy": f.policy,
        "policy_rule": f.policy_rule,
        "verdict": f.verdict,
        "consequence": f.consequence,
        "severity": if f.is_actionable() { "action" } else { "info" },
        "fix": f.fix.as_ref().map(fix_json).unwrap_or_else(|| json!({})),
    });
    // Only on killed-after-idle findings: other reports stay as they were.
    if let Some(e) = &f.idle_timeout {
        v["idle_timeout"] = json!({
            "killed_after_idle_s": e.killed_after_s,
            "longest_surviving_idle_s": e.longest_survived_s,
        });
    }
    v
}

fn tap_view(a: &Analysis) -> Option<&TapView> {
    a.taps.as_ref().map(|t| &t.view)
}

pub(crate) fn taps_json(t: &TapReport) -> Value {
    json!({
        "inside": t.inside_inputs,
        "outside": t.outside_inputs,
        "clock_offset_us": t.offset_ns / 1000,
        "aligned_by_connections": t.aligned_by,
        "ports": t.ports.iter().map(|p| json!({
            "server": p.server.to_string(),
            "proto": proto_name(p.proto),
            "port": p.port,
            "connections_both": p.both,
            "connections_only_inside": p.only_inside,
            "connections_only_outside": p.only_outside,
            "packets_inside": p.inside_packets,
            "packets_outside": p.outside_packets,
            "vanished": p.only_inside + p.only_outside > 0
                || p.inside_packets != p.outside_packets,
        })).collect::<Vec<_>>(),
    })
}

/// Items rendered per thread per round at most: bounds the memory of
/// parallel rendering whatever the number of items.
const RENDER_CHUNK: usize = 4096;

/// Bytes reserved per item rendered (a flow line is ~550; a vector grows
/// past the guess when needed).
const RENDER_BYTES_GUESS: usize = 640;

/// Renders `items` on all cores, in order: `element(out, k, item)` writes
/// item `k`, and each item but the last is followed by `sep`. Rounds of
/// `threads` chunks are rendered while the previous round is written, so
/// a slow output (a file, a pipe) overlaps with the rendering.
fn write_parallel<T: Sync>(
    items: &[T],
    sep: &[u8],
    w: &mut impl Write,
    element: impl Fn(&mut Vec<u8>, usize, &T) -> io::Result<()> + Sync,
) -> io::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = items.len();
    let chunk = n.div_ceil(threads).clamp(1, RENDER_CHUNK);
    let element = &element;
    let render = move |lo: usize, hi: usize, mut out: Vec<u8>| -> io::Result<Vec<u8>> {
        out.clear();
        out.reserve((hi - lo) * RENDER_BYTES_GUESS);
        for (k, item) in items.iter().enumerate().take(hi).skip(lo) {
            element(&mut out, k, item)?;
            if k + 1 < n {
                out.extend_from_slice(sep);
            }
        }
        Ok(out)
    };
    if n <= chunk {
        return w.write_all(&render(0, n, Vec::new())?);
    }
    // Written parts' buffers are handed to later chunks: fresh multi-MB
    // buffers cost a page fault per 4 KiB each time.
    let mut spare: Vec<Vec<u8>> = Vec::new();
    std::thread::scope(|sc| {
        let spawn_round = |lo: usize, spare: &mut Vec<Vec<u8>>| {
            let end = (lo + threads * chunk).min(n);
            let handles: Vec<_> = (lo..end)
                .step_by(chunk)
                .map(|a| {
                    let buf = spare.pop().unwrap_or_default();
                    sc.spawn(move || render(a, (a + chunk).min(end), buf))
                })
                .collect();
            (handles, end)
        };
        let (mut round, mut end) = spawn_round(0, &mut spare);
        while !round.is_empty() {
            let (next, next_end) = spawn_round(end, &mut spare);
            for h in round {
                let part = h
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("rendering panicked")))?;
                w.write_all(&part)?;
                spare.push(part);
            }
            (round, end) = (next, next_end);
        }
        Ok(())
    })
}

/// Renders `flows` as compact JSON objects, one per line, each line ending
/// with `sep` except the last, in order, on all cores.
fn write_flow_lines(
    flows: &[FlowRecord],
    c: &Correlated,
    taps: Option<&TapView>,
    record: Option<&'static str>,
    sep: &[u8],
    w: &mut impl Write,
) -> io::Result<()> {
    write_parallel(flows, sep, w, |out, k, f| {
        let extras = LineExtras {
            record,
            taps: taps.and_then(|t| t.per_flow.get(k)),
        };
        write_flow(out, f, &c.label(f), extras)
    })
}

/// Writes `items` as a JSON array, one compact element per line.
fn write_lines<T: Serialize + Sync>(w: &mut impl Write, items: &[T]) -> io::Result<()> {
    write_lines_with(w, items, |out, v| Ok(serde_json::to_writer(out, v)?))
}

/// [`write_lines`] with each element written into a buffer by `element`,
/// on all cores.
fn write_lines_with<T: Sync>(
    w: &mut impl Write,
    items: &[T],
    element: impl Fn(&mut Vec<u8>, &T) -> io::Result<()> + Sync,
) -> io::Result<()> {
    if items.is_empty() {
        return w.write_all(b"[]");
    }
    w.write_all(b"[\n")?;
    write_parallel(items, b",\n", w, |out, _, v| element(out, v))?;
    w.write_all(b"\n]")
}

/// Writes the whole report as one JSON object, laid out one record per
/// line (compact, fast, and still easy to grep or diff; `jq .` pretty-prints).
pub fn write_json(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    let c = &a.correlated;
    let mut w = io::BufWriter::with_capacity(1 << 18, w);
    writeln!(w, "{{\"schema\":\"{SCHEMA}\",")?;
    if !c.limits.is_empty() {
        w.write_all(b"\"limits\":")?;
        serde_json::to_writer(&mut w, &super::limits::limits_json(&c.limits))?;
        w.write_all(b",\n")?;
    }
    if !c.one_way.is_empty() {
        w.write_all(b"\"one_way\":")?;
        serde_json::to_writer(&mut w, &super::limits::one_way_json(&c.one_way))?;
        w.write_all(b",\n")?;
    }
    w.write_all(b"\"inputs\":")?;
    write_lines(&mut w, &inputs_json(a))?;
    w.write_all(b",\n\"stats\":")?;
    serde_json::to_writer(&mut w, &stats_json(&a.stats, a.flows.len(), &a.inputs))?;
    w.write_all(b",\n\"handoffs\":")?;
    write_lines_with(&mut w, &c.handoffs, |out, h| {
        Ok(serde_json::to_writer(out, &JsonHandoff::new(h))?)
    })?;
    w.write_all(b",\n\"endpoints\":")?;
    write_lines_with(&mut w, &c.endpoints, |out, e| {
        Ok(serde_json::to_writer(out, &endpoint_json(e))?)
    })?;
    w.write_all(b",\n\"flows\":")?;
    if a.flows.is_empty() {
        w.write_all(b"[]")?;
    } else {
        w.write_all(b"[\n")?;
        write_flow_lines(&a.flows, c, tap_view(a), None, b",\n", &mut w)?;
        w.write_all(b"\n]")?;
    }
    w.write_all(b",\n\"findings\":")?;
    write_lines_with(&mut w, &c.findings, |out, f| {
        Ok(serde_json::to_writer(out, &finding_json(f))?)
    })?;
    w.write_all(b",\n\"verdicts\":")?;
    write_lines_with(&mut w, &a.verdicts, |out, v| write_verdict(out, v, None))?;
    if let Some(t) = &a.taps {
        w.write_all(b",\n\"taps\":")?;
        serde_json::to_writer(&mut w, &taps_json(t))?;
    }
    w.write_all(b"}\n")?;
    w.flush()
}

/// Writes one JSON record per line, each with a `"record"` field.
pub fn write_ndjson(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(1 << 18, w);
    write_ndjson_records(a, &mut w)?;
    w.flush()
}

fn write_ndjson_records(a: &Analysis, w: &mut impl Write) -> io::Result<()> {
    for mut v in inputs_json(a) {
        v["record"] = "input".into();
        writeln!(w, "{}", v)?;
    }
    let c = &a.correlated;
    for l in &c.limits {
        let mut v = super::limits::limit_json(l);
        v["record"] = "limit".into();
        writeln!(w, "{}", v)?;
    }
    let records = c
        .handoffs
        .iter()
        .map(|h| ("handoff", handoff_json(h)))
        .chain(c.endpoints.iter().map(|e| ("endpoint", endpoint_json(e))));
    for (kind, mut v) in records {
        v["record"] = kind.into();
        writeln!(w, "{}", v)?;
    }
    if !a.flows.is_empty() {
        write_flow_lines(&a.flows, c, tap_view(a), Some("flow"), b"\n", w)?;
        w.write_all(b"\n")?;
    }
    for f in &c.findings {
        let mut v = finding_json(f);
        v["record"] = "finding".into();
        writeln!(w, "{}", v)?;
    }
    let mut out = Vec::new();
    for v in &a.verdicts {
        out.clear();
        write_verdict(&mut out, v, Some("verdict"))?;
        out.push(b'\n');
        w.write_all(&out)?;
    }
    if let Some(t) = &a.taps {
        let mut v = taps_json(t);
        v["record"] = "taps".into();
        writeln!(w, "{}", v)?;
    }
    let mut v = stats_json(&a.stats, a.flows.len(), &a.inputs);
    v["record"] = "stats".into();
    v["schema"] = SCHEMA.into();
    writeln!(w, "{}", v)
}
