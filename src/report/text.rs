//! The human-readable summary: what was read, what failed, what talks.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::proto_name;
use crate::correlate::{interface_service, Handoff, Outcome};
use crate::flow::{ConnState, FlowRecord};
use crate::pipeline::Analysis;
use crate::proto::catalog;
use crate::time::rfc3339_micros;

/// Rows shown in the per-port table before it is cut.
const MAX_PORT_ROWS: usize = 40;
/// Failed attempts listed one by one before they are summarized.
const MAX_FAILED_ROWS: usize = 50;

/// A TCP flow that never got an answer from its responder, or any flow an
/// ICMP error was sent about.
pub fn is_failed_attempt(f: &FlowRecord) -> bool {
    matches!(
        f.state,
        ConnState::S0 | ConnState::REJ | ConnState::RSTOS0 | ConnState::SH
    ) || f.icmp.iter().any(|e| e.quotes_originator)
}

fn established(f: &FlowRecord) -> bool {
    crate::correlate::tcp_established(f.state)
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn why_failed(f: &FlowRecord) -> String {
    let mut parts = Vec::new();
    match f.state {
        ConnState::S0 => parts.push(format!(
            "SYN unanswered ({} sent{})",
            f.syn_retries + 1,
            if f.syn_gaps_us.is_empty() {
                String::new()
            } else {
                format!(
                    ", gaps {}",
                    f.syn_gaps_us
                        .iter()
                        .map(|g| format!("{:.1}s", *g as f64 / 1e6))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            }
        )),
        ConnState::REJ => parts.push(format!(
            "reset by responder{}",
            f.responder_ttl
                .map(|t| format!(" (TTL {t})"))
                .unwrap_or_default()
        )),
        ConnState::RSTOS0 => parts.push("originator gave up with a reset".into()),
        ConnState::SH => parts.push("originator closed before any answer".into()),
        _ => {}
    }
    for e in f.icmp.iter().filter(|e| e.quotes_originator) {
        parts.push(format!(
            "ICMP{} {}/{} from {}",
            if e.v6 { "v6" } else { "" },
            e.icmp_type,
            e.code,
            e.sender
        ));
    }
    parts.join("; ")
}

fn interface_name(uuid: &crate::proto::dcerpc::Uuid) -> String {
    catalog::lookup(uuid)
        .map(|c| c.name.to_string())
        .unwrap_or_else(|| uuid.to_string())
}

fn handoff_line(h: &Handoff) -> String {
    let result = match &h.outcome {
        Outcome::Followed { latency, .. } => {
            format!("followed after {:.1} ms", *latency as f64 / 1e6)
        }
        Outcome::NoAttempt => format!(
            "NOT FOLLOWED: no connection attempt seen{}",
            if h.window_cut {
                " (the capture ended within the window)"
            } else {
                ""
            }
        ),
        Outcome::SynUnanswered { attempts, syns } => format!(
            "NOT FOLLOWED: SYN unanswered ({syns} SYNs in {attempts} attempt{})",
            if *attempts == 1 { "" } else { "s" }
        ),
        Outcome::Reset { attempts, ttl } => format!(
            "NOT FOLLOWED: reset ({attempts} attempt{}{})",
            if *attempts == 1 { "" } else { "s" },
            ttl.map(|t| format!(", RST TTL {t}")).unwrap_or_default()
        ),
        Outcome::IcmpUnreachable {
            sender,
            v6,
            icmp_type,
            code,
        } => format!(
            "NOT FOLLOWED: ICMP{} unreachable {icmp_type}/{code} from {sender}",
            if *v6 { "v6" } else { "" }
        ),
        Outcome::UdpUnanswered => "NOT FOLLOWED: UDP datagrams unanswered".into(),
        Outcome::Superseded => "asked again: the connection followed the later answer".into(),
        Outcome::ExistingConnection { client_port } => format!(
            "no new connection: the client's connection from port {client_port} was already open"
        ),
    };
    format!(
        "{}  {} -> {}:{}/{}  {} ({}, {} v{}.{})  via {}  {}",
        rfc3339_micros(h.ts),
        h.client,
        h.server,
        h.port,
        h.transport.as_str(),
        interface_name(&h.interface.uuid),
        interface_service(&h.interface),
        h.interface.uuid,
        h.interface.major,
        h.interface.minor,
        h.operation.as_str(),
        result
    )
}

/// The scenarios of the KB articles (Q176466, KB270836, KB280132) a flow
/// belongs to, by its service and, for RPC between servers, by roles.
pub fn kb_scenario(
    service: &str,
    server_is_exchange: bool,
    server_to_server: bool,
) -> &'static str {
    match service {
        // The endpoint mapper of a host not known as an Exchange server: AD.
        "epm" if !server_is_exchange => {
            "Domain controller services (front-end in a perimeter network, AD)"
        }
        "epm"
        | "exchange-store"
        | "exchange-directory"
        | "exchange-referral"
        | "exchange-store-admin"
        | "mapi-notification"
        | "rpc-over-http"
            if !server_to_server =>
        {
            "MAPI client <-> server"
        }
        "exchange-mta" | "exchange-sa" | "exchange-directory" | "exchange-store" | "epm" => {
            "Server <-> server RPC (intrasite / intersite site connector)"
        }
        "x400-mta" | "rfc1006" => "X.400 connector (RFC 1006)",
        "pop3" | "pop3s" => "POP3 clients",
        "imap" | "imaps" => "IMAP4 clients",
        "smtp" => "SMTP (sending mail)",
        "nntp" | "nntps" => "NNTP clients",
        "ldap" | "ldaps" | "gc" | "gc-ssl" => "LDAP clients / global catalog",
        "dns" | "kerberos" | "ntp" | "smb" | "netbios-ns" | "netbios-dgm" | "netbios-ssn"
        | "netlogon" | "ad-replication" | "lsarpc" | "samr" | "dnsserver" | "frs" | "dfsr" => {
            "Domain controller services (front-end in a perimeter network, AD)"
        }
        "http" | "https" | "tls" => "Web (OWA, front-end to back-end)",
        _ => "Other",
    }
}

/// Writes the text report.
pub fn write_text(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    let s = &a.stats;
    writeln!(
        w,
        "exflow report: {} input{}, {} packets ({}), {} flows",
        a.inputs.len(),
        if a.inputs.len() == 1 { "" } else { "s" },
        s.packets,
        human_bytes(s.bytes),
        a.flows.len()
    )?;

    writeln!(w, "\nInputs")?;
    for i in &a.inputs {
        let links: Vec<String> = i.link_types.iter().map(|l| l.name()).collect();
        let span = match (i.first_ts, i.last_ts) {
            (Some(f), Some(l)) => format!("{} .. {}", rfc3339_micros(f), rfc3339_micros(l)),
            _ => "no packets".into(),
        };
        writeln!(
            w,
            "  {}  [{} {}]  {} packets  {}",
            i.path,
            i.format,
            links.join(","),
            i.packets,
            span
        )?;
        if let Some(p) = &i.problem {
            writeln!(w, "    ! incomplete: {}", p.message)?;
        }
    }

    let c = &a.correlated;
    if !c.findings.is_empty() {
        writeln!(w, "\nFindings: {}", c.findings.len())?;
        for f in &c.findings {
            let clients: Vec<String> = f.clients.iter().map(|c| c.to_string()).collect();
            let what = f
                .interface
                .map(|i| interface_name(&i.uuid))
                .unwrap_or_else(|| "an interface".into());
            writeln!(
                w,
                "  {}: {} asked the endpoint mapper {}:{} for {} ({}): not registered — the service is not running there",
                f.kind,
                clients.join(", "),
                f.server,
                f.port,
                what,
                f.service
            )?;
        }
    }

    if !c.handoffs.is_empty() {
        let failed = c.handoffs.iter().filter(|h| !h.outcome.followed()).count();
        writeln!(
            w,
            "\nEndpoint-mapper hand-offs: {} ({} not followed)",
            c.handoffs.len(),
            failed
        )?;
        for h in &c.handoffs {
            writeln!(w, "  {}", handoff_line(h))?;
        }
    }

    let failed: Vec<(&FlowRecord, &'static str)> = a
        .flows
        .iter()
        .filter(|f| is_failed_attempt(f))
        .map(|f| (f, c.label(f).service))
        .collect();
    writeln!(w, "\nFailed connection attempts: {}", failed.len())?;
    for (f, service) in failed.iter().take(MAX_FAILED_ROWS) {
        writeln!(
            w,
            "  {}  {} -> {}:{}/{}  {}  {}: {}",
            rfc3339_micros(f.first_ts),
            f.client,
            f.server,
            f.server_port,
            proto_name(f.proto),
            service,
            f.state.as_str(),
            why_failed(f)
        )?;
    }
    if failed.len() > MAX_FAILED_ROWS {
        writeln!(w, "  ... and {} more", failed.len() - MAX_FAILED_ROWS)?;
    }

    // (service, proto, port) -> (flows, established, failed, packets, bytes)
    let mut by_port: BTreeMap<(&str, &str, u16), [u64; 5]> = BTreeMap::new();
    for f in &a.flows {
        let service = c.label(f).service;
        let row = by_port
            .entry((service, proto_name(f.proto), f.server_port))
            .or_default();
        row[0] += 1;
        row[1] += established(f) as u64;
        row[2] += is_failed_attempt(f) as u64;
        row[3] += f.packets[0] + f.packets[1];
        row[4] += f.bytes[0] + f.bytes[1];
    }
    let mut rows: Vec<_> = by_port.into_iter().collect();
    rows.sort_by(|a, b| b.1[0].cmp(&a.1[0]).then(a.0.cmp(&b.0)));
    // Flows grouped in the KB's own scenarios.
    let mut scenarios: BTreeMap<&'static str, [u64; 3]> = BTreeMap::new();
    for f in &a.flows {
        let service = c.label(f).service;
        let server_is_exchange = c.is_exchange_server(&f.server);
        let s2s = server_is_exchange && c.is_exchange_server(&f.client);
        let row = scenarios
            .entry(kb_scenario(service, server_is_exchange, s2s))
            .or_default();
        row[0] += 1;
        row[1] += established(f) as u64;
        row[2] += is_failed_attempt(f) as u64;
    }
    writeln!(w, "\nFlows by KB scenario")?;
    writeln!(
        w,
        "  {:<66} {:>7} {:>7} {:>7}",
        "scenario", "flows", "estab", "failed"
    )?;
    for (name, r) in &scenarios {
        writeln!(w, "  {:<66} {:>7} {:>7} {:>7}", name, r[0], r[1], r[2])?;
    }

    writeln!(w, "\nFlows by service and server port")?;
    writeln!(
        w,
        "  {:<20} {:<5} {:>5} {:>7} {:>7} {:>7} {:>9} {:>10}",
        "service", "proto", "port", "flows", "estab", "failed", "packets", "bytes"
    )?;
    for ((service, proto, port), r) in rows.iter().take(MAX_PORT_ROWS) {
        writeln!(
            w,
            "  {:<20} {:<5} {:>5} {:>7} {:>7} {:>7} {:>9} {:>10}",
            service,
            proto,
            port,
            r[0],
            r[1],
            r[2],
            r[3],
            human_bytes(r[4])
        )?;
    }
    if rows.len() > MAX_PORT_ROWS {
        writeln!(w, "  ... {} more ports", rows.len() - MAX_PORT_ROWS)?;
    }

    writeln!(w, "\nPackets")?;
    writeln!(
        w,
        "  tcp {}  udp {}  icmp {}  other-ip {}  snaplen-truncated {}",
        s.tcp_packets, s.udp_packets, s.icmp_packets, s.other_ip_packets, s.snaplen_truncated
    )?;
    if !s.decode_errors.is_empty() {
        let errs: Vec<String> = s
            .decode_errors
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(w, "  not decoded: {}", errs.join(", "))?;
    }
    let fl = &s.flow;
    writeln!(
        w,
        "  flows: peak tracked {}, timed out {}, evicted (cap) {}, 5-tuple reused {}, unmatched ICMP errors {}",
        fl.peak_tracked, fl.flows_timed_out, fl.flows_evicted, fl.flows_reused, fl.icmp_unmatched
    )?;
    Ok(())
}
