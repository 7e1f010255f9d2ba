//! `exflow rules`: firewall rules allowing exactly the successful
//! Exchange/AD traffic of a baseline.
//!
//! Only entries with at least one success, of a service of the policy
//! service table (`policy::services`: the KB's Exchange and AD services),
//! become rules; the rest is listed as skipped. Per (server, proto, service)
//! the sources are the client groups' networks and the ports those that
//! worked, adjacent ports merged into ranges; rules with the same sources,
//! ports and service are then merged over their servers. Every rule is
//! commented with its service.
//!
//! Dynamic RPC ports: `Dynamic::Pin` (the default) writes no rule for them
//! but a comment recommending to pin each interface's port with the KB's
//! registry value (then allow that one port), the same plan `policy
//! from-baseline` pins from (`super::pins`); `Dynamic::Observed` allows the
//! ports each interface was seen working on — those ports, never the range
//! between them (a service seen on 6135 and 55001 opens those two, not the
//! 48,866 ports between them nobody used).
//!
//! New-mail notifications (Q264035) are allowed from the Exchange
//! servers' ports above 1024 to the clients' ports above 1024: the client
//! picks its port anew at every start, so the port seen once is not a rule.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use super::Baseline;
use crate::kb::ExchangeVersion;
use crate::policy::services;
use crate::roles::Cidr;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A complete `nft -f` file (table inet exflow).
    Nftables,
    /// An `iptables-restore` file (IPv4 rules).
    Iptables,
    /// An `ip6tables-restore` file (IPv6 rules).
    Ip6tables,
    /// `netsh advfirewall` commands for the Windows servers' own firewall.
    Netsh,
    /// Cisco ASA object groups and an access list.
    CiscoAsa,
}

/// What to do with dynamic RPC ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dynamic {
    /// Allow the ports each interface was seen working on (never the range
    /// between them).
    Observed,
    /// Recommend pinning (registry values), no rule for the dynamic ports.
    Pin,
}

/// One allow rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub v6: bool,
    pub proto: String,
    pub service: String,
    pub sources: BTreeSet<Cidr>,
    pub ports: Vec<(u16, u16)>,
    pub servers: BTreeSet<IpAddr>,
    /// Dynamic RPC: the observed ports are allowed (Dynamic::Observed).
    pub dynamic: bool,
    /// Source ports, when the rule restricts them (notifications: the
    /// Exchange server's ports above 1024).
    pub sports: Option<(u16, u16)>,
}

/// The rules plus what is said beside them.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub rules: Vec<Rule>,
    /// Pin recommendations (Dynamic::Pin) for dynamic RPC interfaces.
    pub pins: Vec<String>,
    /// Successful traffic left out, and why.
    pub skipped: Vec<String>,
    pub dynamic: Option<Dynamic>,
}

/// Merges a port set into ranges of adjacent ports.
pub fn port_ranges(ports: &BTreeSet<u16>) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for &p in ports {
        match out.last_mut() {
            Some(r) if r.1.checked_add(1) == Some(p) => r.1 = p,
            _ => out.push((p, p)),
        }
    }
    out
}

fn parse_cidr(s: &str) -> Option<Cidr> {
    s.parse::<Cidr>().ok().map(|c| {
        // Normalize to the network address.
        match c.addr {
            IpAddr::V4(a) => {
                let m = if c.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(c.prefix))
                };
                Cidr {
                    addr: IpAddr::V4((u32::from(a) & m).into()),
                    prefix: c.prefix,
                }
            }
            IpAddr::V6(a) => {
                let m = if c.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(c.prefix))
                };
                Cidr {
                    addr: IpAddr::V6((u128::from(a) & m).into()),
                    prefix: c.prefix,
                }
            }
        }
    })
}

/// Q264035's ports for new-mail notifications, both ends: above 1024.
const NOTIFICATION_PORTS: (u16, u16) = (1025, 65535);

/// Plans the rules of `b`; registry values for Exchange `version` (None:
/// every version's, labelled).
pub fn plan(b: &Baseline, dynamic: Dynamic, version: Option<ExchangeVersion>) -> Plan {
    let mut skipped = Vec::new();
    let per = allowed(b, dynamic, &mut skipped);
    Plan {
        dynamic: Some(dynamic),
        rules: rules_of(per),
        pins: if dynamic == Dynamic::Pin {
            pin_lines(b, version)
        } else {
            Vec::new()
        },
        skipped,
    }
}

/// Per (server, proto, service): the client networks and the ports that
/// worked, and whether the service's port is dynamic.
type Acc = (BTreeSet<Cidr>, BTreeSet<u16>, bool);

