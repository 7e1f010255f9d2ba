//! The human-readable summary: what was read, what failed, what talks.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::layout::{shell_lines, Lines, TEXT_WIDTH};
use super::proto_name;
use crate::analysis::Analysis;
use crate::capture::InputInfo;
use crate::correlate::{Handoff, Outcome};
use crate::finding::Direction;
use crate::flow::{ConnState, FlowRecord};
use crate::kb;
use crate::time::rfc3339_micros;
use crate::verdict::{Evidence, Finding, FindingKind, Fix, Status};

/// Rows shown in the per-port table before it is cut.
const MAX_PORT_ROWS: usize = 40;
/// Failed attempts listed one by one before they are summarized.
const MAX_FAILED_ROWS: usize = 50;

fn established(f: &FlowRecord) -> bool {
    crate::flow::tcp_established(f.state)
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

pub(super) fn interface_name(uuid: &crate::proto::dcerpc::Uuid) -> String {
    kb::interface(uuid)
        .map(|c| c.name.to_string())
        .unwrap_or_else(|| uuid.to_string())
}

fn handoff_line(h: &Handoff) -> String {
    let result = match &h.outcome {
        Outcome::Followed { latency, .. } => {
            format!("followed after {:.1} ms", *latency as f64 / 1e6)
        }
        Outcome::CaptureEnded => {
            "cannot tell: the capture ended less than a second after the answer".to_string()
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
        Outcome::Superseded => "asked again: the connection attempt followed the later answer".into(),
        Outcome::NotCaptured => "not captured: the capture filter would drop its follow-up".into(),
        Outcome::Sealed => "cannot be seen: sealed (packet privacy): the answer's string bindings are encrypted, and no connection to the server's dynamic range came right after it".into(),
        Outcome::ExistingConnection { client_port } => format!(
            "no new connection: the client's connection from port {client_port} was already open"
        ),
    };
    // The line names the tower's address; a connection at the address the
    // client reached the mapper on instead (IPv6, NAT, a virtual IP: #22)
    // is said, or the reader would look for it at the wrong host.
    let at = match h.follow_up_at {
        Some(_) if h.by_name() => {
            " (at the answering host: the bindings name the host only by name)".to_string()
        }
        Some(a) if h.matched_mapper_address() => {
            format!(" at {a}, the address the client reached the mapper on, not the tower's")
        }
        _ => String::new(),
    };
    // DCOM: what the answer said (its string bindings), or that its port
    // was inferred from the connection that followed a sealed answer.
    let dcom = match &h.dcom {
        Some(d) if d.inferred => format!(
            "; port inferred: a sealed answer, then the client's first connection to the server's dynamic range within {} s",
            crate::correlate::SEALED_FOLLOW_WINDOW / crate::flow::SECOND
        ),
        Some(d) if !d.sealed => {
            let named = if d.by_name && h.follow_up_at.is_none() {
                "; the bindings name the host only by name: a follow-up is looked for at the answering host only"
            } else {
                ""
            };
            format!("; bindings {}{named}", d.bindings.join(", "))
        }
        _ => String::new(),
    };
    // An RPC proxy's hand-off (#24): who asked, and what the URL said.
    let proxy = match &h.proxy {
        Some(p) => {
            let where_ = if p.by_name && h.follow_up_at.is_none() {
                "; the URL names the backend by name: any connection from the proxy to that port is its follow-up"
            } else if p.by_name {
                " (the URL names the backend by name: matched at the address the proxy connected to)"
            } else {
                ""
            };
            let unseen = if h.outcome == crate::correlate::Outcome::NoAttempt {
                "; the proxy's backend side may be outside this capture: not judged"
            } else {
                ""
            };
            format!(
                "; asked by {} ({}){where_}{unseen}",
                p.requested_by,
                match h.operation {
                    crate::event::EpmOperation::RpcProxy(c) => c.method(),
                    _ => "",
                },
            )
        }
        None => String::new(),
    };
    let port = if h.sealed() && !h.inferred() {
        "?".to_string()
    } else {
        h.port.to_string()
    };
    // A proxy's URL names no interface: what it names is the backend.
    let what = match &h.proxy {
        Some(p) => format!("backend {} ({})", p.backend, h.service()),
        None => format!(
            "{} ({}, {} v{}.{})",
            interface_name(&h.interface.uuid),
            h.service(),
            h.interface.uuid,
            h.interface.major,
            h.interface.minor
        ),
    };
    format!(
        "{}  {} -> {}:{}/{}  {}  via {} over {}  {}{}{}{}",
        rfc3339_micros(h.ts),
        h.client,
        h.server,
        port,
        h.transport.as_str(),
        what,
        h.operation.as_str(),
        h.carrier.as_str(),
        result,
        at,
        dcom,
        proxy
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

/// `syn-unanswered`: how many SYNs, and the gaps between them.
fn syn_text(syns: u32, gaps_us: &[u64]) -> String {
    format!(
        "SYN unanswered ({syns} SYN{}{})",
        if syns == 1 { "" } else { "s" },
        if gaps_us.is_empty() {
            String::new()
        } else {
            format!(
                ", gaps {} s",
                gaps_us
                    .iter()
                    .map(|g| format!("{:.1}", *g as f64 / 1e6))
                    .collect::<Vec<_>>()
                    .join("/")
            )
        }
    )
}

/// `rst`: who sent the reset, as far as its TTL and IP ID tell.
fn rst_text(forged: Option<bool>, ttl: Option<u8>, host_ttls: &[u8]) -> String {
    match forged {
        Some(true) => format!(
            "reset forged on the path (TTL {}, the host's own {})",
            ttl.map_or("?".into(), |t| t.to_string()),
            if host_ttls.is_empty() {
                "IP ID pattern differs".to_string()
            } else {
                host_ttls
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            }
        ),
        Some(false) => "reset by the host itself (port closed)".into(),
        None => "reset (nothing to compare it with)".into(),
    }
}

/// `data-unanswered`: after how long idle, and how it went unanswered
/// (`sent`: retransmissions, their bytes and span in µs).
fn data_unanswered_text(
    direction: Direction,
    idle_gap_ms: u64,
    sent: (u32, u64, u64),
    reset: Option<&Evidence>,
) -> String {
    let (retransmissions, retransmitted_bytes, span_us) = sent;
    let after = if idle_gap_ms > 0 {
        format!(
            "after {} idle, ",
            crate::verdict::duration_text(idle_gap_ms / 1000)
        )
    } else {
        String::new()
    };
    let answer = match reset {
        Some(r) => format!("answered only by a {}", evidence_text(r)),
        None => format!(
            "sent {retransmissions} more time{} ({retransmitted_bytes} bytes) over {:.1} s, never answered",
            if retransmissions == 1 { "" } else { "s" },
            span_us as f64 / 1e6
        ),
    };
    format!("{after}{direction} data {answer}")
}

/// One piece of evidence, short.
pub(super) fn evidence_text(e: &Evidence) -> String {
    match e {
        Evidence::EpmNotRegistered { status, .. } => {
            format!("EPM answered not registered (0x{status:08x})")
        }
        Evidence::SynUnanswered { syns, gaps_us, .. } => syn_text(*syns, gaps_us),
        Evidence::Rst {
            forged,
            ttl,
            host_ttls,
            ..
        } => rst_text(*forged, *ttl, host_ttls),
        Evidence::IcmpUnreachable {
            sender,
            v6,
            icmp_type,
            code,
            meaning,
            ..
        } => format!(
            "ICMP{} {icmp_type}/{code} {} from {sender}",
            if *v6 { "v6" } else { "" },
            meaning.as_str()
        ),
        Evidence::HandoffUnfulfilled {
            interface,
            operation,
            ..
        } => format!(
            "{} answer named this port for {}, no connection followed",
            operation.as_str(),
            interface_name(&interface.uuid)
        ),
        Evidence::CotpRefused { reason, .. } => format!("COTP connection refused: {reason}"),
        Evidence::UdpUnanswered { datagrams, .. } => {
            format!("{datagrams} UDP request(s) unanswered")
        }
        Evidence::DroppedBetweenTaps {
            direction,
            seen_on,
            missing_on,
            packets,
            ..
        } => format!(
            "{direction} seen on the {} tap, missing on the {} tap ({packets} packet{})",
            seen_on.as_str(),
            missing_on.as_str(),
            if *packets == 1 { "" } else { "s" }
        ),
        Evidence::DataUnanswered {
            direction,
            idle_gap_ms,
            retransmissions,
            retransmitted_bytes,
            span_us,
            reset,
            ..
        } => data_unanswered_text(
            *direction,
            *idle_gap_ms,
            (*retransmissions, *retransmitted_bytes, *span_us),
            reset.as_deref(),
        ),
        Evidence::PathMtu {
            direction,
            retransmissions,
            segment_bytes,
            largest_segment_bytes,
            passed_bytes,
            span_us,
            icmp_sender,
            icmp_mtu,
            ..
        } => {
            let size = if segment_bytes == largest_segment_bytes {
                format!("{segment_bytes}-byte")
            } else {
                format!("{segment_bytes}-{largest_segment_bytes}-byte")
            };
            let icmp = match (icmp_sender, icmp_mtu) {
                (Some(s), Some(m)) => format!("; \"fragmentation needed\" (MTU {m}) from {s} seen here, yet it never reached the sender"),
                (Some(s), None) => format!("; \"fragmentation needed\" from {s} seen here, yet it never reached the sender"),
                _ => "; no \"fragmentation needed\" seen".into(),
            };
            format!(
                "{direction} {size} segments with don't-fragment sent {retransmissions} more time{} over {:.1} s, never answered, while up to {passed_bytes} bytes passed{icmp}",
                if *retransmissions == 1 { "" } else { "s" },
                *span_us as f64 / 1e6
            )
        }
        Evidence::FragmentsMissing {
            direction,
            datagrams,
            fragments,
            received_bytes,
            datagram_bytes,
            whole_on,
            ..
        } => format!(
            "{datagrams} {direction} datagram{} lost {} later fragments ({fragments} fragment{} came, {}{received_bytes} bytes{}){}",
            if *datagrams == 1 { "" } else { "s" },
            if *datagrams == 1 { "its" } else { "their" },
            if *fragments == 1 { "" } else { "s" },
            if *datagrams == 1 { "" } else { "at most " },
            match datagram_bytes {
                Some(n) => format!(" of {n}"),
                None => String::new(),
            },
            match whole_on {
                Some(t) => format!(", whole on the {} tap", t.as_str()),
                None => String::new(),
            }
        ),
        Evidence::Established { connections, .. } => {
            format!("{connections} connection(s) established")
        }
        Evidence::Probes {
            ts,
            last_ts,
            sources_total,
            targets_total,
            ports_total,
            probes,
            ..
        } => format!(
            "{probes} single-SYN probes from {sources_total} source(s) to {ports_total} port(s) \
             on {targets_total} host(s) over {:.1} s",
            last_ts.saturating_sub(*ts) as f64 / 1e9
        ),
    }
}

/// The evidence of a finding, one entry per distinct description.
fn evidence_summary(f: &Finding) -> String {
    let mut parts: Vec<(String, usize)> = Vec::new();
    for e in &f.evidence {
        let t = evidence_text(e);
        match parts.iter_mut().find(|(p, _)| *p == t) {
            Some((_, n)) => *n += 1,
            None => parts.push((t, 1)),
        }
    }
    parts
        .into_iter()
        .map(|(t, n)| if n > 1 { format!("{t} ×{n}") } else { t })
        .collect::<Vec<_>>()
        .join("; ")
}

pub(super) fn what(f: &Finding) -> String {
    let mut s = f.services.join("/");
    if let Some(i) = f.interface {
        let name = interface_name(&i.uuid);
        if !name.eq_ignore_ascii_case(f.service) {
            s = format!("{s} ({name})");
        }
    }
    s
}

fn clients_text(f: &Finding) -> String {
    const MAX: usize = 4;
    let mut c: Vec<String> = f.clients.iter().take(MAX).map(|c| c.to_string()).collect();
    if f.clients.len() > MAX {
        c.push(format!("+{} more", f.clients.len() - MAX));
    }
    c.join(",")
}

/// Every finding with its verdict, consequence and full fix.
fn write_findings(a: &Analysis, width: usize, w: &mut dyn Write) -> io::Result<()> {
    let c = &a.correlated;
    if c.findings.is_empty() {
        return Ok(());
    }
    writeln!(w, "\nFindings: {}", c.findings.len())?;
    for f in &c.findings {
        if let Some(Evidence::Probes {
            ports_total,
            targets_total,
            ..
        }) = f.evidence.first().filter(|_| !f.is_actionable())
        {
            // A scan: who probed what, not a service port.
            let what = match f.kind {
                FindingKind::PortScan => format!("{ports_total} ports of {}", f.server),
                FindingKind::Sweep => format!(
                    "{}/{} on {targets_total} hosts",
                    proto_name(f.proto),
                    f.port
                ),
                _ => format!("{}/{} of {}", proto_name(f.proto), f.port, f.server),
            };
            writeln!(
                w,
                "  {} {what} from {}",
                f.kind.as_str().to_uppercase(),
                clients_text(f)
            )?;
        } else {
            writeln!(
                w,
                "  {} {}/{} {} on {} from {}",
                f.kind.as_str().to_uppercase(),
                proto_name(f.proto),
                f.port,
                what(f),
                f.server,
                if f.clients.is_empty() {
                    "-".to_string()
                } else {
                    clients_text(f)
                }
            )?;
        }
        writeln!(w, "    verdict: {}", f.verdict)?;
        if let Some(cq) = f.consequence.filter(|_| f.kind == FindingKind::Blocked) {
            writeln!(w, "    consequence: {cq}")?;
        }
        if !f.evidence.is_empty() {
            writeln!(w, "    evidence: {}", evidence_summary(f))?;
        }
        for e in &f.evidence {
            if let Evidence::Rst { reason, .. } = e {
                writeln!(w, "      reset: {reason}")?;
                break;
            }
        }
        if let Some(fix) = &f.fix {
            writeln!(w, "    fix: {}", fix.summary)?;
            write_rules(fix, width, w)?;
            for p in &fix.pin {
                // Key and value apart: "TCP/IP Port" is a value name, and
                // joined by a backslash it would read as two more keys.
                let label = p
                    .exchange
                    .as_ref()
                    .map_or(String::new(), |l| format!("{l}, "));
                writeln!(
                    w,
                    "      pin ({}, {label}{}): {}, value \"{}\" ({}, {}) on {}; {}",
                    p.component, p.article, p.key, p.value, p.kind, p.data, p.on, p.restart
                )?;
                for n in &p.notes {
                    writeln!(w, "        {n}")?;
                }
            }
            if let Some(a) = fix.port_advice {
                writeln!(w, "      pinning: {a}")?;
            }
            if let Some(n) = &fix.note {
                writeln!(w, "      note: {n}")?;
            }
            if let Some(r) = &fix.range {
                writeln!(w, "      range: {r}")?;
            }
            if let Some(h) = &fix.host_setting {
                writeln!(
                    w,
                    "      on {} ({}): {}, value \"{}\" ({}, {}) = {}{}; default {}: {}",
                    h.on,
                    h.article,
                    h.key,
                    h.value,
                    h.kind,
                    h.data,
                    h.set_to,
                    if h.restart.is_empty() {
                        String::new()
                    } else {
                        format!(", then {}", h.restart)
                    },
                    h.default,
                    h.advice
                )?;
            }
            if let Some(k) = &fix.keepalive {
                writeln!(
                    w,
                    "      keep-alives ({}): {}, value \"{}\" ({}, {}) below the firewall's timeout, e.g. {}; default {}: {}",
                    k.article, k.key, k.value, k.kind, k.data, k.set_to_ms, k.default, k.advice
                )?;
            }
        }
    }
    Ok(())
}

/// A fix's nft rule longer than this many lines (a long set of sources)
/// is left to the JSON.
const MAX_RULE_LINES: usize = 4;
/// A fix with more iptables rules than this (one per source block) has
/// them counted, not listed: they are in the JSON.
const MAX_IPTABLES_LISTED: usize = 4;

/// A fix's firewall rules, each broken into lines that fit the width (a
/// pasted rule is still one command); rules too long or too many for a
/// page are counted and left to `--format json`.
fn write_rules(fix: &Fix, width: usize, w: &mut dyn Write) -> io::Result<()> {
    const INDENT: &str = "      ";
    let blocks = fix.sources.as_ref().map_or(0, |s| s.blocks.len());
    for r in &fix.nftables {
        let lines = shell_lines(INDENT, r, width);
        if lines.len() <= MAX_RULE_LINES {
            for l in lines {
                writeln!(w, "{l}")?;
            }
        } else {
            writeln!(
                w,
                "{INDENT}nft: one rule with a set of {blocks} source blocks: see --format json (fix.nftables)"
            )?;
        }
    }
    if fix.iptables.len() > MAX_IPTABLES_LISTED {
        writeln!(
            w,
            "{INDENT}iptables: {} rules, one per source block: see --format json (fix.iptables)",
            fix.iptables.len()
        )?;
    } else {
        for r in &fix.iptables {
            for l in shell_lines(INDENT, r, width) {
                writeln!(w, "{l}")?;
            }
        }
    }
    Ok(())
}

/// The verdict table (without never-seen rows, which the findings list).
fn write_verdicts(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    let rows: Vec<_> = a
        .verdicts
        .iter()
        .filter(|v| v.status != Status::NeverSeen)
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(w, "\nVerdicts (client group -> server service port)")?;
    for v in rows.iter().take(MAX_PORT_ROWS) {
        writeln!(
            w,
            "  {:<22} {:<24} {:<15} -> {}:{}/{}  policy {}  ({} working, {} failed)",
            v.verdict,
            v.client_group,
            v.service,
            v.server,
            v.port,
            proto_name(v.proto),
            v.policy,
            v.working,
            v.failed
        )?;
    }
    if rows.len() > MAX_PORT_ROWS {
        writeln!(w, "  ... {} more", rows.len() - MAX_PORT_ROWS)?;
    }
    Ok(())
}

/// Two taps: the clock alignment and the ports where packets vanished.
fn write_taps(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    let Some(t) = &a.taps else { return Ok(()) };
    writeln!(
        w,
        "\nTwo taps: inside {} / outside {}",
        t.inside_inputs.join(", "),
        t.outside_inputs.join(", ")
    )?;
    if t.aligned_by == 0 {
        writeln!(
            w,
            "  clocks: no connection seen on both taps; assumed in sync"
        )?;
    } else {
        writeln!(
            w,
            "  clocks: outside = inside {:+.3} ms (median over {} connections seen on both)",
            t.offset_ns as f64 / 1e6,
            t.aligned_by
        )?;
    }
    for p in &t.ports {
        if p.only_inside + p.only_outside == 0 && p.inside_packets == p.outside_packets {
            continue;
        }
        writeln!(
            w,
            "  {}:{}/{}  connections: {} both, {} only inside, {} only outside; packets inside {:?}, outside {:?}",
            p.server,
            p.port,
            proto_name(p.proto),
            p.both,
            p.only_inside,
            p.only_outside,
            p.inside_packets,
            p.outside_packets
        )?;
    }
    Ok(())
}

/// Writes the text report, every line within [`TEXT_WIDTH`] columns.
pub fn write_text(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    write_text_with(a, &super::ReportOptions::default(), w)
}

/// The narrowest width a terminal gets: below it the tables and commands
/// would be cut to nothing.
const MIN_WIDTH: usize = 80;

/// [`write_text`], in colour when `opts.color` (for a terminal), within
/// `opts.width` columns (a terminal's width) instead of [`TEXT_WIDTH`].
pub fn write_text_with(
    a: &Analysis,
    opts: &super::ReportOptions,
    w: &mut dyn Write,
) -> io::Result<()> {
    let width = opts.width.unwrap_or(TEXT_WIDTH).max(MIN_WIDTH);
    if !opts.color {
        let mut wrap = Lines::wrap(w, width);
        write_report(a, width, &mut wrap)?;
        return wrap.finish();
    }
    let mut paint = Lines::paint(w);
    let mut wrap = Lines::wrap(&mut paint, width);
    write_report(a, width, &mut wrap)?;
    wrap.finish()?;
    paint.finish()
}

fn write_report(a: &Analysis, width: usize, w: &mut dyn Write) -> io::Result<()> {
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
    super::limits::write_limits_text(&a.correlated.limits, w)?;
    super::limits::write_one_way_text(&a.correlated.one_way, w)?;
    super::headline::write(&a.correlated.findings, width, w)?;
    write_inputs(&a.inputs, w)?;
    write_findings(a, width, w)?;
    write_verdicts(a, w)?;
    write_taps(a, w)?;
    write_handoffs(&a.correlated.handoffs, w)?;
    write_unseen_proxy_requests(a, w)?;
    // The verdicts' own judgement of every flow (the one rule: scan probes,
    // lone SYNs at the capture's end, multicast queries are not failures).
    let outcomes = a.flow_outcomes();
    write_failed(a, &outcomes, w)?;
    write_flow_tables(a, &outcomes, w)?;
    write_packets(a, w)
}

fn write_inputs(inputs: &[InputInfo], w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "\nInputs")?;
    for i in inputs {
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
    Ok(())
}

fn write_handoffs(handoffs: &[Handoff], w: &mut dyn Write) -> io::Result<()> {
    if handoffs.is_empty() {
        return Ok(());
    }
    let failed = handoffs.iter().filter(|h| h.outcome.not_followed()).count();
    writeln!(
        w,
        "\nEndpoint-mapper hand-offs: {} ({} not followed)",
        handoffs.len(),
        failed
    )?;
    for h in handoffs {
        writeln!(w, "  {}", handoff_line(h))?;
    }
    Ok(())
}

/// RPC over HTTP whose proxy requests were not seen (#24): connections that
/// opened with the ncacn_http banner, other than to the mapper on 593, that
/// no RPC proxy request in the capture named. Their clients' requests went
/// over HTTPS (or outside the capture): which backend they asked for cannot
/// be seen; the connections themselves are judged like any other.
fn write_unseen_proxy_requests(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    let c = &a.correlated;
    let mut by_proxy: std::collections::BTreeMap<
        std::net::IpAddr,
        (u64, std::collections::BTreeSet<u16>),
    > = std::collections::BTreeMap::new();
    for f in &a.flows {
        let http = f
            .rpc
            .as_ref()
            .is_some_and(|r| r.carrier == crate::event::Carrier::Http);
        if !http || f.server_port == crate::proto::rpch::NCACN_HTTP_MAPPER_PORT {
            continue;
        }
        if c.label(f).identified_by == "rpc-proxy-handoff" {
            continue;
        }
        let e = by_proxy.entry(f.client).or_default();
        e.0 += 1;
        e.1.insert(f.server_port);
    }
    if by_proxy.is_empty() {
        return Ok(());
    }
    writeln!(
        w,
        "
RPC over HTTP: requests not seen"
    )?;
    for (proxy, (n, ports)) in by_proxy {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        writeln!(
            w,
            "  {proxy}: {n} ncacn_http connection{} (port {}) that no RPC proxy request in the capture named: its clients' requests are encrypted (HTTPS) or outside the capture, so which backend they asked for cannot be seen; the connections are judged as flows",
            if n == 1 { "" } else { "s" },
            ports.join(", ")
        )?;
    }
    Ok(())
}

/// The flows the verdicts judge failed attempts (`outcomes[i]` of flow `i`
/// is `Some(false)`), the first [`MAX_FAILED_ROWS`] of them.
fn write_failed(a: &Analysis, outcomes: &[Option<bool>], w: &mut dyn Write) -> io::Result<()> {
    let c = &a.correlated;
    let failed: Vec<(&FlowRecord, &'static str)> = a
        .flows
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| **o == Some(false))
        .map(|(f, _)| (f, c.label(f).service))
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
    Ok(())
}

/// Flows by KB scenario, then by service and server port.
fn write_flow_tables(a: &Analysis, outcomes: &[Option<bool>], w: &mut dyn Write) -> io::Result<()> {
    let c = &a.correlated;
    let failed_at = |i: usize| outcomes.get(i) == Some(&Some(false));
    // Flows grouped in the KB's own scenarios.
    let mut scenarios: BTreeMap<&'static str, [u64; 3]> = BTreeMap::new();
    for (i, f) in a.flows.iter().enumerate() {
        let service = c.label(f).service;
        let server_is_exchange = c.is_exchange_server(&f.server);
        let s2s = server_is_exchange && c.is_exchange_server(&f.client);
        let row = scenarios
            .entry(kb_scenario(service, server_is_exchange, s2s))
            .or_default();
        row[0] += 1;
        row[1] += established(f) as u64;
        row[2] += failed_at(i) as u64;
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
    write_port_table(a, &failed_at, w)
}

/// Flows by service and server port, the busiest first.
fn write_port_table(
    a: &Analysis,
    failed_at: &dyn Fn(usize) -> bool,
    w: &mut dyn Write,
) -> io::Result<()> {
    let c = &a.correlated;
    // (service, proto, port) -> (flows, established, failed, packets, bytes)
    let mut by_port: BTreeMap<(&str, &str, u16), [u64; 5]> = BTreeMap::new();
    for (i, f) in a.flows.iter().enumerate() {
        let service = c.label(f).service;
        let row = by_port
            .entry((service, proto_name(f.proto), f.server_port))
            .or_default();
        row[0] += 1;
        row[1] += established(f) as u64;
        row[2] += failed_at(i) as u64;
        row[3] += f.packets[0] + f.packets[1];
        row[4] += f.bytes[0] + f.bytes[1];
    }
    let mut rows: Vec<_> = by_port.into_iter().collect();
    rows.sort_by(|a, b| b.1[0].cmp(&a.1[0]).then(a.0.cmp(&b.0)));
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
    Ok(())
}

/// Packet, decoding and flow-table counters.
fn write_packets(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    let s = &a.stats;
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
    // Live captures only.
    if a.inputs.iter().any(|i| i.kernel_drops.is_some()) {
        let sum = |f: fn(&InputInfo) -> Option<u64>| a.inputs.iter().filter_map(f).sum::<u64>();
        writeln!(
            w,
            "  not captured: dropped by the kernel {}, by the interface {}",
            sum(|i| i.kernel_drops),
            sum(|i| i.interface_drops)
        )?;
    }
    Ok(())
}
