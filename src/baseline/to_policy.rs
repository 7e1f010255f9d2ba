//! `exflow policy from-baseline`: today's successful traffic as tomorrow's
//! expected policy (`exflow.policy/1`, accepted by `Policy::parse`).
//!
//! * groups: one per client group (its networks; role `clients`) and one
//!   per server (`server-ADDRESS`; role `exchange` when it served an
//!   Exchange interface, `dc` when it served AD services);
//! * allow: per successful entry, the named service when the service table
//!   knows it, else `proto` + the ports that worked;
//! * allow rules name the service only over the protocols it is defined
//!   on: the endpoint mapper is TCP 135 in the articles, so UDP 135 becomes
//!   an explicit `udp 135` rule, and only where it was seen;
//! * pins: a dynamic RPC interface seen working on one single port (on a
//!   server, for every client group) whose port a registry value can fix
//!   is pinned there, with that value in the comment — the plan `exflow
//!   rules` prints (`super::pins`), so the two agree.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::Baseline;
use crate::kb::ExchangeVersion;
use crate::policy::services;

fn client_group_name(g: &str) -> String {
    if g.parse::<crate::roles::Cidr>().is_ok() {
        format!("clients-{}", g.replace(['/', ':'], "-"))
    } else {
        g.to_string()
    }
}

fn server_group_name(ip: &IpAddr) -> String {
    format!("server-{}", ip.to_string().replace(':', "-"))
}

/// Served by an Exchange server. Not `mapi-notification`: its "server" is
/// the Outlook client that receives the datagrams (Q264035).
fn is_exchange_service(s: &str) -> bool {
    s.starts_with("exchange-") || s == "x400-mta"
}

fn is_dc_service(s: &str) -> bool {
    matches!(
        s,
        "kerberos"
            | "ldap"
            | "ldaps"
            | "gc"
            | "gc-ssl"
            | "netlogon"
            | "ad-replication"
            | "lsarpc"
            | "samr"
            | "dns"
            | "dnsserver"
            | "frs"
            | "dfsr"
    )
}

/// The policy file text (pretty JSON ending in a newline); registry
/// values named for Exchange `version` (None: every version's, labelled).
pub fn policy_json(b: &Baseline, origin: &str, version: Option<ExchangeVersion>) -> String {
    let ok: Vec<_> = b.flows.iter().filter(|e| e.success > 0).collect();
    let mut groups = Map::new();
    let mut client_groups: BTreeSet<&str> = BTreeSet::new();
    let mut servers: BTreeMap<IpAddr, BTreeSet<&str>> = BTreeMap::new();
    for e in &ok {
        client_groups.insert(&e.client_group);
        servers.entry(e.server).or_default().insert(&e.service);
    }
    for g in &client_groups {
        let hosts = b.group_networks(g);
        // A group that only sends new-mail notifications is Exchange's.
        let role = if ok
            .iter()
            .filter(|e| e.client_group == *g)
            .all(|e| e.service == "mapi-notification")
        {
            "exchange"
        } else {
            "clients"
        };
        groups.insert(
            client_group_name(g),
            json!({ "role": role, "hosts": hosts }),
        );
    }
    for (ip, svcs) in &servers {
        let role = if svcs.iter().any(|s| is_exchange_service(s)) {
            Some("exchange")
        } else if svcs.iter().any(|s| is_dc_service(s)) {
            Some("dc")
        } else {
            None
        };
        let mut g = Map::new();
        if let Some(r) = role {
            g.insert("role".into(), json!(r));
        }
        g.insert("hosts".into(), json!([ip.to_string()]));
        groups.insert(server_group_name(ip), Value::Object(g));
    }
    // Allow rules, deduplicated and sorted.
    // (from, to, service, proto, ports, comment)
    type Allow = (String, String, String, String, Vec<u16>, String);
    let mut allow: BTreeSet<Allow> = BTreeSet::new();
    for e in &ok {
        let from = client_group_name(&e.client_group);
        let to = server_group_name(&e.server);
        let proto = crate::policy::proto_number(&e.proto);
        match services::service_ports(&e.service) {
            Some(s) if proto.is_some_and(|p| s.protos.contains(&p)) => {
                allow.insert((
                    from,
                    to,
                    e.service.clone(),
                    String::new(),
                    Vec::new(),
                    String::new(),
                ));
            }
            named => {
                let comment = match named {
                    Some(s) => format!(
                        "observed: {} over {}, which the articles do not name ({} {})",
                        e.service,
                        e.proto,
                        crate::policy::protos_str(s.protos),
                        crate::policy::PortSet(s.ports.to_vec())
                    ),
                    None => "observed; no named service".to_string(),
                };
                allow.insert((
                    from,
                    to,
                    String::new(),
                    e.proto.clone(),
                    e.working_ports().into_iter().collect(),
                    comment,
                ));
            }
        }
    }
    let allow: Vec<Value> = allow
        .into_iter()
        .map(|(from, to, service, proto, ports, comment)| {
            if service.is_empty() {
                json!({ "from": from, "to": to, "proto": proto, "ports": ports,
                        "comment": comment })
            } else {
                json!({ "from": from, "to": to, "service": service })
            }
        })
        .collect();
    let pins: Vec<Value> = super::pins::pin_plans(b, version)
        .into_iter()
        .filter_map(|p| {
            let port = p.policy_port()?;
            Some(
                json!({ "server": p.server.to_string(), "service": p.service, "port": port,
                    "comment": format!("observed on this single port; {}", p.how(version)) }),
            )
        })
        .collect();
    let v = json!({
        "schema": "exflow.policy/1",
        "comment": [
            format!("generated by exflow policy from-baseline from {origin}"),
            "the traffic that worked when the baseline was taken; review before use"
        ],
        "groups": groups,
        "allow": allow,
        "pins": pins,
    });
    let mut s = serde_json::to_string_pretty(&v).expect("json");
    s.push('\n');
    s
}