/// The working Exchange/AD traffic of the baseline, per (server, proto,
/// service); what cannot become a rule goes to `skipped`, with why.
fn allowed(
    b: &Baseline,
    dynamic: Dynamic,
    skipped: &mut Vec<String>,
) -> BTreeMap<(IpAddr, String, String), Acc> {
    let mut per: BTreeMap<(IpAddr, String, String), Acc> = BTreeMap::new();
    for e in &b.flows {
        let ok = e.working_ports();
        if e.success == 0 || ok.is_empty() {
            continue;
        }
        if services::service_ports(&e.service).is_none() {
            skipped.push(format!(
                "{} → {} {} ({}): not an Exchange/AD service of the KB tables",
                e.client_group,
                e.server,
                e.port_label(),
                e.service
            ));
            continue;
        }
        let mut sources = BTreeSet::new();
        for n in b.group_networks(&e.client_group) {
            match parse_cidr(&n) {
                Some(c) if c.addr.is_ipv6() == e.server.is_ipv6() => {
                    sources.insert(c);
                }
                Some(_) => {}
                None => skipped.push(format!(
                    "client group {}: '{n}' is not a network",
                    e.client_group
                )),
            }
        }
        if sources.is_empty() {
            continue;
        }
        if e.is_dynamic() && dynamic == Dynamic::Pin {
            continue;
        }
        let acc = per
            .entry((e.server, e.proto.clone(), e.service.clone()))
            .or_insert_with(|| (BTreeSet::new(), BTreeSet::new(), e.is_dynamic()));
        acc.0.extend(sources);
        // The ports that worked, never the range between them.
        acc.1.extend(ok);
    }
    per
}

/// One rule per traffic: merged over servers, then over services sharing
/// exactly the same traffic, in a stable order.
fn rules_of(per: BTreeMap<(IpAddr, String, String), Acc>) -> Vec<Rule> {
    // Merge over servers.
    // (v6, proto, service, sources, port ranges, dynamic) -> servers
    type Traffic = (bool, String, String, BTreeSet<Cidr>, Vec<(u16, u16)>, bool);
    let mut merged: BTreeMap<Traffic, BTreeSet<IpAddr>> = BTreeMap::new();
    for ((server, proto, service), (sources, ports, dynamic)) in per {
        let ports = if is_notification(&service) {
            vec![NOTIFICATION_PORTS]
        } else {
            port_ranges(&ports)
        };
        merged
            .entry((server.is_ipv6(), proto, service, sources, ports, dynamic))
            .or_default()
            .insert(server);
    }
    // Then over services sharing exactly the same traffic (one rule, the
    // services named together in its comment).
    type Same = (
        bool,
        String,
        BTreeSet<Cidr>,
        Vec<(u16, u16)>,
        BTreeSet<IpAddr>,
        bool,
    );
    let mut same: BTreeMap<Same, Vec<String>> = BTreeMap::new();
    for ((v6, proto, service, sources, ports, dynamic), servers) in merged {
        same.entry((v6, proto, sources, ports, servers, dynamic))
            .or_default()
            .push(service);
    }
    let mut rules: Vec<Rule> = same
        .into_iter()
        .map(
            |((v6, proto, sources, ports, servers, dynamic), services)| Rule {
                v6,
                proto,
                sports: services
                    .iter()
                    .any(|s| is_notification(s))
                    .then_some(NOTIFICATION_PORTS),
                service: services.join(", "),
                sources,
                ports,
                servers,
                dynamic,
            },
        )
        .collect();
    // Rules in a stable, readable order: by service's first port.
    rules.sort_by(|a, b| {
        (
            a.v6,
            a.ports.first(),
            &a.service,
            &a.proto,
            &a.servers,
            &a.sources,
        )
            .cmp(&(
                b.v6,
                b.ports.first(),
                &b.service,
                &b.proto,
                &b.servers,
                &b.sources,
            ))
    });
    rules
}

/// What pins each dynamic interface instead of a rule.
fn pin_lines(b: &Baseline, version: Option<ExchangeVersion>) -> Vec<String> {
    let mut lines = Vec::new();
    for p in super::pins::pin_plans(b, version) {
        let list = p
            .ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        lines.push(format!(
            "{} on {}: dynamic port(s) observed {list}; {}",
            p.service,
            p.server,
            p.how(version)
        ));
    }
    lines
}

fn cidr_str(c: &Cidr) -> String {
    let max = if c.addr.is_ipv4() { 32 } else { 128 };
    if c.prefix == max {
        c.addr.to_string()
    } else {
        c.to_string()
    }
}

fn port_str(r: &(u16, u16), sep: char) -> String {
    if r.0 == r.1 {
        r.0.to_string()
    } else {
        format!("{}{sep}{}", r.0, r.1)
    }
}

