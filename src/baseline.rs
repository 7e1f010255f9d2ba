//! Baselines: what talks to what, built from an [`Analysis`] — one more
//! renderer over the pipeline's output (it computes nothing the verdicts do
//! not: success and failure are [`verdict::flow_outcomes`]).
//!
//! A baseline (`"schema": "exflow.baseline/1"`, documented in README.md)
//! holds one entry per observed (client group, server, service, proto,
//! server port) — dynamic RPC interfaces get one entry per (client group,
//! server, service) with the ports seen — and one per hand-off kind, with
//! counts, bytes, first and last seen. Everything merges by sums, minima,
//! maxima and set unions, so [`Baseline::merge`] is associative and
//! commutative and baselines from many sensors and days combine, in any
//! order, into the same bytes.
//!
//! Submodules render a baseline further: [`diff`] (old vs new), [`rules`]
//! (firewall rules for the successful traffic), [`to_policy`] (a policy
//! file).

pub mod diff;
pub mod pins;
pub mod rules;
pub mod to_policy;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::analysis::Analysis;
use crate::packet::{PROTO_TCP, PROTO_UDP};
use crate::policy::{services, Policy};
use crate::roles::Cidr;
use crate::time::rfc3339_micros;
use crate::verdict;

/// The schema name of a baseline file.
pub const SCHEMA: &str = "exflow.baseline/1";

/// A baseline: every observed flow kind and hand-off kind, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub schema: String,
    /// The inputs it was built from (captures, or merged baselines' inputs).
    #[serde(default)]
    pub inputs: BTreeSet<String>,
    /// Named client groups (from a policy) and their networks; client
    /// groups not named here are networks themselves (/24, IPv6 /64).
    #[serde(default)]
    pub groups: BTreeMap<String, BTreeSet<String>>,
    #[serde(default)]
    pub flows: Vec<Entry>,
    #[serde(default)]
    pub handoffs: Vec<HandoffEntry>,
}

/// One observed (client group, server, service, proto, port).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The policy group of the clients, else their /24 (IPv6 /64).
    pub client_group: String,
    pub server: IpAddr,
    /// The report contract's service name (`epm`, `netlogon`, `ldap`, ...).
    pub service: String,
    /// "tcp" or "udp".
    pub proto: String,
    /// The server port; null for a dynamic RPC interface (see `ports`).
    pub port: Option<u16>,
    /// Dynamic RPC interface only: every port it was seen on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<BTreeSet<u16>>,
    /// Dynamic RPC interface only: [lowest, highest] of `ports`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_range: Option<[u16; 2]>,
    /// Dynamic RPC interface only: the ports with a successful connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_ports: Option<BTreeSet<u16>>,
    /// Dynamic RPC interface only: the ports with a failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_ports: Option<BTreeSet<u16>>,
    /// The client addresses seen.
    pub clients: BTreeSet<IpAddr>,
    /// Flows (TCP connections, UDP conversations) seen.
    pub connections: u64,
    /// Bytes on the wire, both directions.
    pub bytes: u64,
    /// Connections established (TCP) or answered (UDP).
    pub success: u64,
    /// Attempts that failed: unanswered SYNs, resets, ICMP errors, refused
    /// COTP, unanswered UDP queries, and hand-offs the client never
    /// followed (no flow: the server side's view of a drop).
    pub failure: u64,
    /// RFC 3339 UTC, microseconds.
    pub first_seen: String,
    pub last_seen: String,
}

/// Endpoint-mapper hand-offs of one kind: (client group, server named in
/// the tower, service, proto).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffEntry {
    pub client_group: String,
    pub server: IpAddr,
    pub service: String,
    pub proto: String,
    /// The ports the mapper named.
    pub ports: BTreeSet<u16>,
    /// Answers the client followed with a connection (or an open one).
    pub followed: u64,
    /// Answers the client never followed (or whose follow-up failed).
    pub not_followed: u64,
    /// Answers the client asked again for before connecting (the
    /// connection is credited to the later answer).
    #[serde(default)]
    pub superseded: u64,
    /// Answers whose follow-up the capture's filter would have dropped,
    /// none seen (`not-captured`: neither followed nor not).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_captured: u64,
    pub first_seen: String,
    pub last_seen: String,
}

