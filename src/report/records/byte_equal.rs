//! The byte writer is the typed records, byte for byte: for random flows
//! (with every optional part: label, hand-off, app, RPC summary, ICMP
//! errors, taps) and random verdict rows, [`write_flow`] and
//! [`write_verdict`] write exactly what serde_json writes of the
//! contract's [`FlowLine`] and [`VerdictRow`].

use std::net::IpAddr;

use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

use super::{end_name, write_flow, write_verdict, LineExtras};
use crate::correlate::{FlowLabel, HandoffRef};
use crate::event::InterfaceId;
use crate::flow::rpc_conn::{BoundInterface, RpcSummary};
use crate::flow::{AppLabel, ConnState, FlowEnd, FlowRecord, HistoryStr, IcmpEvidence};
use crate::packet::{PROTO_TCP, PROTO_UDP};
use crate::proto::dcerpc::Uuid;
use crate::report::json::ms;
use crate::report::proto_name;
use crate::report::schema::{
    self, FlowApp, FlowHandoff, FlowIcmp, FlowLine, FlowRpc, FlowTaps, Interface, VerdictRow,
};
use crate::time::Rfc3339;
use crate::verdict::{DecisionKind, Status, Verdict, VerdictLabel};

/// The contract's record of a flow line.
fn flow_line<'a>(f: &'a FlowRecord, label: &FlowLabel, extras: LineExtras<'_>) -> FlowLine<'a> {
    FlowLine {
        record: extras.record,
        proto: proto_name(f.proto),
        client: f.client,
        client_port: f.client_port,
        server: f.server,
        server_port: f.server_port,
        first_ts: Rfc3339(f.first_ts),
        last_ts: Rfc3339(f.last_ts),
        service: label.service,
        identified_by: label.identified_by,
        port_service_mismatch: label.port_mismatch,
        interface: label.interface.as_ref().map(Interface::new),
        handoff: label.handoff.as_ref().map(|h| FlowHandoff {
            client: h.client,
            latency_ms: ms(h.latency),
            other_client: h.other_client,
            ts: Rfc3339(h.ts),
        }),
        app: f.app.as_deref().map(|a| FlowApp {
            detail: a.detail.as_deref(),
            rfc1006: a.rfc1006.as_ref().map(|r| serde_json::to_value(r).unwrap()),
            service: a.service,
            smb: a.smb.as_ref().map(|r| serde_json::to_value(r).unwrap()),
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
        icmp_errors: f.icmp.iter().map(icmp).collect(),
        icmp_error_count: f.icmp_count,
        rpc: f.rpc.as_deref().map(rpc),
        end: end_name(f.end),
        taps: extras.taps.map(|s| FlowTaps {
            inside: s[0],
            outside: s[1],
        }),
    }
}

fn icmp(e: &IcmpEvidence) -> FlowIcmp {
    FlowIcmp {
        ts: Rfc3339(e.ts),
        sender: e.sender,
        icmp_version: if e.v6 { 6 } else { 4 },
        r#type: e.icmp_type,
        code: e.code,
        quotes_originator: e.quotes_originator,
    }
}

fn rpc(r: &RpcSummary) -> FlowRpc {
    FlowRpc {
        auth_level: r.auth_level,
        auth_type: r.auth_type,
        binds_rejected: r.binds_rejected,
        bytes_skipped: r.bytes_skipped,
        encrypted: r.encrypted,
        epm_answers: r.epm_answers,
        faults: r.faults,
        interfaces: r
            .interfaces
            .iter()
            .map(|b| {
                let i = Interface::new(&b.interface);
                schema::BoundInterface {
                    accepted: b.accepted,
                    name: i.name,
                    transfer_syntax: if b.ndr64 { "ndr64" } else { "ndr" },
                    uuid: i.uuid,
                    version: i.version,
                }
            })
            .collect(),
        malformed_pdus: r.malformed,
        pdus: r.pdus,
        pipes: (!r.pipes.is_empty()).then(|| r.pipes.iter().map(|p| p.to_string()).collect()),
        registrations: r.registrations,
        requests: r.requests,
        resyncs: r.resyncs,
        stream_gaps: r.stream_gaps,
    }
}

/// The contract's record of a verdict row.
fn verdict_row<'a>(v: &'a Verdict, record: Option<&'static str>) -> VerdictRow<'a> {
    VerdictRow {
        client_group: &v.client_group,
        clients: &v.clients,
        failed: v.failed,
        first_ts: (v.first_ts > 0).then_some(Rfc3339(v.first_ts)),
        last_ts: (v.last_ts > 0).then_some(Rfc3339(v.last_ts)),
        policy: v.policy,
        port: v.port,
        proto: proto_name(v.proto),
        record,
        server: v.server,
        service: v.service,
        status: v.status,
        verdict: v.verdict,
        working: v.working,
    }
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

/// Names as the code has them, one that needs escaping among them.
fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "exchange-store",
        "epm",
        "unknown",
        "port",
        "epm-handoff",
        "q\"uo\\te\u{1}",
        "é日本",
    ])
}

