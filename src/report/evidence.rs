//! A finding's evidence as its contract record ([`schema::Evidence`]):
//! each variant's own fields, with `type`, `ts` and `confidence`.

use super::schema::{self, Interface};
use crate::finding::{Evidence, Tap};
use crate::time::Rfc3339;

/// The record of `e`.
pub(crate) fn evidence(e: &Evidence) -> schema::Evidence<'_> {
    schema::Evidence(shape(e))
}

/// The shape of `e`'s record.
fn shape(e: &Evidence) -> schema::EvidenceShape<'_> {
    let r#type = e.type_name();
    let ts = Rfc3339(e.ts());
    let confidence = e.confidence().as_str();
    match e {
        Evidence::EpmNotRegistered {
            client,
            operation,
            status,
            ..
        } => schema::EvidenceShape::EpmNotRegistered(schema::EpmNotRegisteredEvidence {
            client: *client,
            confidence,
            operation: operation.as_str(),
            status: format!("0x{status:08x}"),
            ts,
            r#type,
        }),
        Evidence::SynUnanswered {
            client,
            client_port,
            syns,
            gaps_us,
            ..
        } => schema::EvidenceShape::SynUnanswered(schema::SynUnansweredEvidence {
            client: *client,
            client_port: *client_port,
            confidence,
            gaps_ms: gaps_us.iter().map(|g| *g as f64 / 1000.0).collect(),
            retransmissions: syns.saturating_sub(1),
            syns: *syns,
            ts,
            r#type,
        }),
        Evidence::Rst { .. } => schema::EvidenceShape::Rst(rst(e)),
        Evidence::IcmpUnreachable {
            client,
            client_port,
            sender,
            v6,
            icmp_type,
            code,
            meaning,
            ..
        } => schema::EvidenceShape::IcmpUnreachable(schema::IcmpUnreachableEvidence {
            client: *client,
            client_port: *client_port,
            code: *code,
            confidence,
            icmp_type: *icmp_type,
            icmp_version: if *v6 { 6 } else { 4 },
            meaning: meaning.as_str(),
            sender: *sender,
            ts,
            r#type,
        }),
        _ => other(e),
    }
}

/// The record of an `rst`.
fn rst(e: &Evidence) -> schema::RstEvidence<'_> {
    let Evidence::Rst {
        client,
        client_port,
        ttl,
        ip_id,
        host_ttls,
        host_ip_id_zero,
        forged,
        reason,
        ..
    } = e
    else {
        unreachable!("rst() is called on Evidence::Rst only")
    };
    schema::RstEvidence {
        client: *client,
        client_port: *client_port,
        confidence: e.confidence().as_str(),
        forged: *forged,
        host_ip_id: host_ip_id_zero.map(|z| if z { "zero" } else { "counter" }),
        host_ttls,
        ip_id: *ip_id,
        reason,
        sender: match forged {
            Some(true) => "a device on the path (firewall)",
            Some(false) => "the host",
            None => "unknown",
        },
        ts: Rfc3339(e.ts()),
        ttl: *ttl,
        r#type: e.type_name(),
    }
}

