//! The text report's headline, "BLOCKED: ...": what the network stops,
//! grouped by (service, proto, port) across servers and clients, counted
//! (servers, clients, attempts) and ranked by impact (most clients, then
//! most attempts), in at most [`MAX_LINES`] lines however many findings
//! there are. The findings below it and the JSON keep one finding per
//! (kind, server, proto, port).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{self, Write};
use std::net::IpAddr;

#[cfg(test)]
use super::layout::TEXT_WIDTH;
use super::layout::{fit, shell_lines, wrap_prose};
use super::proto_name;
use super::text::{evidence_text, what};
use crate::verdict::{Confidence, Finding, FindingKind, PinAdvice};

/// Groups listed one line each; the rest are counted on one line.
pub const MAX_GROUPS: usize = 16;
/// The first groups get their detail under them: where, the evidence, the
/// fix (a rule that fits two lines) and the registry pin.
const DETAILED: usize = 4;
/// Lines of one group's detail at most: evidence 1, fix 2, pin 2.
const DETAIL_LINES: usize = 5;
/// The headline never has more lines than this: the title, the groups,
/// their detail and the line that says where the rest is.
pub const MAX_LINES: usize = 1 + MAX_GROUPS + DETAILED * DETAIL_LINES + 1;

/// Blocked findings of one (service, proto, port).
struct Group<'a> {
    findings: Vec<&'a Finding>,
    servers: BTreeSet<IpAddr>,
    clients: usize,
    attempts: usize,
    /// The surest finding's.
    confidence: Confidence,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The first of `n` addresses, "+N more" for the others.
fn some_of<'a>(mut all: impl Iterator<Item = &'a IpAddr>, n: usize) -> String {
    match all.next() {
        Some(a) if n > 1 => format!("{a} +{} more", n - 1),
        Some(a) => a.to_string(),
        None => "-".into(),
    }
}

fn group<'a>(blocked: &[&'a Finding]) -> Vec<Group<'a>> {
    let mut by_key: BTreeMap<(u8, u16, &'static str), Vec<&'a Finding>> = BTreeMap::new();
    for f in blocked {
        by_key
            .entry((f.proto, f.port, f.service))
            .or_default()
            .push(f);
    }
    let mut groups: Vec<Group<'a>> = by_key
        .into_values()
        .map(|findings| {
            let clients: HashSet<IpAddr> = findings
                .iter()
                .flat_map(|f| f.clients.iter().copied())
                .collect();
            Group {
                servers: findings.iter().map(|f| f.server).collect(),
                clients: clients.len(),
                attempts: findings.iter().map(|f| f.evidence.len()).sum(),
                confidence: findings
                    .iter()
                    .map(|f| f.confidence)
                    .max()
                    .unwrap_or(Confidence::Low),
                findings,
            }
        })
        .collect();
    // Most clients first, then most attempts, then the surer; ties in
    // (proto, port, service) order (the sort is stable).
    groups.sort_by(|a, b| {
        (b.clients, b.attempts, b.confidence).cmp(&(a.clients, a.attempts, a.confidence))
    });
    groups
}

/// "tcp/445 smb: 3 servers, 120 clients, 250 attempts; high confidence;
/// policy allowed", the service cut to fit the width.
fn row(g: &Group, width: usize) -> String {
    let f = g.findings[0];
    let policies: BTreeSet<&str> = g.findings.iter().map(|f| f.policy.as_str()).collect();
    let policy = if policies.len() == 1 {
        f.policy.as_str()
    } else {
        "mixed"
    };
    let head = format!("  {}/{} ", proto_name(f.proto), f.port);
    let tail = format!(
        ": {}, {}, {}; {} confidence; policy {}",
        plural(g.servers.len(), "server", "servers"),
        plural(g.clients, "client", "clients"),
        plural(g.attempts, "attempt", "attempts"),
        g.confidence.as_str(),
        policy
    );
    let room = width.saturating_sub(head.chars().count() + tail.chars().count());
    format!("{head}{}{tail}", fit(&what(f), room.max(12)))
}

