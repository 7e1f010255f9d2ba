//! JSON and NDJSON output (schema `exflow.report/1`).

use std::io::{self, Write};

use serde::Serialize;

use super::evidence::evidence;
use super::proto_name;
use super::records::{write_flow, write_verdict, LineExtras};
use super::schema;
use crate::analysis::Analysis;
use crate::capture::InputInfo;
use crate::correlate::{Correlated, Endpoint, Handoff, Outcome};
use crate::event::InterfaceId;
use crate::flow::FlowRecord;
use crate::kb;
use crate::pipeline::Stats;
use crate::taps::TapReport;
use crate::taps::TapView;
use crate::time::Rfc3339;
use crate::verdict::{Finding, Fix, FixSources, SourceChoice};

pub const SCHEMA: &str = "exflow.report/1";

pub(super) fn interface_name(i: &InterfaceId) -> Option<&'static str> {
    kb::interface(&i.uuid)
        .map(|c| c.name)
        .or((i.uuid == crate::proto::dcerpc::UUID_EPM).then_some("endpoint mapper"))
}

pub(super) fn ms(ns: u64) -> f64 {
    (ns / 1_000) as f64 / 1_000.0
}

/// The inputs; in a two-tap analysis each says which tap it is.
fn inputs<'a>(a: &'a Analysis, record: Option<&'static str>) -> Vec<schema::Input<'a>> {
    let inside = a.taps.as_ref().map_or(0, |t| t.inside_inputs.len());
    a.inputs
        .iter()
        .enumerate()
        .map(|(k, i)| schema::Input {
            tap: a
                .taps
                .as_ref()
                .map(|_| if k < inside { "inside" } else { "outside" }),
            record,
            ..input(i)
        })
        .collect()
}

fn input(i: &InputInfo) -> schema::Input<'_> {
    schema::Input {
        bytes: i.bytes,
        complete: i.problem.is_none(),
        first_ts: i.first_ts.map(Rfc3339),
        format: &i.format,
        last_ts: i.last_ts.map(Rfc3339),
        link_type: i
            .link_types
            .first()
            .map(|l| l.name())
            .unwrap_or_else(|| "none".into()),
        link_types: i.link_types.iter().map(|l| l.name()).collect(),
        packets: i.packets,
        packets_matched: i.packets_matched,
        path: &i.path,
        problem: i.problem.as_ref().map(|p| schema::InputProblem {
            message: &p.message,
            offset: p.offset,
        }),
        record: None,
        snaplen_truncated: i.snaplen_truncated,
        tap: None,
    }
}