/// Whether `service` is the new-mail notification (Q264035).
fn is_notification(service: &str) -> bool {
    services::service_ports(service).is_some_and(|s| s.kind == services::ServiceKind::Notification)
}

fn comment_of(r: &Rule) -> String {
    if r.dynamic {
        format!("exflow: {} (dynamic RPC, observed ports)", r.service)
    } else if r.sports.is_some() {
        format!("exflow: {} (Q264035: ports > 1024 both ends)", r.service)
    } else {
        format!("exflow: {}", r.service)
    }
}

fn header(out: &mut String, plan: &Plan, c: &str, title: &str, origin: &str) {
    let _ = writeln!(out, "{c} {title}");
    let _ = writeln!(out, "{c} generated by exflow rules from {origin}");
    let _ = writeln!(
        out,
        "{c} allows exactly the successful Exchange/AD traffic of the baseline, grouped by network and port range"
    );
    let _ = writeln!(
        out,
        "{c} dynamic RPC ports: {}",
        match plan.dynamic {
            Some(Dynamic::Observed) => "observed (each interface's observed ports are allowed, not the range between them; they change when the service restarts: prefer --dynamic pin)",
            _ => "pin (no rule for them: pin each interface's port with the registry value below, then allow that port)",
        }
    );
    for p in &plan.pins {
        let _ = writeln!(out, "{c} PIN: {p}");
    }
    for s in &plan.skipped {
        let _ = writeln!(out, "{c} skipped: {s}");
    }
}

/// Renders the plan; `origin` names the baseline in the header.
pub fn render(plan: &Plan, format: Format, origin: &str) -> String {
    let mut out = String::new();
    match format {
        Format::Nftables => nftables(&mut out, plan, origin),
        Format::Iptables => iptables(&mut out, plan, origin, false),
        Format::Ip6tables => iptables(&mut out, plan, origin, true),
        Format::Netsh => netsh(&mut out, plan, origin),
        Format::CiscoAsa => cisco_asa(&mut out, plan, origin),
    }
    out
}

/// A complete nftables file: table inet exflow, replaced on load.
fn nftables(out: &mut String, plan: &Plan, origin: &str) {
    let _ = writeln!(out, "#!/usr/sbin/nft -f");
    header(
        out,
        plan,
        "#",
        "nftables ruleset (load: nft -f FILE; replaces table inet exflow)",
        origin,
    );
    let _ = writeln!(out, "# The chain's policy is accept so that loading it cuts nothing; once checked, set \"policy drop\" to enforce it.");
    let _ = writeln!(out, "table inet exflow");
    let _ = writeln!(out, "delete table inet exflow");
    let _ = writeln!(out, "table inet exflow {{");
    let _ = writeln!(out, "\tchain forward {{");
    let _ = writeln!(
        out,
        "\t\ttype filter hook forward priority 0; policy accept;"
    );
    let _ = writeln!(
        out,
        "\t\tct state established,related accept comment \"exflow: replies\""
    );
    for r in &plan.rules {
        let fam = if r.v6 { "ip6" } else { "ip" };
        let set = |v: Vec<String>| {
            if v.len() == 1 {
                v[0].clone()
            } else {
                format!("{{ {} }}", v.join(", "))
            }
        };
        let src = set(r.sources.iter().map(cidr_str).collect());
        let dst = set(r.servers.iter().map(IpAddr::to_string).collect());
        let ports = set(r.ports.iter().map(|p| port_str(p, '-')).collect());
        let sport = r.sports.map_or(String::new(), |p| {
            format!("{} sport {} ", r.proto, port_str(&p, '-'))
        });
        let _ = writeln!(out, "\t\t# {}", r.service);
        let _ = writeln!(
            out,
            "\t\t{fam} saddr {src} {fam} daddr {dst} {sport}{} dport {ports} ct state new accept comment \"{}\"",
            r.proto,
            comment_of(r)
        );
    }
    let _ = writeln!(out, "\t\tcounter comment \"exflow: not in the baseline\"");
    let _ = writeln!(out, "\t}}");
    let _ = writeln!(out, "}}");
}