/// Where, the evidence, the fix and the pin of a group, in at most
/// [`DETAIL_LINES`] lines.
fn detail(g: &Group, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let first = g.findings[0];
    // The group's evidence, one entry per distinct description.
    let mut evidence: Vec<(String, usize)> = Vec::new();
    for e in g.findings.iter().flat_map(|f| &f.evidence) {
        let t = evidence_text(e);
        match evidence.iter_mut().find(|(p, _)| *p == t) {
            Some((_, n)) => *n += 1,
            None => evidence.push((t, 1)),
        }
    }
    // The most frequent first: a cut line loses the rare ones.
    evidence.sort_by_key(|e| std::cmp::Reverse(e.1));
    let evidence: Vec<String> = evidence
        .into_iter()
        .map(|(t, n)| if n > 1 { format!("{t} ×{n}") } else { t })
        .collect();
    let clients: BTreeSet<&IpAddr> = g.findings.iter().flat_map(|f| &f.clients).collect();
    out.push(fit(
        &format!(
            "    {} from {}: {}",
            some_of(g.servers.iter(), g.servers.len()),
            some_of(clients.iter().copied(), g.clients),
            evidence.join("; ")
        ),
        width,
    ));
    let fix = first.fix.as_ref();
    let rule = fix.and_then(|x| x.nftables.first());
    if g.findings.len() > 1 {
        out.push(format!(
            "    fix: one rule per server ({}): see the findings below, or --format json",
            g.findings.len()
        ));
    } else if let Some(rule) = rule {
        let lines = shell_lines("    fix: ", rule, width);
        if lines.len() <= 2 {
            out.extend(lines);
        } else {
            let blocks = fix
                .and_then(|x| x.sources.as_ref())
                .map_or(0, |s| s.blocks.len());
            out.push(format!(
                "    fix: one nft rule with {}: see the findings below, or --format json",
                plural(blocks, "source block", "source blocks")
            ));
        }
    }
    if let Some(pin) = fix.and_then(|x| pin_line(&x.pin)) {
        out.extend(wrap_prose(&pin, width).into_iter().take(2));
    }
    out.truncate(DETAIL_LINES);
    out
}

/// "or pin it: KEY "VALUE" (ARTICLE)": the first value; when the values
/// depend on the Exchange version (not known), one per version, each
/// labelled and with its key below `...\Services` to fit two lines.
fn pin_line(pins: &[PinAdvice]) -> Option<String> {
    let first = pins.first()?;
    if pins.iter().all(|p| p.exchange.is_none()) {
        return Some(format!(
            "    or pin it: {} \"{}\" ({})",
            first.key, first.value, first.article
        ));
    }
    let mut seen: Vec<&Option<String>> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    for p in pins {
        if seen.contains(&&p.exchange) {
            continue;
        }
        seen.push(&p.exchange);
        let key = p
            .key
            .strip_prefix(r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\")
            .unwrap_or(&p.key);
        let label = p.exchange.as_deref().map_or(String::new(), |l| {
            format!(
                "{}: ",
                l.trim_start_matches("Exchange ")
                    .replace(", global catalog", " GC")
            )
        });
        parts.push(format!("{label}{key} \"{}\" ({})", p.value, p.article));
    }
    Some(format!("    or pin it: {}", parts.join("; ")))
}

/// The headline's lines for `findings` (all kinds): the blocked ports, then
/// one line for connections broken after their handshake, if any — without
/// it a capture whose only problem is a firewall forgetting idle
/// connections was headed "BLOCKED: nothing" and exited 1.
pub fn lines(findings: &[Finding], width: usize) -> Vec<String> {
    let mut out = blocked_lines(findings, width);
    out.extend(broken_later(findings));
    out.extend(fragments_line(findings));
    out
}

/// "FRAGMENTS DROPPED: ...": datagrams that lost their later fragments
/// (#25), with the ports they were for.
fn fragments_line(findings: &[Finding]) -> Option<String> {
    let lost: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::FragmentsDropped)
        .collect();
    if lost.is_empty() {
        return None;
    }
    let mut ports: Vec<String> = lost
        .iter()
        .map(|f| format!("{}/{} {}", super::proto_name(f.proto), f.port, f.service))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    Some(format!(
        "FRAGMENTS DROPPED: {} lost in fragments at {} ({}): see the findings below",
        plural(
            lost.iter().map(|f| f.evidence.len()).sum(),
            "exchange",
            "exchanges"
        ),
        plural(lost.len(), "server port", "server ports"),
        ports.join(", ")
    ))
}