fn stats<'a>(s: &'a Stats, flows: usize, inputs: &[InputInfo]) -> schema::Stats<'a> {
    // Live captures only (files have no such counters, and their report
    // stays as it was).
    let live = inputs.iter().any(|i| i.kernel_drops.is_some());
    let sum =
        |f: fn(&InputInfo) -> Option<u64>| live.then(|| inputs.iter().filter_map(f).sum::<u64>());
    let (app, fr) = (&s.flow.app, &s.fragments);
    schema::Stats {
        bytes: s.bytes,
        // What DCE/RPC parsing refused or dropped to stay bounded (#23).
        dcerpc: schema::DcerpcStats {
            bytes_peak: app.rpc_bytes_peak,
            evicted_over_budget: app.rpc_evicted_over_budget,
            evicted_stalled: app.rpc_evicted_stalled,
            over_cap: app.rpc_over_cap,
            parsed_flows: app.rpc_flows,
            pdus_refused: app.rpc_pdus_refused,
        },
        decode_errors: &s.decode_errors,
        flows,
        flows_evicted: s.flow.flows_evicted,
        flows_not_retained: s.flows_not_retained,
        flows_reported: None,
        flows_reused: s.flow.flows_reused,
        flows_timed_out: s.flow.flows_timed_out,
        fragments: schema::FragmentStats {
            datagrams_reassembled: fr.datagrams_reassembled,
            dropped_bad: fr.dropped_bad,
            dropped_cap: fr.dropped_cap,
            dropped_overlap: fr.dropped_overlap,
            dropped_timeout: fr.dropped_timeout,
            dropped_truncated: fr.dropped_truncated,
            fragments_seen: fr.fragments_seen,
            incomplete_at_end: fr.incomplete_at_end,
            incomplete_with_first: fr.incomplete_with_first,
            lost_unmatched: s.flow.fragments_lost_unmatched,
            overlapping_fragments: fr.overlapping_fragments,
        },
        icmp_packets: s.icmp_packets,
        icmp_unmatched: s.flow.icmp_unmatched,
        interface_drops: sum(|i| i.interface_drops),
        kernel_drops: sum(|i| i.kernel_drops),
        other_ip_packets: s.other_ip_packets,
        packets: s.packets,
        peak_flows_tracked: s.flow.peak_tracked,
        record: None,
        rfc1006: schema::Rfc1006Stats {
            bytes_passed: app.rfc1006_bytes_passed,
            bytes_peak: app.rfc1006_bytes_peak,
            evicted_over_budget: app.rfc1006_evicted_over_budget,
            evicted_stalled: app.rfc1006_evicted_stalled,
            over_cap: app.rfc1006_over_cap,
            holes_given_up: app.rfc1006_holes_given_up,
            parsed_flows: app.rfc1006_flows,
            tpkts_cut: app.rfc1006_tpkts_cut,
        },
        scan_probes_untracked: s.scan_probes_untracked,
        smb: schema::SmbStats {
            encrypted_flows: app.smb_encrypted_flows,
            encrypted_messages: app.smb_encrypted_messages,
            over_cap: app.smb_over_cap,
            parsed_flows: app.smb_flows,
            pipe_messages_refused: app.smb_pipe_messages_refused,
            pipes: app.smb_pipes,
            pipes_over_cap: app.smb_pipes_over_cap,
            requests_dropped: app.smb_requests_dropped,
        },
        schema: None,
        snaplen_truncated: s.snaplen_truncated,
        tcp_packets: s.tcp_packets,
        udp_packets: s.udp_packets,
    }
}

fn outcome(o: &Outcome) -> schema::Outcome {
    let kind = o.kind();
    match *o {
        Outcome::Followed {
            latency,
            client_port,
        } => schema::Outcome::Followed {
            client_port,
            kind,
            latency_ms: ms(latency),
        },
        Outcome::SynUnanswered { attempts, syns } => schema::Outcome::SynUnanswered {
            attempts,
            kind,
            syns,
        },
        Outcome::Reset { attempts, ttl } => schema::Outcome::Reset {
            attempts,
            kind,
            rst_ttl: ttl,
        },
        Outcome::IcmpUnreachable {
            sender,
            v6,
            icmp_type,
            code,
        } => schema::Outcome::IcmpUnreachable {
            code,
            icmp_version: if v6 { 6 } else { 4 },
            kind,
            sender,
            r#type: icmp_type,
        },
        Outcome::ExistingConnection { client_port } => {
            schema::Outcome::ExistingConnection { client_port, kind }
        }
        Outcome::NoAttempt
        | Outcome::CaptureEnded
        | Outcome::UdpUnanswered
        | Outcome::Superseded
        | Outcome::NotCaptured
        | Outcome::Sealed => schema::Outcome::Other { kind },
    }
}

/// Which of the hand-off's addresses the connection its outcome is about
/// went to: `tower-address` (its `server`: the tower's address, the
/// mapper's when the tower says 0.0.0.0) or `mapper-address` (the address
/// the client reached the mapper on, another one: IPv6, NAT, a virtual IP;
/// #22). `None` when no connection was seen.
fn matched(h: &Handoff) -> Option<&'static str> {
    h.follow_up_at.map(|_| {
        if h.any_address() {
            "any-address"
        } else if h.by_name() {
            "answering-host"
        } else if h.matched_mapper_address() {
            "mapper-address"
        } else {
            "tower-address"
        }
    })
}