/// The sort and merge key of an entry.
pub type EntryKey = (String, IpAddr, String, String, Option<u16>);

impl Entry {
    pub fn key(&self) -> EntryKey {
        (
            self.client_group.clone(),
            self.server,
            self.service.clone(),
            self.proto.clone(),
            self.port,
        )
    }

    /// A dynamic RPC interface entry (ports kept per interface).
    pub fn is_dynamic(&self) -> bool {
        self.port.is_none()
    }

    /// The ports with at least one success (fixed: its port if success > 0).
    pub fn working_ports(&self) -> BTreeSet<u16> {
        match (self.port, &self.success_ports) {
            (Some(p), _) if self.success > 0 => [p].into(),
            (None, Some(s)) => s.clone(),
            _ => BTreeSet::new(),
        }
    }

    /// The ports with at least one failure.
    pub fn failing_ports(&self) -> BTreeSet<u16> {
        match (self.port, &self.failure_ports) {
            (Some(p), _) if self.failure > 0 => [p].into(),
            (None, Some(s)) => s.clone(),
            _ => BTreeSet::new(),
        }
    }

    /// Every port seen.
    pub fn all_ports(&self) -> BTreeSet<u16> {
        match (self.port, &self.ports) {
            (Some(p), _) => [p].into(),
            (None, Some(s)) => s.clone(),
            _ => BTreeSet::new(),
        }
    }

    /// failure / (success + failure), 0 when nothing was conclusive.
    pub fn failure_rate(&self) -> f64 {
        let n = self.success + self.failure;
        if n == 0 {
            0.0
        } else {
            self.failure as f64 / n as f64
        }
    }