fn interface() -> impl Strategy<Value = InterfaceId> {
    let known = crate::proto::dcerpc::UUID_EPM;
    (
        prop_oneof![Just(known), any::<[u8; 16]>().prop_map(Uuid)],
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(uuid, major, minor)| InterfaceId { uuid, major, minor })
}

fn label() -> impl Strategy<Value = FlowLabel> {
    let handoff = (any::<u64>(), ip(), any::<u64>(), any::<bool>()).prop_map(
        |(ts, client, latency, other_client)| HandoffRef {
            ts,
            client,
            latency,
            other_client,
        },
    );
    (name(), name(), of(name()), of(interface()), of(handoff)).prop_map(
        |(service, identified_by, port_mismatch, interface, handoff)| FlowLabel {
            service,
            identified_by,
            port_mismatch,
            interface,
            handoff,
        },
    )
}

fn app() -> impl Strategy<Value = AppLabel> {
    (
        name(),
        of(any::<String>()),
        any::<bool>(),
        of(any::<[u64; 4]>()),
    )
        .prop_map(|(service, detail, cotp, smb)| AppLabel {
            service,
            detail,
            rfc1006: cotp.then(Box::default),
            smb: smb.map(|n| {
                Box::new(crate::flow::smb_pipe::SmbSummary {
                    messages: n[0],
                    bytes_passed: n[1],
                    encrypted_messages: n[2],
                    pipes_opened: n[3],
                    ..Default::default()
                })
            }),
        })
}

fn rpc_summary() -> impl Strategy<Value = RpcSummary> {
    let bound =
        (interface(), any::<bool>(), any::<bool>()).prop_map(|(interface, a, n)| BoundInterface {
            interface,
            accepted: a,
            ndr64: n,
        });
    (
        vec(bound, 0..3),
        of(any::<u8>()),
        of(any::<u8>()),
        any::<bool>(),
        any::<[u64; 10]>(),
        vec(any::<String>(), 0..3),
    )
        .prop_map(
            |(interfaces, auth_type, auth_level, encrypted, n, pipes)| RpcSummary {
                pipes: pipes.into_iter().map(String::into_boxed_str).collect(),
                interfaces,
                auth_type,
                auth_level,
                encrypted,
                pdus: n[0],
                requests: n[1],
                faults: n[2],
                binds_rejected: n[3],
                epm_answers: n[4],
                registrations: n[5],
                malformed: n[6],
                stream_gaps: n[7],
                resyncs: n[8],
                bytes_skipped: n[9],
                carrier: Default::default(),
            },
        )
}