/// A hand-off as the report and the live stream write it.
pub(crate) fn handoff(h: &Handoff, record: Option<&'static str>) -> schema::Handoff {
    schema::Handoff {
        client: h.client,
        followed: h.outcome.followed(),
        inferred: h.sealed().then_some(h.inferred()),
        interface: schema::Interface::new(&h.interface),
        mapper: h.mapper,
        matched: matched(h),
        matched_address: h.follow_up_at,
        operation: h.operation.as_str(),
        outcome: outcome(&h.outcome),
        port: h.port,
        proto: h.transport.as_str(),
        record,
        sealed: h.sealed().then_some(true),
        server: h.server,
        service: h.service(),
        rpc_proxy: h.proxy.as_ref().map(|p| schema::RpcProxy {
            backend: p.backend.clone(),
            method: match h.operation {
                crate::event::EpmOperation::RpcProxy(c) => c.method(),
                _ => "",
            },
            requested_by: p.requested_by,
        }),
        string_bindings: h
            .dcom
            .as_ref()
            .filter(|d| !d.sealed)
            .map(|d| d.bindings.clone()),
        transport: h.carrier.as_str(),
        ts: Rfc3339(h.ts),
        window_cut_by_capture_end: h.window_cut,
    }
}

fn endpoint<'a>(e: &'a Endpoint, record: Option<&'static str>) -> schema::Endpoint<'a> {
    schema::Endpoint {
        annotation: e.annotation.as_deref(),
        first_ts: Rfc3339(e.first_ts),
        interface: e.interface.as_ref().map(schema::Interface::new),
        port: e.port,
        proto: e.transport.as_str(),
        record,
        server: e.server,
    }
}

fn fix(f: &Fix) -> schema::Fix<'_> {
    schema::Fix {
        // Only on pmtu-black-hole and Kerberos fragments-dropped fixes.
        host_setting: f.host_setting.as_ref().map(|h| schema::HostSetting {
            advice: h.advice,
            article: h.article,
            default: h.default,
            format: h.data,
            on: &h.on,
            registry_key: &h.key,
            restart: h.restart,
            set_to: h.set_to,
            r#type: h.kind,
            value: h.value,
        }),
        iptables: &f.iptables,
        // Only on killed-after-idle fixes.
        keepalive: f.keepalive.as_ref().map(|k| schema::Keepalive {
            advice: k.advice,
            article: k.article,
            default: k.default,
            format: k.data,
            registry_key: &k.key,
            set_to_ms: k.set_to_ms,
            r#type: k.kind,
            value: k.value,
        }),
        nftables: &f.nftables,
        note: f.note.as_deref(),
        pin: f
            .pin
            .iter()
            .map(|p| schema::Pin {
                article: p.article,
                component: &p.component,
                exchange: p.exchange.as_deref(),
                format: p.data,
                notes: &p.notes,
                on: &p.on,
                registry_key: &p.key,
                restart: p.restart,
                service: p.service,
                r#type: p.kind,
                value: &p.value,
            })
            .collect(),
        port_advice: f.port_advice,
        restrict_range: f.range.as_deref(),
        sources: f.sources.as_ref().map(sources),
        summary: &f.summary,
    }
}

/// Whom a fix's rules name and what they stand for (`added_addresses` a
/// number: exact up to 2^64, approximate beyond, where only IPv6 prefixes
/// wider than a /64 reach).
fn sources(s: &FixSources) -> schema::FixSources<'_> {
    schema::FixSources {
        added_addresses: match u64::try_from(s.added_addresses) {
            Ok(n) => schema::Count::Exact(n),
            Err(_) => schema::Count::Approximate(s.added_addresses as f64),
        },
        blocks: &s.blocks,
        by: s.choice.as_str(),
        clients: s.clients,
        exact_blocks: s.exact_blocks,
        group: match &s.choice {
            SourceChoice::PolicyGroup(g) => Some(g.as_str()),
            _ => None,
        },
    }
}