/// "BROKEN LATER: ...": connections cut after a working handshake.
fn broken_later(findings: &[Finding]) -> Option<String> {
    let later: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                FindingKind::KilledAfterIdle | FindingKind::BlackHole | FindingKind::PmtuBlackHole
            )
        })
        .collect();
    if later.is_empty() {
        return None;
    }
    let mut kinds: Vec<&str> = later.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let connections: usize = later.iter().map(|f| f.evidence.len()).sum();
    Some(format!(
        "BROKEN LATER: {} cut after the handshake at {} ({}): see the findings below",
        plural(connections, "connection", "connections"),
        plural(later.len(), "server port", "server ports"),
        kinds.join(", ")
    ))
}

/// The blocked ports' lines (only blocked findings count).
fn blocked_lines(findings: &[Finding], width: usize) -> Vec<String> {
    let blocked: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::Blocked)
        .collect();
    if blocked.is_empty() {
        return vec!["BLOCKED: nothing — no connection attempt was stopped by the network".into()];
    }
    let groups = group(&blocked);
    let servers: HashSet<IpAddr> = blocked.iter().map(|f| f.server).collect();
    let clients: HashSet<IpAddr> = blocked
        .iter()
        .flat_map(|f| f.clients.iter().copied())
        .collect();
    let attempts: usize = blocked.iter().map(|f| f.evidence.len()).sum();
    let mut out = vec![format!(
        "BLOCKED: {} the network (a firewall) stops ({} on {}; {}, {})",
        plural(blocked.len(), "port", "ports"),
        plural(groups.len(), "service port", "service ports"),
        plural(servers.len(), "server", "servers"),
        plural(clients.len(), "client", "clients"),
        plural(attempts, "attempt", "attempts"),
    )];
    for (i, g) in groups.iter().take(MAX_GROUPS).enumerate() {
        out.push(row(g, width));
        if i < DETAILED {
            out.extend(detail(g, width));
        }
    }
    if groups.len() > MAX_GROUPS {
        let rest = &groups[MAX_GROUPS..];
        let ports: usize = rest.iter().map(|g| g.findings.len()).sum();
        out.push(format!(
            "  ... and {} more {} ({}): see the findings below, or --format json",
            rest.len(),
            if rest.len() == 1 { "group" } else { "groups" },
            plural(ports, "blocked port", "blocked ports")
        ));
    }
    out
}