fn icmp_evidence() -> impl Strategy<Value = IcmpEvidence> {
    (
        any::<u64>(),
        ip(),
        any::<bool>(),
        any::<u8>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(
            |(ts, sender, v6, icmp_type, code, quotes_originator)| IcmpEvidence {
                ts,
                sender,
                v6,
                icmp_type,
                code,
                quotes_originator,
                mtu: None,
            },
        )
}

const STATES: [ConnState; 14] = [
    ConnState::S0,
    ConnState::S1,
    ConnState::SF,
    ConnState::REJ,
    ConnState::S2,
    ConnState::S3,
    ConnState::RSTO,
    ConnState::RSTR,
    ConnState::RSTOS0,
    ConnState::RSTRH,
    ConnState::SH,
    ConnState::SHR,
    ConnState::OTH,
    ConnState::Udp,
];

const ENDS: [FlowEnd; 4] = [
    FlowEnd::EndOfCapture,
    FlowEnd::IdleTimeout,
    FlowEnd::Evicted,
    FlowEnd::Reused,
];

fn flow() -> impl Strategy<Value = FlowRecord> {
    let ends = (ip(), any::<u16>(), ip(), any::<u16>(), any::<[u64; 2]>());
    let shape = (
        prop::sample::select(STATES.to_vec()),
        "[ShADFRadfr^]{0,16}",
        any::<u32>(),
        vec(any::<u64>(), 0..4),
        any::<[[u64; 2]; 3]>(),
        of(any::<u8>()),
        of(any::<u16>()),
    );
    let parts = (
        vec(icmp_evidence(), 0..3),
        any::<u32>(),
        of(rpc_summary()),
        of(app()),
        prop::sample::select(ENDS.to_vec()),
        any::<bool>(),
    );
    (ends, shape, parts).prop_map(|(e, s, p)| {
        let (client, client_port, server, port, ts) = e;
        FlowRecord {
            proto: if p.5 { PROTO_TCP } else { PROTO_UDP },
            first_ts: ts[0].min(ts[1]),
            last_ts: ts[0].max(ts[1]),
            state: s.0,
            history: HistoryStr::new(&s.1),
            syn_retries: s.2,
            syn_gaps_us: s.3.into_boxed_slice(),
            packets: s.4[0],
            bytes: s.4[1],
            payload_bytes: s.4[2],
            responder_ttl: s.5,
            responder_ip_id: s.6,
            icmp: p.0.into_boxed_slice(),
            icmp_count: p.1,
            rpc: p.2.map(Box::new),
            app: p.3.map(Box::new),
            end: p.4,
            ..FlowRecord::test_syn(client, client_port, server, port, ts[0])
        }
    })
}

fn verdict() -> impl Strategy<Value = Verdict> {
    (
        (any::<String>(), ip(), name(), any::<bool>(), any::<u16>()),
        (
            prop::sample::select(Status::ALL.to_vec()),
            prop::sample::select(DecisionKind::ALL.to_vec()),
            prop::sample::select(VerdictLabel::ALL.to_vec()),
        ),
        (vec(ip(), 0..5), any::<[u64; 2]>(), any::<[u64; 2]>()),
    )
        .prop_map(|(a, b, c)| Verdict {
            client_group: a.0.into(),
            server: a.1,
            service: a.2,
            proto: if a.3 { PROTO_TCP } else { PROTO_UDP },
            port: a.4,
            status: b.0,
            policy: b.1,
            verdict: b.2,
            clients: c.0,
            working: c.1[0],
            failed: c.1[1],
            // 0 (never) is written as null: hit it often.
            first_ts: c.2[0] % 3 * c.2[1],
            last_ts: c.2[1],
        })
}

type Taps = [Option<[u64; 2]>; 2];

proptest! {
    #[test]
    fn flow_lines_are_their_records(
        f in flow(),
        label in label(),
        record in of(Just("flow")),
        taps in of(any::<Taps>()),
    ) {
        let extras = LineExtras { record, taps: taps.as_ref() };
        let mut out = Vec::new();
        write_flow(&mut out, &f, &label, extras).unwrap();
        let typed = serde_json::to_vec(&flow_line(&f, &label, extras)).unwrap();
        prop_assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(typed).unwrap());
    }

    #[test]
    fn verdict_rows_are_their_records(v in verdict(), record in of(Just("verdict"))) {
        let mut out = Vec::new();
        write_verdict(&mut out, &v, record).unwrap();
        let typed = serde_json::to_vec(&verdict_row(&v, record)).unwrap();
        prop_assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(typed).unwrap());
    }
}