/// A finding as the report and the live stream write it.
pub(crate) fn finding<'a>(f: &'a Finding, record: Option<&'static str>) -> schema::Finding<'a> {
    schema::Finding {
        clients: &f.clients,
        confidence: f.confidence.as_str(),
        consequence: f.consequence,
        evidence: f.evidence.iter().map(evidence).collect(),
        first_ts: Rfc3339(f.first_ts),
        fix: match &f.fix {
            Some(x) => schema::MaybeFix::Fix(Box::new(fix(x))),
            None => schema::MaybeFix::None(schema::NoFix {}),
        },
        // Only on killed-after-idle findings.
        idle_timeout: f.idle_timeout.as_ref().map(|e| schema::IdleTimeout {
            killed_after_idle_s: e.killed_after_s,
            longest_surviving_idle_s: e.longest_survived_s,
        }),
        interface: f.interface.as_ref().map(schema::Interface::new),
        kind: f.kind,
        policy: f.policy,
        policy_rule: f.policy_rule.as_deref(),
        port: f.port,
        proto: proto_name(f.proto),
        record,
        server: f.server,
        service: f.service,
        services: &f.services,
        severity: if f.is_actionable() { "action" } else { "info" },
        verdict: &f.verdict,
    }
}

fn tap_view(a: &Analysis) -> Option<&TapView> {
    a.taps.as_ref().map(|t| &t.view)
}

fn taps<'a>(t: &'a TapReport, record: Option<&'static str>) -> schema::Taps<'a> {
    schema::Taps {
        aligned_by_connections: t.aligned_by,
        clock_offset_us: t.offset_ns / 1000,
        inside: &t.inside_inputs,
        outside: &t.outside_inputs,
        ports: t
            .ports
            .iter()
            .map(|p| schema::TapPort {
                connections_both: p.both,
                connections_only_inside: p.only_inside,
                connections_only_outside: p.only_outside,
                packets_inside: p.inside_packets,
                packets_outside: p.outside_packets,
                port: p.port,
                proto: proto_name(p.proto),
                server: p.server,
                vanished: p.only_inside + p.only_outside > 0
                    || p.inside_packets != p.outside_packets,
            })
            .collect(),
        record,
    }
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

/// Renders `flows` (or those of `picked`, by index) as compact JSON
/// objects, one per line, each line ending with `sep` except the last, in
/// order, on all cores.
fn write_flow_lines(
    flows: &[FlowRecord],
    picked: Option<&[usize]>,
    c: &Correlated,
    taps: Option<&TapView>,
    record: Option<&'static str>,
    sep: &[u8],
    w: &mut impl Write,
) -> io::Result<()> {
    let line = |out: &mut Vec<u8>, k: usize, f: &FlowRecord| {
        let extras = LineExtras {
            record,
            taps: taps.and_then(|t| t.per_flow.get(k)),
        };
        write_flow(out, f, &c.label(f), extras)
    };
    match picked {
        None => write_parallel(flows, sep, w, line),
        Some(picked) => write_parallel(picked, sep, w, |out, _, &k| line(out, k, &flows[k])),
    }
}

/// The flows `sel` keeps, by index (`None`: all of them).
fn picked_flows(a: &Analysis, sel: super::FlowSelection) -> Option<Vec<usize>> {
    match sel {
        super::FlowSelection::All => None,
        super::FlowSelection::None => Some(Vec::new()),
        super::FlowSelection::Failed => Some(
            a.flow_outcomes()
                .iter()
                .enumerate()
                .filter(|(_, o)| **o == Some(false))
                .map(|(k, _)| k)
                .collect(),
        ),
    }
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
    write_json_with(a, &super::ReportOptions::default(), w)
}

/// [`write_json`] with the flow records `opts` selects.
pub fn write_json_with(
    a: &Analysis,
    opts: &super::ReportOptions,
    w: &mut dyn Write,
) -> io::Result<()> {
    let c = &a.correlated;
    let picked = picked_flows(a, opts.flows);
    let mut w = io::BufWriter::with_capacity(1 << 18, w);
    writeln!(w, "{{\"schema\":\"{SCHEMA}\",")?;
    if !c.limits.is_empty() {
        w.write_all(b"\"limits\":")?;
        serde_json::to_writer(&mut w, &super::limits::limits(&c.limits))?;
        w.write_all(b",\n")?;
    }
    if !c.one_way.is_empty() {
        w.write_all(b"\"one_way\":")?;
        serde_json::to_writer(&mut w, &super::limits::one_way(&c.one_way))?;
        w.write_all(b",\n")?;
    }
    w.write_all(b"\"inputs\":")?;
    write_lines(&mut w, &inputs(a, None))?;
    w.write_all(b",\n\"stats\":")?;
    let reported = picked.as_ref().map(|p| p.len() as u64);
    serde_json::to_writer(
        &mut w,
        &schema::Stats {
            flows_reported: reported,
            ..stats(&a.stats, a.flows.len(), &a.inputs)
        },
    )?;
    w.write_all(b",\n\"handoffs\":")?;
    write_lines_with(&mut w, &c.handoffs, |out, h| {
        Ok(serde_json::to_writer(out, &handoff(h, None))?)
    })?;
    w.write_all(b",\n\"endpoints\":")?;
    write_lines_with(&mut w, &c.endpoints, |out, e| {
        Ok(serde_json::to_writer(out, &endpoint(e, None))?)
    })?;
    w.write_all(b",\n\"flows\":")?;
    if reported.unwrap_or(a.flows.len() as u64) == 0 {
        w.write_all(b"[]")?;
    } else {
        w.write_all(b"[\n")?;
        let (flows, view) = (&a.flows, tap_view(a));
        write_flow_lines(flows, picked.as_deref(), c, view, None, b",\n", &mut w)?;
        w.write_all(b"\n]")?;
    }
    w.write_all(b",\n\"findings\":")?;
    write_lines_with(&mut w, &c.findings, |out, f| {
        Ok(serde_json::to_writer(out, &finding(f, None))?)
    })?;
    w.write_all(b",\n\"verdicts\":")?;
    write_lines_with(&mut w, &a.verdicts, |out, v| write_verdict(out, v, None))?;
    if let Some(t) = &a.taps {
        w.write_all(b",\n\"taps\":")?;
        serde_json::to_writer(&mut w, &taps(t, None))?;
    }
    w.write_all(b"}\n")?;
    w.flush()
}

/// Writes one JSON record per line, each with a `"record"` field.
pub fn write_ndjson(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    write_ndjson_with(a, &super::ReportOptions::default(), w)
}

/// [`write_ndjson`] with the flow records `opts` selects.
pub fn write_ndjson_with(
    a: &Analysis,
    opts: &super::ReportOptions,
    w: &mut dyn Write,
) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(1 << 18, w);
    write_ndjson_records(a, opts, &mut w)?;
    w.flush()
}