/// Writes the headline within `width` columns, after a blank line.
pub fn write(findings: &[Finding], width: usize, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w)?;
    for l in lines(findings, width) {
        writeln!(w, "{l}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PROTO_TCP;
    use crate::verdict::{DecisionKind, Evidence, Fix};

    fn finding(server: IpAddr, port: u16, service: &'static str, clients: &[IpAddr]) -> Finding {
        Finding {
            kind: FindingKind::Blocked,
            proto: PROTO_TCP,
            server,
            port,
            service,
            services: vec![service],
            interface: None,
            clients: clients.to_vec(),
            first_ts: 0,
            evidence: clients
                .iter()
                .map(|c| Evidence::SynUnanswered {
                    ts: 0,
                    client: *c,
                    client_port: 40000,
                    syns: 2,
                    gaps_us: vec![1_000_000],
                })
                .collect(),
            confidence: Confidence::High,
            policy: DecisionKind::Unspecified,
            policy_rule: None,
            verdict: String::new(),
            consequence: None,
            idle_timeout: None,
            fix: Some(Fix {
                nftables: vec![format!(
                    "nft insert rule inet filter forward ip saddr {} ip daddr {server} tcp dport {port} ct state new accept comment \"exflow: {service}\"",
                    clients[0]
                )],
                ..Fix::default()
            }),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn host(net: &str, i: usize) -> IpAddr {
        ip(&format!("{net}.{i}"))
    }

    #[test]
    fn thousands_of_findings_make_a_few_dozen_lines_most_clients_first() {
        let mut findings = Vec::new();
        // A port scan's worth: one client, 500 ports on one server.
        for port in 1..=500 {
            findings.push(finding(
                ip("198.51.100.10"),
                port,
                "unknown",
                &[ip("192.0.2.20")],
            ));
        }
        // smb on 200 servers, each from 3 of the same 30 clients.
        for s in 0..200 {
            let clients: Vec<IpAddr> = (0..3)
                .map(|k| host("192.0.2", (s + k) % 30 + 100))
                .collect();
            findings.push(finding(host("198.51.100", s + 21), 445, "smb", &clients));
        }
        // ldap on one server from 10 clients.
        let ten: Vec<IpAddr> = (0..10).map(|k| host("203.0.113", k + 1)).collect();
        findings.push(finding(ip("198.51.100.20"), 389, "ldap", &ten));
        // Not blocked: not in the headline.
        let mut refused = finding(ip("198.51.100.30"), 25, "smtp", &ten);
        refused.kind = FindingKind::RefusedByHost;
        findings.push(refused);

        let out = lines(&findings, TEXT_WIDTH);
        assert!(out.len() <= MAX_LINES, "{}", out.join("\n"));
        const { assert!(MAX_LINES <= 40) };
        assert!(
            out.iter().all(|l| l.chars().count() <= TEXT_WIDTH),
            "{}",
            out.join("\n")
        );
        assert_eq!(
            out[0],
            "BLOCKED: 701 ports the network (a firewall) stops (502 service ports on 202 servers; 41 clients, 1110 attempts)"
        );
        // smb (30 clients) before ldap (10) before the scan's ports (1 each).
        assert!(
            out[1].starts_with("  tcp/445 smb: 200 servers, 30 clients, 600 attempts;"),
            "{}",
            out.join("\n")
        );
        assert_eq!(out[2], "    198.51.100.21 +199 more from 192.0.2.100 +29 more: SYN unanswered (2 SYNs, gaps 1.0 s) ×600");
        assert!(out[3].contains("one rule per server (200)"), "{}", out[3]);
        assert!(out[4].starts_with("  tcp/389 ldap: 1 server, 10 clients, 10 attempts;"));
        assert!(
            out[5].starts_with("    198.51.100.20 from 203.0.113.1 +9 more: "),
            "{}",
            out[5]
        );
        assert!(out[6].starts_with("    fix: nft insert rule"), "{}", out[6]);
        // The scan's ports, lowest first among equals.
        assert!(out
            .iter()
            .any(|l| l.starts_with("  tcp/1 unknown: 1 server, 1 client, 1 attempt;")));
        assert!(!out.iter().any(|l| l.contains("smtp")));
        let last = out.last().unwrap();
        assert_eq!(
            last,
            &format!(
                "  ... and {} more groups ({} blocked ports): see the findings below, or --format json",
                502 - MAX_GROUPS,
                502 - MAX_GROUPS
            )
        );
    }

    #[test]
    fn a_few_findings_are_listed_whole() {
        let findings = vec![
            finding(ip("198.51.100.10"), 55000, "netlogon", &[ip("192.0.2.10")]),
            finding(
                ip("198.51.100.10"),
                55001,
                "ad-replication",
                &[ip("192.0.2.10")],
            ),
        ];
        let out = lines(&findings, TEXT_WIDTH);
        assert_eq!(
            out[0],
            "BLOCKED: 2 ports the network (a firewall) stops (2 service ports on 1 server; 1 client, 2 attempts)"
        );
        assert!(!out.iter().any(|l| l.contains("more groups")));
        assert_eq!(out.iter().filter(|l| l.starts_with("  tcp/")).count(), 2);
        assert_eq!(
            lines(&[], TEXT_WIDTH)[0],
            "BLOCKED: nothing — no connection attempt was stopped by the network"
        );
    }

    #[test]
    fn connections_broken_after_the_handshake_have_a_line_of_their_own() {
        let s: IpAddr = "198.51.100.10".parse().unwrap();
        let c: IpAddr = "192.0.2.10".parse().unwrap();
        let mut idle = finding(s, 389, "ldap", &[c]);
        idle.kind = FindingKind::KilledAfterIdle;
        assert_eq!(lines(std::slice::from_ref(&idle), TEXT_WIDTH).len(), 2);
        assert_eq!(
            lines(std::slice::from_ref(&idle), TEXT_WIDTH)[1],
            format!(
                "BROKEN LATER: {} cut after the handshake at 1 server port (killed-after-idle): see the findings below",
                plural(idle.evidence.len(), "connection", "connections")
            )
        );
        // Nothing broken later: no such line.
        let blocked = finding(s, 445, "smb", &[c]);
        assert!(!lines(&[blocked], TEXT_WIDTH)
            .iter()
            .any(|l| l.starts_with("BROKEN LATER")));
    }
}