/// The records of the evidence [`shape`] leaves to it.
fn other(e: &Evidence) -> schema::EvidenceShape<'_> {
    let r#type = e.type_name();
    let ts = Rfc3339(e.ts());
    let confidence = e.confidence().as_str();
    match e {
        Evidence::HandoffUnfulfilled {
            client,
            mapper,
            interface,
            operation,
            ..
        } => schema::EvidenceShape::HandoffUnfulfilled(schema::HandoffUnfulfilledEvidence {
            client: *client,
            confidence,
            interface: Interface::new(interface),
            mapper: *mapper,
            operation: operation.as_str(),
            ts,
            r#type,
        }),
        Evidence::CotpRefused {
            client,
            client_port,
            reason,
            ..
        } => schema::EvidenceShape::CotpRefused(schema::CotpRefusedEvidence {
            client: *client,
            client_port: *client_port,
            confidence,
            reason,
            ts,
            r#type,
        }),
        Evidence::UdpUnanswered {
            client,
            client_port,
            datagrams,
            ..
        } => schema::EvidenceShape::UdpUnanswered(schema::UdpUnansweredEvidence {
            client: *client,
            client_port: *client_port,
            confidence,
            datagrams: *datagrams,
            ts,
            r#type,
        }),
        Evidence::DroppedBetweenTaps {
            client,
            client_port,
            direction,
            seen_on,
            missing_on,
            packets,
            ..
        } => schema::EvidenceShape::DroppedBetweenTaps(schema::DroppedBetweenTapsEvidence {
            client: *client,
            client_port: *client_port,
            confidence,
            direction: *direction,
            missing_on: missing_on.as_str(),
            packets: *packets,
            seen_on: seen_on.as_str(),
            ts,
            r#type,
        }),
        Evidence::Established {
            client,
            connections,
            ..
        } => schema::EvidenceShape::Established(schema::EstablishedEvidence {
            client: *client,
            confidence,
            connections: *connections,
            ts,
            r#type,
        }),
        _ => stall_or_scan(e),
    }
}

/// The records of `data-unanswered`, `path-mtu`, `fragments-missing` and
/// `probes`.
fn stall_or_scan(e: &Evidence) -> schema::EvidenceShape<'_> {
    let r#type = e.type_name();
    let ts = Rfc3339(e.ts());
    let confidence = e.confidence().as_str();
    match e {
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
        } => schema::EvidenceShape::DataUnanswered(schema::DataUnansweredEvidence {
            client: *client,
            client_port: *client_port,
            confidence,
            direction: *direction,
            idle_gap_s: *idle_gap_ms as f64 / 1000.0,
            reset: reset.as_deref().map(|r| Box::new(evidence(r))),
            retransmissions: *retransmissions,
            retransmitted_bytes: *retransmitted_bytes,
            span_ms: *span_us as f64 / 1000.0,
            ts,
            r#type,
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
        } => schema::EvidenceShape::Probes(schema::ProbesEvidence {
            confidence,
            icmp_errors: *icmp,
            last_ts: Rfc3339(*last_ts),
            ports,
            ports_total: *ports_total,
            probes: *probes,
            reset: *reset,
            sources,
            sources_total: *sources_total,
            targets,
            targets_total: *targets_total,
            ts,
            r#type,
            unanswered: *unanswered,
        }),
        Evidence::PathMtu {
            client,
            client_port,
            direction,
            retransmissions,
            segment_bytes,
            largest_segment_bytes,
            passed_bytes,
            span_us,
            icmp_sender,
            icmp_mtu,
            ..
        } => schema::EvidenceShape::PathMtu(schema::PathMtuEvidence {
            client: *client,
            client_port: *client_port,
            confidence,
            direction: *direction,
            icmp_mtu: *icmp_mtu,
            icmp_sender: *icmp_sender,
            largest_segment_bytes: *largest_segment_bytes,
            passed_bytes: *passed_bytes,
            retransmissions: *retransmissions,
            segment_bytes: *segment_bytes,
            span_ms: *span_us as f64 / 1000.0,
            ts,
            r#type,
        }),
        Evidence::FragmentsMissing {
            client,
            client_port,
            direction,
            datagrams,
            fragments,
            received_bytes,
            datagram_bytes,
            whole_on,
            ..
        } => schema::EvidenceShape::FragmentsMissing(schema::FragmentsMissingEvidence {
            client: *client,
            client_port: *client_port,
            confidence,
            datagram_bytes: *datagram_bytes,
            datagrams: *datagrams,
            direction: *direction,
            fragments: *fragments,
            received_bytes: *received_bytes,
            ts,
            r#type,
            whole_on: whole_on.map(Tap::as_str),
        }),
        _ => unreachable!("shape() and other() take every other variant"),
    }
}
