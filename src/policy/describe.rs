//! The human summary of a policy (`exflow policy check FILE`).

use std::fmt::Write as _;
use std::net::IpAddr;

use super::services::{self, ServiceKind};
use super::{profiles, protos_str, Policy, PortSet, Rule, Traffic};
use crate::roles::Cidr;

fn host(c: &Cidr) -> String {
    let max = if c.addr.is_ipv4() { 32 } else { 128 };
    if c.prefix == max {
        c.addr.to_string()
    } else {
        c.to_string()
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Pins that apply to (some of) the group `to`: named by it, or naming an
/// address inside it.
fn pins_toward<'p>(p: &'p Policy, to: &str, service: &str) -> Vec<&'p super::Pin> {
    let service = services::pin_service(service);
    p.pins
        .iter()
        .filter(|pin| pin.service == service)
        .filter(|pin| {
            pin.server == to
                || pin
                    .server
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| p.in_group(to, &ip))
        })
        .collect()
}

fn traffic_detail(p: &Policy, rule: &Rule) -> String {
    let name = match &rule.traffic {
        Traffic::Ports { .. } => return rule.traffic.to_string(),
        Traffic::Service(name) => name,
    };
    let Some(spec) = services::service_ports(name) else {
        return name.clone();
    };
    let default = match spec.kind {
        ServiceKind::Ports => format!(
            "{} {}",
            protos_str(spec.protos),
            PortSet(spec.ports.to_vec())
        ),
        ServiceKind::Notification => "udp >1024, Exchange server → client".to_string(),
        ServiceKind::RpcInterface => format!("tcp {} dynamic", p.rpc_dynamic),
        ServiceKind::RpcDynamic => format!("tcp {}, any RPC interface", p.rpc_dynamic),
        ServiceKind::IcmpEcho => "icmp echo request and reply; exflow does not follow ICMP echo, so this rule is never judged".to_string(),
    };
    let pins = if spec.pinnable() {
        pins_toward(p, &rule.to, name)
    } else {
        Vec::new()
    };
    if pins.is_empty() {
        return format!("{name} ({default})");
    }
    let pinned: Vec<String> = pins
        .iter()
        .map(|pin| {
            let on = if pin.server == rule.to {
                String::new()
            } else {
                format!(" on {}", pin.server)
            };
            format!("{} {} pinned{on}", super::proto_str(pin.proto), pin.port)
        })
        .collect();
    // A pin on the whole group replaces the default everywhere in it.
    if pins.iter().any(|pin| pin.server == rule.to) {
        format!("{name} ({})", pinned.join("; "))
    } else {
        format!("{name} ({}; elsewhere {default})", pinned.join("; "))
    }
}

fn rules_section(out: &mut String, p: &Policy, title: &str, rules: &[Rule]) {
    let _ = writeln!(out, "\n{title}");
    if rules.is_empty() {
        let _ = writeln!(out, "  (none)");
        return;
    }
    let w_origin = rules.iter().map(|r| r.origin.len()).max().unwrap_or(0);
    let paths: Vec<String> = rules
        .iter()
        .map(|r| format!("{} → {}", r.from, r.to))
        .collect();
    let w_path = paths.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    for (r, path) in rules.iter().zip(&paths) {
        let pad = w_path - path.chars().count();
        let _ = write!(
            out,
            "  {:<w_origin$}  {path}{:pad$}  {}",
            r.origin,
            "",
            traffic_detail(p, r)
        );
        if let Some(c) = &r.comment {
            let _ = write!(out, "  # {c}");
        }
        out.push('\n');
    }
}

/// What is known of a pin's server: the Exchange version, and the role of
/// its group (a DC's pin is NTDS's, an Exchange server's MSExchangeSA's).
fn pin_context(
    p: &Policy,
    server: &str,
    version: Option<crate::kb::ExchangeVersion>,
) -> crate::kb::Context {
    let group = p
        .group(server)
        .or_else(|| server.parse::<IpAddr>().ok().and_then(|ip| p.group_of(&ip)));
    let role = group.and_then(|g| g.role);
    crate::kb::Context {
        exchange: version,
        is_exchange: role == Some(super::Role::Exchange),
        is_dc: role == Some(super::Role::Dc),
    }
}

pub(super) fn describe(p: &Policy, version: Option<crate::kb::ExchangeVersion>) -> String {
    let version = version.or_else(|| p.exchange_version());
    let mut out = String::new();
    let from_profiles = p
        .allow
        .iter()
        .filter(|r| r.origin.starts_with("profile "))
        .count();
    let _ = writeln!(
        out,
        "Policy: {}, {}, {} ({from_profiles} from profiles), {}, {}; dynamic RPC ports {}; {}",
        plural(p.groups.len(), "group", "groups"),
        plural(p.profiles.len(), "profile", "profiles"),
        plural(p.allow.len(), "allow rule", "allow rules"),
        plural(p.deny.len(), "deny rule", "deny rules"),
        plural(p.pins.len(), "pin", "pins"),
        p.rpc_dynamic,
        match version {
            Some(v) => format!("Exchange {}", v.as_str()),
            None => "Exchange version not known (pins list each version's value)".to_string(),
        }
    );

    let _ = writeln!(out, "\nGroups");
    let w_name = p.groups.iter().map(|g| g.name.len()).max().unwrap_or(0);
    for g in &p.groups {
        let role = g.role.map_or("(no role)", |r| r.as_str());
        let hosts: Vec<String> = g.members.iter().map(host).collect();
        let _ = writeln!(
            out,
            "  {:<w_name$}  {:<10}  {}",
            g.name,
            role,
            hosts.join(", ")
        );
    }

    if !p.profiles.is_empty() {
        let _ = writeln!(out, "\nProfiles");
        let w = p.profiles.iter().map(|n| n.len()).max().unwrap_or(0);
        for name in &p.profiles {
            let desc = profiles::lookup(name).map_or("", |pr| pr.description);
            let _ = writeln!(out, "  {name:<w$}  {desc}");
        }
    }

    rules_section(&mut out, p, "Allow", &p.allow);
    rules_section(&mut out, p, "Deny (wins over allow)", &p.deny);

    let _ = writeln!(out, "\nPins");
    if p.pins.is_empty() {
        let _ = writeln!(out, "  (none: RPC interfaces use the dynamic range)");
    }
    let mut rpc_ports = false;
    for pin in &p.pins {
        let _ = writeln!(
            out,
            "  {} {} {} {}",
            pin.server,
            pin.service,
            super::proto_str(pin.proto),
            pin.port
        );
        let cx = pin_context(p, &pin.server, version);
        let rows = crate::kb::pins(&pin.service, None, &cx);
        if rows.is_empty() {
            let _ = writeln!(
                out,
                "    no registry value in the articles pins it; the port is fixed some other way, or restrict the server's dynamic RPC range (KB154596)"
            );
        }
        for row in rows {
            rpc_ports |= row.rpc_port;
            let label = if cx.exchange.is_none() && !row.exchange.is_empty() {
                format!("{}: ", row.label())
            } else {
                String::new()
            };
            let _ = writeln!(out, "    {label}{}", row.line());
            if let Some(n) = row.note {
                let _ = writeln!(out, "      {n}");
            }
        }
    }
    if rpc_ports {
        let _ = writeln!(out, "  setting them: {}", crate::kb::PORT_ADVICE_TEXT);
        let _ = writeln!(out, "  {}", crate::kb::FORWARD_SLASH);
    }

    let warnings = p.profile_warnings();
    if !warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings");
        for w in warnings {
            let _ = writeln!(out, "  {w}");
        }
    }
    out
}