/// An iptables-restore (or ip6tables-restore) file: the EXFLOW chain.
fn iptables(out: &mut String, plan: &Plan, origin: &str, v6: bool) {
    let tool = if v6 { "ip6tables" } else { "iptables" };
    header(
        out,
        plan,
        "#",
        &format!("{tool}-restore file (load: {tool}-restore FILE, which replaces the filter table; --noflush to add the EXFLOW chain to yours)"),
        origin,
    );
    let other = plan.rules.iter().filter(|r| r.v6 != v6).count();
    if other > 0 {
        let _ = writeln!(
            out,
            "# {other} {} rule(s) are in --format {}",
            if v6 { "IPv4" } else { "IPv6" },
            if v6 { "iptables" } else { "ip6tables" }
        );
    }
    let _ = writeln!(out, "*filter");
    let _ = writeln!(out, ":FORWARD ACCEPT [0:0]");
    let _ = writeln!(out, ":EXFLOW - [0:0]");
    let _ = writeln!(out, "-A FORWARD -j EXFLOW");
    let _ = writeln!(
        out,
        "-A EXFLOW -m conntrack --ctstate ESTABLISHED,RELATED -m comment --comment \"exflow: replies\" -j ACCEPT"
    );
    for r in plan.rules.iter().filter(|r| r.v6 == v6) {
        let _ = writeln!(out, "# {}", r.service);
        // multiport takes up to 15 ports, a range counting as two.
        for chunk in r.ports.chunks(7) {
            let dport = if chunk.len() == 1 {
                format!("--dport {}", port_str(&chunk[0], ':'))
            } else {
                format!(
                    "-m multiport --dports {}",
                    chunk
                        .iter()
                        .map(|p| port_str(p, ':'))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            };
            let dport = match r.sports {
                Some(p) => format!("--sport {} {dport}", port_str(&p, ':')),
                None => dport,
            };
            for s in &r.sources {
                for d in &r.servers {
                    let _ = writeln!(
                        out,
                        "-A EXFLOW -p {} -s {} -d {d} {dport} -m conntrack --ctstate NEW -m comment --comment \"{}\" -j ACCEPT",
                        r.proto,
                        cidr_str(s),
                        comment_of(r)
                    );
                }
            }
        }
    }
    let _ = writeln!(out, "COMMIT");
}

/// netsh advfirewall commands, inbound on each server.
fn netsh(out: &mut String, plan: &Plan, origin: &str) {
    header(
        out,
        plan,
        "REM",
        "netsh advfirewall rules (run on each server, elevated; inbound to the server)",
        origin,
    );
    for (i, r) in plan.rules.iter().enumerate() {
        let remote = r.sources.iter().map(cidr_str).collect::<Vec<_>>().join(",");
        let local = r
            .servers
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let ports = r
            .ports
            .iter()
            .map(|p| port_str(p, '-'))
            .collect::<Vec<_>>()
            .join(",");
        let remoteport = r.sports.map_or(String::new(), |p| {
            format!(" remoteport={}", port_str(&p, '-'))
        });
        let _ = writeln!(out, "REM {}", r.service);
        let _ = writeln!(
            out,
            "netsh advfirewall firewall add rule name=\"exflow {} {}\" dir=in action=allow protocol={} localip={local} localport={ports} remoteip={remote}{remoteport} description=\"{}\"",
            i + 1,
            r.service,
            r.proto.to_uppercase(),
            comment_of(r)
        );
    }
}

/// Cisco ASA object groups and the EXFLOW access list.
fn cisco_asa(out: &mut String, plan: &Plan, origin: &str) {
    header(out, plan, "!", "Cisco ASA object groups and access list EXFLOW (apply with access-group EXFLOW in interface INSIDE)", origin);
    let net = |c: &Cidr| -> String {
        let max = if c.addr.is_ipv4() { 32 } else { 128 };
        match c.addr {
            _ if c.prefix == max => format!(" network-object host {}", c.addr),
            IpAddr::V4(_) => {
                let m = if c.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(c.prefix))
                };
                format!(" network-object {} {}", c.addr, std::net::Ipv4Addr::from(m))
            }
            IpAddr::V6(_) => format!(" network-object {c}"),
        }
    };
    for (i, r) in plan.rules.iter().enumerate() {
        let n = i + 1;
        let _ = writeln!(out, "object-group network EXFLOW-SRC-{n}");
        for s in &r.sources {
            let _ = writeln!(out, "{}", net(s));
        }
        let _ = writeln!(out, "object-group network EXFLOW-DST-{n}");
        for d in &r.servers {
            let _ = writeln!(out, " network-object host {d}");
        }
        let _ = writeln!(out, "object-group service EXFLOW-SVC-{n} {}", r.proto);
        for p in &r.ports {
            if p.0 == p.1 {
                let _ = writeln!(out, " port-object eq {}", p.0);
            } else {
                let _ = writeln!(out, " port-object range {} {}", p.0, p.1);
            }
        }
        let sport = r
            .sports
            .map_or(String::new(), |p| format!(" range {} {}", p.0, p.1));
        let _ = writeln!(out, "access-list EXFLOW remark {}", comment_of(r));
        let _ = writeln!(
            out,
            "access-list EXFLOW extended permit {} object-group EXFLOW-SRC-{n}{sport} object-group EXFLOW-DST-{n} object-group EXFLOW-SVC-{n}",
            r.proto
        );
    }
}