    /// "tcp/135", "tcp/55000-55002 (dynamic)".
    pub fn port_label(&self) -> String {
        match self.port {
            Some(p) => format!("{}/{p}", self.proto),
            None => format!(
                "{}/{} (dynamic)",
                self.proto,
                self.all_ports()
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    fn absorb(&mut self, o: &Entry) {
        fn union(a: &mut Option<BTreeSet<u16>>, b: &Option<BTreeSet<u16>>) {
            if let Some(b) = b {
                a.get_or_insert_with(BTreeSet::new)
                    .extend(b.iter().copied());
            }
        }
        union(&mut self.ports, &o.ports);
        union(&mut self.success_ports, &o.success_ports);
        union(&mut self.failure_ports, &o.failure_ports);
        self.clients.extend(o.clients.iter().copied());
        self.connections = self.connections.saturating_add(o.connections);
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.success = self.success.saturating_add(o.success);
        self.failure = self.failure.saturating_add(o.failure);
        if o.first_seen < self.first_seen {
            self.first_seen.clone_from(&o.first_seen);
        }
        if o.last_seen > self.last_seen {
            self.last_seen.clone_from(&o.last_seen);
        }
        self.fix_range();
    }

    fn fix_range(&mut self) {
        self.port_range = match &self.ports {
            Some(p) if !p.is_empty() => Some([*p.first().unwrap(), *p.last().unwrap()]),
            _ => None,
        };
    }
}

impl HandoffEntry {
    pub fn key(&self) -> (String, IpAddr, String, String) {
        (
            self.client_group.clone(),
            self.server,
            self.service.clone(),
            self.proto.clone(),
        )
    }

    fn absorb(&mut self, o: &HandoffEntry) {
        self.ports.extend(o.ports.iter().copied());
        self.followed = self.followed.saturating_add(o.followed);
        self.not_followed = self.not_followed.saturating_add(o.not_followed);
        self.superseded = self.superseded.saturating_add(o.superseded);
        self.not_captured = self.not_captured.saturating_add(o.not_captured);
        if o.first_seen < self.first_seen {
            self.first_seen.clone_from(&o.first_seen);
        }
        if o.last_seen > self.last_seen {
            self.last_seen.clone_from(&o.last_seen);
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn proto_name(p: u8) -> &'static str {
    if p == PROTO_UDP {
        "udp"
    } else {
        "tcp"
    }
}

/// Whether flows of `service` on `proto`/`port` are kept per interface
/// with their ports (a dynamic RPC port) rather than per port.
pub fn is_dynamic_rpc(service: &str, proto: u8, port: u16) -> bool {
    proto == PROTO_TCP && port != 135 && services::is_rpc_interface_service(service)
}

/// Builds the baseline of an analysis. Client groups are the `policy`'s
/// group names where it names the client, else the client's /24 (/64).
pub fn from_analysis(a: &Analysis, policy: Option<&Policy>) -> Baseline {
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut group_of = |ip: &IpAddr| -> String {
        match policy.and_then(|p| p.group_of(ip)) {
            Some(g) => {
                groups
                    .entry(g.name.clone())
                    .or_insert_with(|| g.members.iter().map(|m| m.to_string()).collect());
                g.name.clone()
            }
            None => verdict::subnet_of(ip),
        }
    };
    let outcomes = a.flow_outcomes();
    let mut flows: Vec<Entry> = Vec::new();
    for (f, outcome) in a.flows.iter().zip(outcomes.iter()) {
        let label = a.correlated.label(f);
        let dynamic = is_dynamic_rpc(label.service, f.proto, f.server_port);
        let one = |p: bool| dynamic.then(|| [f.server_port].into_iter().filter(|_| p).collect());
        let mut e = Entry {
            client_group: group_of(&f.client),
            server: f.server,
            service: label.service.to_string(),
            proto: proto_name(f.proto).to_string(),
            port: (!dynamic).then_some(f.server_port),
            ports: one(true),
            port_range: None,
            success_ports: one(*outcome == Some(true)),
            failure_ports: one(*outcome == Some(false)),
            clients: [f.client].into(),
            connections: 1,
            bytes: f.bytes[0].saturating_add(f.bytes[1]),
            success: u64::from(*outcome == Some(true)),
            failure: u64::from(*outcome == Some(false)),
            first_seen: rfc3339_micros(f.first_ts),
            last_seen: rfc3339_micros(f.last_ts),
        };
        e.fix_range();
        flows.push(e);
    }
    // Hand-offs never followed: from the server side, the only trace of a
    // drop (counted as the verdicts count them).
    let mut handoffs = Vec::new();
    for h in &a.correlated.handoffs {
        // A sealed DCOM answer whose port was neither read nor inferred
        // names no endpoint.
        if h.outcome == crate::correlate::Outcome::Sealed {
            continue;
        }
        // An RPC proxy's hand-off nobody was seen following: its backend
        // side may be outside the capture (the verdicts do not judge it).
        if h.proxy.is_some() && h.outcome == crate::correlate::Outcome::NoAttempt {
            continue;
        }
        let service = h.service();
        let proto = match h.transport {
            crate::proto::epm::Transport::Udp => PROTO_UDP,
            _ => PROTO_TCP,
        };
        let group = group_of(&h.client);
        if h.outcome == crate::correlate::Outcome::NoAttempt {
            let dynamic = is_dynamic_rpc(service, proto, h.port);
            let port_set = || dynamic.then(|| BTreeSet::from([h.port]));
            let mut e = Entry {
                client_group: group.clone(),
                server: h.server,
                service: service.to_string(),
                proto: proto_name(proto).to_string(),
                port: (!dynamic).then_some(h.port),
                ports: port_set(),
                port_range: None,
                success_ports: dynamic.then(BTreeSet::new),
                failure_ports: port_set(),
                clients: [h.client].into(),
                connections: 0,
                bytes: 0,
                success: 0,
                failure: 1,
                first_seen: rfc3339_micros(h.ts),
                last_seen: rfc3339_micros(h.ts),
            };
            e.fix_range();
            flows.push(e);
        }
        let followed = h.outcome.followed();
        let superseded = h.outcome == crate::correlate::Outcome::Superseded;
        let not_captured = h.outcome == crate::correlate::Outcome::NotCaptured;
        handoffs.push(HandoffEntry {
            client_group: group,
            server: h.server,
            service: service.to_string(),
            proto: proto_name(proto).to_string(),
            ports: [h.port].into(),
            followed: u64::from(followed),
            not_followed: u64::from(h.outcome.not_followed() && !superseded),
            superseded: u64::from(superseded),
            not_captured: u64::from(not_captured),
            first_seen: rfc3339_micros(h.ts),
            last_seen: rfc3339_micros(h.ts),
        });
    }
    let b = Baseline {
        schema: SCHEMA.to_string(),
        inputs: a.inputs.iter().map(|i| i.path.clone()).collect(),
        groups,
        flows,
        handoffs,
    };
    b.normalized()
}

impl Baseline {
    /// Joins entries with the same key, fills derived fields, sorts.
    pub fn normalized(self) -> Baseline {
        Baseline::merge_all([self])
    }

    /// Merges baselines: sums counts, keeps the earliest first seen and the
    /// latest last seen, unites ports, clients, inputs and group networks.
    /// Associative and commutative (byte-identical JSON in any order).
    pub fn merge_all<I: IntoIterator<Item = Baseline>>(parts: I) -> Baseline {
        let mut inputs = BTreeSet::new();
        let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut flows: BTreeMap<EntryKey, Entry> = BTreeMap::new();
        let mut handoffs: BTreeMap<(String, IpAddr, String, String), HandoffEntry> =
            BTreeMap::new();
        for b in parts {
            inputs.extend(b.inputs);
            for (name, nets) in b.groups {
                groups.entry(name).or_default().extend(nets);
            }
            for mut e in b.flows {
                e.fix_range();
                match flows.get_mut(&e.key()) {
                    Some(x) => x.absorb(&e),
                    None => {
                        flows.insert(e.key(), e);
                    }
                }
            }
            for h in b.handoffs {
                match handoffs.get_mut(&h.key()) {
                    Some(x) => x.absorb(&h),
                    None => {
                        handoffs.insert(h.key(), h);
                    }
                }
            }
        }
        Baseline {
            schema: SCHEMA.to_string(),
            inputs,
            groups,
            flows: flows.into_values().collect(),
            handoffs: handoffs.into_values().collect(),
        }
    }

    /// `merge_all([self, other])`.
    pub fn merge(&self, other: &Baseline) -> Baseline {
        Baseline::merge_all([self.clone(), other.clone()])
    }

    /// The JSON text (pretty, sorted, deterministic, ending in a newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a baseline serializes");
        s.push('\n');
        s
    }

    /// Writes [`Baseline::to_json`].
    pub fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self.to_json().as_bytes())
    }

    /// Parses and validates a baseline file's text; errors name `file`.
    pub fn parse(text: &str, file: &str) -> Result<Baseline, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("{file}: invalid JSON: {e}"))?;
        match v.get("schema") {
            Some(serde_json::Value::String(s)) if s == SCHEMA => {}
            Some(serde_json::Value::String(s)) => {
                return Err(format!(
                    "{file}: schema: '{s}' is not supported; expected \"{SCHEMA}\""
                ))
            }
            Some(_) => return Err(format!("{file}: schema: expected the string \"{SCHEMA}\"")),
            None => {
                return Err(format!(
                    "{file}: not a baseline: no \"schema\": \"{SCHEMA}\" field"
                ))
            }
        }
        let b: Baseline =
            serde_json::from_value(v).map_err(|e| format!("{file}: not a valid baseline: {e}"))?;
        // A client group is a named group's networks or a network itself:
        // `to-policy` and `rules` write it as hosts, which must read back.
        for (name, nets) in &b.groups {
            for n in nets {
                n.parse::<Cidr>()
                    .map_err(|e| format!("{file}: groups.{name}: {e}"))?;
            }
        }
        let known_group = |g: &str| b.groups.contains_key(g) || g.parse::<Cidr>().is_ok();
        for (i, e) in b.flows.iter().enumerate() {
            let at = |what: &str| format!("{file}: flows[{i}]: {what}");
            if e.proto != "tcp" && e.proto != "udp" {
                return Err(at(&format!(
                    "proto '{}': expected \"tcp\" or \"udp\"",
                    e.proto
                )));
            }
            for t in [&e.first_seen, &e.last_seen] {
                if !is_rfc3339_micros(t) {
                    return Err(at(&format!(
                        "'{t}' is not an RFC 3339 UTC time with microseconds (2026-11-22T00:01:21.114570Z)"
                    )));
                }
            }
            if e.port.is_none() && e.ports.as_ref().is_none_or(BTreeSet::is_empty) {
                return Err(at("a dynamic entry (port null) needs its ports"));
            }
            if !known_group(&e.client_group) {
                return Err(at(&unknown_group(&e.client_group)));
            }
            let sets = [
                ("ports", &e.ports),
                ("success_ports", &e.success_ports),
                ("failure_ports", &e.failure_ports),
            ];
            let zero = (e.port == Some(0))
                .then_some("port")
                .or_else(|| {
                    e.port_range
                        .is_some_and(|r| r.contains(&0))
                        .then_some("port_range")
                })
                .or_else(|| {
                    sets.iter()
                        .find(|(_, s)| s.as_ref().is_some_and(|s| s.contains(&0)))
                        .map(|(f, _)| *f)
                });
            if let Some(field) = zero {
                return Err(at(&format!("{field}: {PORT_ZERO}")));
            }
        }
        for (i, h) in b.handoffs.iter().enumerate() {
            if h.ports.contains(&0) {
                return Err(format!("{file}: handoffs[{i}]: ports: {PORT_ZERO}"));
            }
            if !known_group(&h.client_group) {
                return Err(format!(
                    "{file}: handoffs[{i}]: {}",
                    unknown_group(&h.client_group)
                ));
            }
            for t in [&h.first_seen, &h.last_seen] {
                if !is_rfc3339_micros(t) {
                    return Err(format!(
                        "{file}: handoffs[{i}]: '{t}' is not an RFC 3339 UTC time with microseconds"
                    ));
                }
            }
        }
        Ok(b.normalized())
    }