/// `v` and a newline.
fn line(w: &mut impl Write, v: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *w, v)?;
    w.write_all(b"\n")
}

fn write_ndjson_records(
    a: &Analysis,
    opts: &super::ReportOptions,
    w: &mut impl Write,
) -> io::Result<()> {
    let picked = picked_flows(a, opts.flows);
    let reported = picked.as_ref().map(|p| p.len() as u64);
    for v in inputs(a, Some("input")) {
        line(w, &v)?;
    }
    let c = &a.correlated;
    for l in &c.limits {
        line(w, &super::limits::limit(l, Some("limit")))?;
    }
    for h in &c.handoffs {
        line(w, &handoff(h, Some("handoff")))?;
    }
    for e in &c.endpoints {
        line(w, &endpoint(e, Some("endpoint")))?;
    }
    if reported.unwrap_or(a.flows.len() as u64) > 0 {
        let (flows, view) = (&a.flows, tap_view(a));
        write_flow_lines(flows, picked.as_deref(), c, view, Some("flow"), b"\n", w)?;
        w.write_all(b"\n")?;
    }
    for f in &c.findings {
        line(w, &finding(f, Some("finding")))?;
    }
    let mut out = Vec::new();
    for v in &a.verdicts {
        out.clear();
        write_verdict(&mut out, v, Some("verdict"))?;
        out.push(b'\n');
        w.write_all(&out)?;
    }
    if let Some(t) = &a.taps {
        line(w, &taps(t, Some("taps")))?;
    }
    line(
        w,
        &schema::Stats {
            record: Some("stats"),
            schema: Some(SCHEMA),
            flows_reported: reported,
            ..stats(&a.stats, a.flows.len(), &a.inputs)
        },
    )
}