    /// Reads and parses a baseline file.
    pub fn load(path: &std::path::Path) -> Result<Baseline, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Baseline::parse(&text, &path.display().to_string())
    }

    /// The networks of a client group: its policy networks, or the group
    /// itself when it is a network.
    pub fn group_networks(&self, group: &str) -> Vec<String> {
        match self.groups.get(group) {
            Some(nets) => nets.iter().cloned().collect(),
            None => vec![group.to_string()],
        }
    }
}

/// A port of a baseline is one a connection went to: never 0 (and the
/// policy that `to-policy` writes from it refuses 0 too).
const PORT_ZERO: &str = "port 0 is out of range 1..=65535";

fn unknown_group(g: &str) -> String {
    format!("client_group '{g}' is neither a group of \"groups\" nor a network")
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (what exflow writes; compared as text).
fn is_rfc3339_micros(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            26 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A baseline with one flow of client group `group` and `groups`.
    fn one_flow(groups: &str, group: &str) -> String {
        format!(
            r#"{{"schema": "{SCHEMA}", "inputs": [], "groups": {groups}, "handoffs": [],
              "flows": [{{"client_group": "{group}", "server": "198.51.100.10",
                "service": "epm", "proto": "tcp", "port": 135, "clients": ["192.0.2.10"],
                "connections": 4, "bytes": 24240, "success": 4, "failure": 0,
                "first_seen": "2026-11-22T00:01:37.919009Z",
                "last_seen": "2026-11-22T00:01:50.083344Z"}}]}}"#
        )
    }

    /// Found by fuzzing (`fuzz/fuzz_targets/baseline_json.rs`, 2026-12-05):
    /// a dynamic entry whose `success_ports` held 0 was read, and
    /// `to-policy` pinned the service to port 0, which the policy reader
    /// refuses. Every port field of a baseline is now checked.
    #[test]
    fn port_zero_is_refused_in_every_port_field() {
        let dynamic = |field: &str, value: &str| {
            let mut e = serde_json::json!({
                "client_group": "192.0.2.0/24", "server": "198.51.100.10",
                "service": "lsarpc", "proto": "tcp", "port": null,
                "ports": [55001], "port_range": [55001, 55001],
                "success_ports": [55001], "failure_ports": [],
                "clients": ["192.0.2.10"], "connections": 2, "bytes": 6518,
                "success": 2, "failure": 0,
                "first_seen": "2026-11-22T00:01:21.157364Z",
                "last_seen": "2026-11-22T00:01:23.462214Z"
            });
            e[field] = serde_json::from_str(value).unwrap();
            serde_json::json!({"schema": SCHEMA, "inputs": [], "groups": {},
                "flows": [e], "handoffs": []})
            .to_string()
        };
        let ok = Baseline::parse(&dynamic("success_ports", "[55001]"), "b.json").unwrap();
        Policy::parse(&to_policy::policy_json(&ok, "b.json", None), "p.json").unwrap();
        for (field, value) in [
            ("success_ports", "[0]"),
            ("failure_ports", "[0]"),
            ("ports", "[0, 55001]"),
            ("port_range", "[0, 55001]"),
            ("port", "0"),
        ] {
            let e = Baseline::parse(&dynamic(field, value), "b.json").unwrap_err();
            assert_eq!(e, format!("b.json: flows[0]: {field}: {PORT_ZERO}"));
        }
        let mut b: serde_json::Value =
            serde_json::from_str(&dynamic("success_ports", "[55001]")).unwrap();
        b["handoffs"] = serde_json::json!([{"client_group": "192.0.2.0/24",
            "server": "198.51.100.10", "service": "lsarpc", "proto": "tcp",
            "ports": [0], "followed": 1, "not_followed": 0,
            "first_seen": "2026-11-22T00:01:21.157364Z",
            "last_seen": "2026-11-22T00:01:23.462214Z"}]);
        let e = Baseline::parse(&b.to_string(), "b.json").unwrap_err();
        assert_eq!(e, format!("b.json: handoffs[0]: ports: {PORT_ZERO}"));
    }

    /// Found by fuzzing (`fuzz/fuzz_targets/baseline_json.rs`): a flow's
    /// client group that is neither named in `groups` (here renamed by
    /// hand) nor a network was read, and `to-policy` then wrote it as a
    /// host the policy reader refuses.
    #[test]
    fn client_groups_are_named_groups_or_networks() {
        for (groups, group) in [
            (r#"{}"#, "192.0.2.0/24"),
            (r#"{"clients": ["192.0.2.0/24"]}"#, "clients"),
            (r#"{}"#, "2001:db8::/64"),
        ] {
            let b = Baseline::parse(&one_flow(groups, group), "b.json").unwrap();
            let policy = to_policy::policy_json(&b, "b.json", None);
            Policy::parse(&policy, "p.json").unwrap();
        }
        let e = Baseline::parse(
            &one_flow(r#"{"clienprotots": ["192.0.2.0/24"]}"#, "clients"),
            "b.json",
        )
        .unwrap_err();
        assert!(e.contains("flows[0]: client_group 'clients'"), "{e}");
        let e = Baseline::parse(
            &one_flow(r#"{"clients": ["clients"]}"#, "clients"),
            "b.json",
        )
        .unwrap_err();
        assert!(
            e.contains("groups.clients: 'clients' is not an IP address"),
            "{e}"
        );
    }
}
